r"""L-BFGS over a vector distributed across MPI ranks (PETSc TAO's LMVM setting).

Each rank holds a contiguous part of :math:`x` (any sizes); ``fun(x_local)`` is
collective and returns the global objective and this rank's part of the gradient. The
iteration is fastopt's single-process L-BFGS -- the same Moré–Thuente line search, memory
and stopping tests (:func:`fastopt.optimize._quasi_newton.run_quasi_newton`) -- run with
a vector space whose reductions combine the ranks' partial results; everything else is
element-wise on the local part.

The memory uses the vector-free form of the two-loop recursion (Chen et al., NIPS 2014):
the inner products :math:`s_i^T y_j, y_i^T y_j, s_i^T g, y_i^T g` it needs are updated by
one pass (:func:`fastopt._kernels.lbfgs_gram`) whose :math:`4m + 1` partial sums travel in
one collective, then the direction is formed locally. One iteration therefore needs a fixed
number of reductions whatever ``m``: one array for the memory, the slope
:math:`g^T d` at the start and at each trial step of the line search, and the max-norm of
the gradient for the stopping test -- instead of the :math:`2m + 1` dot products, each a
reduction, of the classic recursion.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from fastopt.optimize._options import _check_number, _qn_options
from fastopt.optimize._quasi_newton import QNOptions, run_quasi_newton
from fastopt.optimize._vector import VectorSpace, dot, norm_inf
from fastopt.optimize.lbfgs import LbfgsMemory
from fastopt.optimize.objective import Objective

from ._mpi import check_comm

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

__all__ = ["MPIVectorSpace", "minimize"]

_OPTIONS = {"maxiter", "maxfun", "gtol", "ftol", "xtol", "line_search", "c1", "c2", "maxls",
            "m", "maxcor", "scaling", "disp", "reduction"}


class MPIVectorSpace(VectorSpace):
    """The reductions of a vector whose parts lie on the ranks of ``comm``.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
    reduction : {"ordered", "allreduce"}
        ``"ordered"`` (default): the ranks' partial sums are gathered (``Allgather``) and
        added in rank order on every rank, so every rank gets the same bits by
        construction, and a run is reproducible for a given split of the vector whatever
        algorithm MPI picks. ``"allreduce"``: one ``Allreduce`` (sum) -- the same traffic
        for the few numbers involved, but MPI's summation order decides the last bits.
        Both reduce ``max |x_i|`` with one ``Allreduce`` (max is exact).

    Attributes
    ----------
    reductions : int
        Collective reductions made so far (to count them per iteration).

    Examples
    --------
    >>> from mpi4py import MPI                                # doctest: +SKIP
    >>> import numpy as np
    >>> from fastopt.distributed import MPIVectorSpace
    >>> space = MPIVectorSpace(MPI.COMM_WORLD)                # doctest: +SKIP
    >>> space.dot(np.ones(3), np.ones(3))   # 3 x the number of ranks  # doctest: +SKIP
    3.0
    """

    def __init__(self, comm: Any, reduction: str = "ordered") -> None:
        MPI = check_comm(comm)
        if reduction not in ("ordered", "allreduce"):
            raise ValueError(f"reduction: expected 'ordered' or 'allreduce', got {reduction!r}")
        self._MPI = MPI
        self.comm = comm
        self.size = comm.Get_size()
        self.reduction = reduction
        self.reductions = 0

    def dot(self, a: np.ndarray, b: np.ndarray) -> float:
        """``a . b`` over all ranks' parts."""
        return float(self.sums(np.array([dot(a, b)]))[0])

    def norm_inf(self, a: np.ndarray) -> float:
        """``max |a_i|`` over all ranks' parts (NaN if any rank has a NaN)."""
        local = np.array([norm_inf(a), 0.0])
        local[1] = 1.0 if math.isnan(local[0]) else 0.0
        if math.isnan(local[0]):
            local[0] = 0.0
        self.comm.Allreduce(self._MPI.IN_PLACE, local, op=self._MPI.MAX)
        self.reductions += 1
        return math.nan if local[1] else float(local[0])

    def sums(self, partial: np.ndarray) -> np.ndarray:
        """Element-wise sums over the ranks of a float64 array of partial sums."""
        partial = np.ascontiguousarray(partial, dtype=np.float64)
        self.reductions += 1
        if self.reduction == "allreduce":
            out = partial.copy()
            self.comm.Allreduce(self._MPI.IN_PLACE, out, op=self._MPI.SUM)
            return out
        every = np.empty((self.size, partial.size))
        self.comm.Allgather(partial, every)
        total = every[0].copy()
        for r in range(1, self.size):
            total += every[r]
        return total


def _prepare(x0_local: Any, comm: Any) -> tuple[np.ndarray, tuple[int, ...], np.dtype]:
    """This rank's part of x0 as a flat working copy; every rank raises if any rank's part
    is invalid or the ranks' dtypes differ (one collective)."""
    error = None
    x: np.ndarray = np.zeros(0)
    shape: tuple[int, ...] = (0,)
    try:
        a = np.asarray(x0_local)
        if a.dtype.kind not in "fiub":
            raise TypeError(f"x0_local: expected real numbers, got dtype {a.dtype}")
        dtype = np.dtype(np.float32) if a.dtype == np.float32 else np.dtype(np.float64)
        shape = a.shape if a.ndim else (1,)
        x = np.array(a, dtype=dtype, copy=True).reshape(-1)
        if not np.all(np.isfinite(x)):
            bad = int(np.flatnonzero(~np.isfinite(x))[0])
            raise ValueError(f"x0_local: must be finite; element {bad} is {x[bad]}")
    except (TypeError, ValueError) as exc:
        error = exc
    dtype_name = None if error is not None else x.dtype.name
    every = comm.allgather((error, dtype_name, x.size))
    for rank, (err, _, _) in enumerate(every):
        if err is not None:
            raise type(err)(f"rank {rank}: {err}")
    dtypes = {d for _, d, _ in every}
    if len(dtypes) > 1:
        raise TypeError(f"x0_local: the ranks' parts have different dtypes "
                        f"{[d for _, d, _ in every]}; use one dtype on every rank")
    if sum(n for _, _, n in every) == 0:
        raise ValueError("x0_local: the vector is empty on every rank")
    return x, shape, x.dtype


def minimize(fun: Callable[..., Any], x0_local: ArrayLike, comm: Any,
             method: str = "L-BFGS", args: tuple | Any = (), tol: float | None = None,
             callback: Callable[..., Any] | None = None,
             options: Mapping[str, Any] | None = None) -> OptimizeResult:
    r"""Minimise a function of a vector distributed across MPI ranks with L-BFGS.

    Collective: every rank of ``comm`` calls it with its part of the vector, and every
    call of ``fun`` happens on every rank at the same time.

    Parameters
    ----------
    fun : callable
        ``fun(x_local, *args) -> (f, g_local)``: the global value (the same on every rank,
        e.g. ``comm.allreduce(local_value)``) and this rank's part of the gradient, shaped
        like ``x0_local``. It may communicate (halo exchanges, reductions).
    x0_local : array_like
        This rank's part of the starting point (any size, also 0; float32 runs the float32
        path on every rank -- the ranks must agree on the dtype). Not modified.
    comm : mpi4py.MPI.Intracomm
        The ranks holding the vector.
    method : {"L-BFGS"}
        The only method.
    args : tuple
        Extra arguments of ``fun``.
    tol : float, optional
        Sets ``gtol`` and ``ftol`` (explicit options win), as :func:`fastopt.minimize`.
    callback : callable, optional
        ``callback(intermediate_result)`` (that parameter name) or ``callback(xk_local)``
        after each iteration, on every rank, with this rank's parts; ``StopIteration``
        stops the run -- raise it on every rank.
    options : dict, optional
        As :func:`fastopt.minimize` for L-BFGS: ``maxiter`` [15000], ``maxfun``
        [15000], ``gtol`` [1e-5; 1e-4 in float32] (on the global max-norm of the
        gradient), ``ftol`` [0], ``xtol`` [0], ``line_search`` ["more-thuente"], ``c1``,
        ``c2``, ``maxls``, ``m`` / ``maxcor`` [10], ``scaling`` [True], ``disp``; and
        ``reduction`` ["ordered"] or "allreduce" (see :class:`MPIVectorSpace`).

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        ``x`` and ``jac``: this rank's parts; ``fun``, ``nit``, ``nfev``, ``njev``,
        ``status``, ``success``, ``message`` as :func:`fastopt.minimize` (the same on
        every rank); ``reductions``: the collective reductions the solver made (those
        inside ``fun`` not included). No ``hess_inv``.

    Raises
    ------
    TypeError, ValueError
        Bad arguments, on every rank when one rank's ``x0_local`` is bad.
    ImportError
        mpi4py is not installed.

    Notes
    -----
    The iterates are those of the single-process L-BFGS on the concatenated vector with
    the vector-free memory, up to the rounding of the dot products (summed per rank, then
    over the ranks). See the module's description for the reductions per iteration.

    Examples
    --------
    :math:`f(x) = \tfrac12 \sum_i (x_i - i)^2` with the vector split between the ranks; run
    with ``mpirun -n 4 python script.py``:

    >>> import numpy as np
    >>> from mpi4py import MPI                                # doctest: +SKIP
    >>> from fastopt.distributed import minimize
    >>> comm = MPI.COMM_WORLD                                 # doctest: +SKIP
    >>> n, rank, size = 1000, comm.rank, comm.size            # doctest: +SKIP
    >>> lo, hi = rank * n // size, (rank + 1) * n // size     # doctest: +SKIP
    >>> target = np.arange(lo, hi, dtype=float)               # doctest: +SKIP
    >>> def fun(x):
    ...     r = x - target
    ...     return comm.allreduce(0.5 * r @ r), r
    >>> res = minimize(fun, np.zeros(hi - lo), comm)          # doctest: +SKIP
    >>> bool(res.success), bool(np.allclose(res.x, target))   # doctest: +SKIP
    (True, True)
    """
    from fastopt.optimize._minimize import _disp, _wrap_callback

    if not callable(fun):
        raise TypeError(f"fun: expected a callable, got {type(fun).__name__}")
    check_comm(comm)
    if not isinstance(method, str) or method.strip().lower() not in ("l-bfgs", "lbfgs"):
        raise ValueError(f"method: expected 'L-BFGS' (the only distributed method), got "
                         f"{method!r}")
    if not isinstance(args, tuple):
        args = (args,)
    if options is None:
        options = {}
    elif not isinstance(options, Mapping):
        raise TypeError(f"options: expected a dict, got {type(options).__name__}")
    opts = dict(options)
    unknown = set(opts) - _OPTIONS
    if unknown:
        raise ValueError(f"options: unknown {sorted(unknown)}; fastopt.distributed.minimize "
                         f"takes {sorted(_OPTIONS)}")
    if tol is not None:
        tol = _check_number("tol", tol, lo=0.0, label="tol")
        opts.setdefault("gtol", tol)
        opts.setdefault("ftol", tol)
    if "maxcor" in opts:
        opts.setdefault("m", opts["maxcor"])
    cb = _wrap_callback(callback)
    x, shape, dtype = _prepare(x0_local, comm)
    qn, m, scaling, reduction = _options(opts, dtype)
    space = MPIVectorSpace(comm, reduction)
    obj = Objective(fun, shape, dtype, args, jac=True, maxfun=qn.maxfun)
    memory = LbfgsMemory(x.size, m, dtype, scaling=scaling, vector_free=True, space=space)
    res = run_quasi_newton(obj, x, memory, qn, cb, lambda r: r, space)
    res["reductions"] = space.reductions
    if comm.Get_rank() == 0:
        _disp(qn.disp, res)
    return res


def _options(opts: dict[str, Any], dtype: np.dtype) -> tuple[QNOptions, int, bool, str]:
    qn, scaling = _qn_options(opts, dtype, 15000, 15000)   # fastopt.minimize's L-BFGS defaults
    m = _check_number("m", opts.get("m", 10), lo=1, integer=True)
    reduction = opts.get("reduction", "ordered")
    if reduction not in ("ordered", "allreduce"):
        raise ValueError(f"options['reduction'] must be 'ordered' or 'allreduce', got "
                         f"{reduction!r}")
    return qn, m, scaling, reduction
