"""Optimization across MPI ranks, through mpi4py (``pip install "fastopt[mpi]"``).

* :class:`DataParallel` -- data-parallel training: gradients averaged with ``Allreduce``,
  the optimizer state sharded between the ranks (ZeRO stage 1: each rank keeps and updates
  the state of its slice of the parameters), the updated slices gathered with
  ``Allgatherv``. Same result as the plain optimizer on the full batch.
* :func:`minimize` -- L-BFGS over a vector distributed by rank, for objectives whose data
  are spread over the ranks (PETSc TAO's setting): ``fun(x_local)`` returns the global
  value and this rank's part of the gradient; one iteration reduces a fixed handful of
  scalars or small arrays, whatever the memory size.

Importing this module does not import mpi4py (which initializes MPI): that happens when a
communicator is first used. Run the programs with ``mpirun -n 4 python script.py``.
"""
from .data_parallel import DataParallel, pack_params, state_nbytes
from .lbfgs import MPIVectorSpace, minimize

__all__ = ["DataParallel", "MPIVectorSpace", "minimize", "pack_params", "state_nbytes"]
