"""mpi4py, imported on first use (importing it initializes MPI), and the checks of a
communicator argument."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_comm", "load_mpi", "mpi_type"]

INSTALL_HINT = (
    "fastopt.distributed needs mpi4py and an MPI library: install an MPI (Debian/Ubuntu: "
    "apt-get install openmpi-bin libopenmpi-dev) and then pip install \"fastopt[mpi]\" "
    "(or pip install \"mpi4py>=3.1\")")


def load_mpi() -> Any:
    """The ``mpi4py.MPI`` module, or ImportError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    return MPI


def check_comm(comm: Any, name: str = "comm") -> Any:
    """``comm`` if it is an mpi4py intracommunicator (returns ``mpi4py.MPI``)."""
    MPI = load_mpi()
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"{name}: expected an mpi4py intracommunicator such as "
                        f"MPI.COMM_WORLD, got {type(comm).__name__}")
    return MPI


def mpi_type(MPI: Any, dtype: np.dtype) -> Any:
    """The MPI datatype of float32 / float64."""
    return {np.dtype(np.float32): MPI.FLOAT, np.dtype(np.float64): MPI.DOUBLE}[np.dtype(dtype)]
