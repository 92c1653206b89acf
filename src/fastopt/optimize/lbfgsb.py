r"""L-BFGS-B: limited-memory BFGS with box bounds ``lower <= x <= upper``.

The algorithm of R. H. Byrd, P. Lu, J. Nocedal and C. Zhu, "A limited memory algorithm
for bound constrained optimization", *SIAM J. Sci. Comput.* 16(5), 1995, with the
subspace step of J. L. Morales and J. Nocedal, "Remark on Algorithm 778", *ACM TOMS*
38(1), 2011 -- the algorithm of scipy's ``method="L-BFGS-B"``, whose defaults, stopping
tests, statuses and messages this module keeps. One iteration:

1. **Compact form.** The memory of :math:`k \le m` pairs :math:`(s_i, y_i)` defines
   :math:`B = \theta I - W M W^T`, :math:`W = [Y, \theta S]`,
   :math:`M^{-1} = \begin{bmatrix} -D & L^T \\ L & \theta S^T S\end{bmatrix}`
   (:math:`D = \mathrm{diag}(s_i^T y_i)`, :math:`L` the strictly lower part of
   :math:`S^T Y`, :math:`\theta = y^T y / s^T y` of the newest pair). The inner products
   :math:`S^T S, S^T Y, Y^T Y` are kept up to date with one pass per new pair, so the
   :math:`2k \times 2k` matrices cost no pass over memory.
2. **Generalized Cauchy point** (:func:`fastopt._kernels.lbfgsb_cauchy`): the first local
   minimiser of the quadratic model along the projected steepest-descent path
   :math:`P(x - t g)`, found by scanning the breakpoints :math:`t_i` in increasing order.
3. **Subspace minimisation** over the variables that are free at the Cauchy point, with
   the Sherman-Morrison-Woodbury form of the reduced inverse Hessian; the unconstrained
   subspace step is projected onto the box and kept if it is a descent direction from
   :math:`x`, otherwise cut back to the box along its own direction (Morales-Nocedal).
4. **Line search** along :math:`d = z - x` within :math:`[0, \alpha_{max}]`, with
   :math:`\alpha_{max}` the largest step that stays in the box (Moré-Thuente,
   ``c1 = 1e-3``, ``c2 = 0.9``, as scipy), starting from 1 (from
   :math:`\min(1/\|d\|, \alpha_{max})` on the first iteration when some variable is not
   bounded on both sides); trial points are projected onto the box, so rounding never
   leaves it.
5. **Stop** when :math:`\max_i |P(x - g)_i - x_i| \le` ``gtol`` (the projected gradient)
   or :math:`(f_k - f_{k+1}) \le` ``ftol`` :math:`\max(|f_k|, |f_{k+1}|, 1)`.

The vector work -- projections, breakpoints, the Cauchy scan, the products with
:math:`W`, the inner products over the free variables -- runs in fastopt's C kernels
(``csrc/bounds.inc``) with the GIL released; only :math:`O(m^2)`-sized algebra and the
control flow are Python. At large n an iteration is bound by memory traffic, and reads
the pairs twice -- the least this algorithm allows, since the step needs :math:`W^T g`
before it can form :math:`W v`: once in the pass that forms the new pair (its products
with the memory, :math:`W^T d` for the next Cauchy point, the projected gradient), once
in the pass that forms the subspace step and the search direction. The Cauchy point makes
two passes over the n-vectors and none over the pairs.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from fastopt import _kernels

from . import bounds_reference as _reference
from ._scipy import optimize_result, scipy_version
from ._vector import LOCAL
from .linesearch import Line, more_thuente
from .objective import MaxFunReached, Objective

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

__all__ = ["minimize_lbfgsb", "LBFGSB_STATUS", "FORTRAN_MESSAGES", "lbfgsb_message", "CompactMemory"]


class _Kernels:
    """The bound-constrained kernels: fastopt's C ones, or the numpy reference of any the
    extension module lacks (``FASTOPT_LBFGSB_REFERENCE=1`` forces the reference)."""

    def __init__(self, use_reference: bool):
        for name in _reference.__all__:
            fn = None if use_reference else getattr(_kernels, name, None)
            setattr(self, name, fn if fn is not None else getattr(_reference, name))


_K: Any = _Kernels(bool(os.environ.get("FASTOPT_LBFGSB_REFERENCE")))

#: reason -> (scipy status, scipy's message): 0 converged, 1 a limit, 2 a failure.
LBFGSB_STATUS: dict[str, tuple[int, str]] = {
    "gtol": (0, "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"),
    "ftol": (0, "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"),
    "maxiter": (1, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"),
    "maxfun": (1, "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"),
    # scipy.optimize.minimize reports a StopIteration of the callback this way for every method
    "callback": (99, "`callback` raised `StopIteration`."),
    "linesearch": (2, "ABNORMAL: "),
    "nonfinite": (2, "ABNORMAL: NaN or Inf result encountered."),
}

#: the same stops in the words of scipy's Fortran L-BFGS-B (scipy < 1.15): a result
#: reads as the installed scipy's would
FORTRAN_MESSAGES: dict[str, str] = {
    "gtol": "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL",
    "ftol": "CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH",
    "maxiter": "STOP: TOTAL NO. of ITERATIONS REACHED LIMIT",
    "maxfun": "STOP: TOTAL NO. of f AND g EVALUATIONS EXCEEDS LIMIT",
    "linesearch": "ABNORMAL_TERMINATION_IN_LNSRCH",
}


def lbfgsb_message(reason: str) -> str:
    """scipy's message for a stop (`reason`: a key of ``LBFGSB_STATUS``), in the words of
    the installed scipy's version."""
    if reason in FORTRAN_MESSAGES and scipy_version() < (1, 15):
        return FORTRAN_MESSAGES[reason]
    return LBFGSB_STATUS[reason][1]


_DETAIL = {
    "gtol": "the projected gradient's max-norm is at most gtol",
    "ftol": "the relative reduction of f is at most ftol",
    "maxiter": "the iteration limit maxiter was reached",
    "maxfun": "the evaluation limit maxfun was exceeded",
    "callback": "the callback asked to stop",
    "linesearch": "the line search found no step with sufficient decrease, with an empty "
                  "memory (precision loss or an inaccurate gradient)",
    "nonfinite": "fun or its gradient returned NaN or Inf",
}


class CompactMemory:
    r"""The ``k <= m`` newest pairs and their inner products (the compact form's data).

    ``S`` and ``Y`` are ``(m + 1, n)`` ring buffers: a new pair is formed in the free row
    and committed only if it passes scipy's curvature test
    :math:`s^T y > \varepsilon\,(-g^T s)`. ``SS``, ``SY`` (``SY[i, j] = s_i . y_j``) and
    ``YY`` hold the inner products by physical row, in float64.
    """

    def __init__(self, n: int, m: int, dtype: np.dtype):
        self.n, self.m = n, m
        self.slots = m + 1
        self.S = np.empty((self.slots, n), dtype=dtype)
        self.Y = np.empty((self.slots, n), dtype=dtype)
        self.SS = np.zeros((self.slots, self.slots))
        self.SY = np.zeros((self.slots, self.slots))
        self.YY = np.zeros((self.slots, self.slots))
        self.head = 0
        self.count = 0
        self.theta = 1.0
        self.version = 0          # bumped on every change: caches of derived matrices key on it
        self.updates = 0          # pairs committed since the start (scipy's iupdat)
        self.ids = np.full(self.slots, -1)   # ids[row]: which commit wrote the row's pair
        self.wd: np.ndarray | None = None
        self.wd_version = -1

    @property
    def rows(self) -> np.ndarray:
        """Physical rows of the stored pairs, oldest first."""
        return (self.head - self.count + np.arange(self.count)) % self.slots

    def reset(self) -> None:
        self.count = 0
        self.head = 0
        self.theta = 1.0
        self.version += 1

    def form(self, x_new, x_old, g_new, g_old, lower, upper,
             free_gram: FreeGram | None = None,
             classify: tuple | None = None) -> tuple[tuple, float]:
        r"""Form ``s, y`` in the free row and, in the same pass
        (:func:`~fastopt._kernels.lbfgsb_pair_update`), the new pair's products with the
        memory, the same over ``free_gram``'s free set, :math:`W^T d` for the next Cauchy
        point (its path's direction ``d`` formed range by range in cache), the projected
        gradient's max-norm at ``(x_new, g_new)`` and, given ``classify = (scan, free)``,
        the next Cauchy point's first pass written there. Returns ``(formed, pgnorm)``;
        :meth:`add` commits ``formed``."""
        rows = np.append(self.rows[1:] if self.count == self.m else self.rows, self.head)
        mask = None if free_gram is None else free_gram.mask
        scan, free = (None, None) if classify is None else classify
        out, pgnorm, _ = _K.lbfgsb_pair_update(x_new, x_old, g_new, g_old, lower, upper,
                                               self.S, self.Y, rows, mask, dcp=False, scan=scan,
                                               free=free)
        return (rows, out, mask), pgnorm

    def add(self, formed: tuple, eps: float, gs_old: float,
            free_gram: FreeGram | None = None) -> bool:
        r"""Commit the pair of :meth:`form` unless :math:`s^T y \le \varepsilon
        (-g_{old}^T s)` (``gs_old`` = :math:`g_{old}^T s`)."""
        rows, out, mask = formed
        r = int(rows[-1])
        self.wd = None
        sy, yy = float(out[-1, 0]), float(out[-1, 1])
        if not (sy > eps * -gs_old) or not (math.isfinite(sy) and math.isfinite(yy)):
            return False
        self.SY[rows, r] = out[:, 0]          # s_i . y_r
        self.YY[rows, r] = self.YY[r, rows] = out[:, 1]
        self.SS[rows, r] = self.SS[r, rows] = out[:, 2]
        self.SY[r, rows] = out[:, 3]          # s_r . y_i
        self.theta = yy / sy
        self.ids[r] = self.updates
        self.head = (r + 1) % self.slots
        self.count = rows.size
        self.updates += 1
        self.version += 1
        self.wd = np.concatenate([out[:, 9], out[:, 8]])     # (Y d, S d), oldest first
        self.wd_version = self.version
        if mask is not None:
            assert free_gram is not None
            free_gram.set_row(r, rows, out[:, 4:8], self.ids[r])
        return True

    def products_with_d(self) -> np.ndarray | None:
        """``(Y d, S d)`` for the Cauchy path's direction ``d`` at the current point, when
        the last update formed them."""
        return self.wd if self.wd is not None and self.wd_version == self.version else None

    def middle_inverse(self) -> np.ndarray:
        r""":math:`M^{-1} = [[-D, L^T], [L, \theta S^T S]]` (oldest pair first)."""
        o = self.rows
        k = o.size
        SY = self.SY[np.ix_(o, o)]
        out = np.zeros((2 * k, 2 * k))
        out[:k, :k] = -np.diag(np.diag(SY))
        low = np.tril(SY, -1)
        out[k:, :k] = low
        out[:k, k:] = low.T
        out[k:, k:] = self.theta * self.SS[np.ix_(o, o)]
        return out

    def hess_inv(self):
        """scipy's ``LbfgsInvHessProduct`` of the stored pairs (oldest first)."""
        from .inv_hess_product import LbfgsInvHessProduct
        o = self.rows
        return LbfgsInvHessProduct(self.S[o].astype(np.float64), self.Y[o].astype(np.float64))


class FreeGram:
    r"""The inner products of the pairs over the free variables, :math:`S_F^T S_F`,
    :math:`S_F^T Y_F`, :math:`Y_F^T Y_F` (by physical row, like
    :class:`CompactMemory`'s full ones), kept up to date as the free set and the memory
    change, so that a stable free set costs no pass over the pairs: a change of the free
    set adds the entering variables' terms and removes the leaving ones'
    (:func:`~fastopt._kernels.lbfgsb_gram_update` on -1/0/+1 weights, work in proportion
    to the changes); a new pair gets its row from one masked pass. When more variables
    changed than the smaller of the free and the held sets, the sums are formed again over
    that smaller set (the held one subtracted from the full products)."""

    def __init__(self, memory: CompactMemory):
        self.mem = memory
        s = memory.slots
        self.SS = np.zeros((s, s))
        self.SY = np.zeros((s, s))
        self.YY = np.zeros((s, s))
        self.ids = np.full(s, -2)         # pair id each row's entries were computed for
        self.mask: np.ndarray | None = None

    def _store(self, rows, G):
        k = rows.size
        ix = np.ix_(rows, rows)
        self.YY[ix] = G[:k, :k]
        self.SY[ix] = G[k:, :k]           # s_i . y_j
        self.SS[ix] = G[k:, k:]

    def _full(self, rows, free, nfree):
        mem = self.mem
        n = mem.n
        if nfree <= n - nfree:
            G = _K.lbfgsb_gram_update(mem.S, mem.Y, rows, free.view(np.int8))
        else:
            held = free.view(np.int8) - np.int8(1)       # -1 on the held variables
            G = _K.lbfgsb_gram_update(mem.S, mem.Y, rows, held)
            k = rows.size
            ix = np.ix_(rows, rows)
            G[:k, :k] += mem.YY[ix]
            G[k:, :k] += mem.SY[ix]
            G[:k, k:] += mem.SY[ix].T
            G[k:, k:] += mem.SS[ix]
        self._store(rows, G)

    def set_row(self, r: int, rows: np.ndarray, masked: np.ndarray, pair_id: int) -> None:
        """The new pair's products over the current mask, from
        :func:`~fastopt._kernels.lbfgsb_pair_update` (columns 4-7)."""
        self.SY[rows, r] = masked[:, 0]
        self.YY[rows, r] = self.YY[r, rows] = masked[:, 1]
        self.SS[rows, r] = self.SS[r, rows] = masked[:, 2]
        self.SY[r, rows] = masked[:, 3]
        self.ids[r] = pair_id

    def matrices(self, free: np.ndarray, nfree: int):
        """``(YY, SY, SS)`` over the variables with ``free == 1``, oldest pair first."""
        mem = self.mem
        rows = mem.rows
        n = mem.n
        known = rows[self.ids[rows] == mem.ids[rows]]
        D, changes = None, 0
        if self.mask is not None and known.size:
            # the known rows' change with the free set, self.mask set to `free` (None: more
            # changes than the smaller of the two sets, mask left as it was)
            D, changes = _K.lbfgsb_gram_change(mem.S, mem.Y, known, free, self.mask,
                                         min(nfree, n - nfree))
        if D is None:
            self._full(rows, free, nfree)
        else:
            if changes:
                k = known.size
                ix = np.ix_(known, known)
                self.YY[ix] += D[:k, :k]
                self.SY[ix] += D[k:, :k]
                self.SS[ix] += D[k:, k:]
            fresh = rows[self.ids[rows] != mem.ids[rows]]
            if fresh.size:
                fm = free.astype(mem.S.dtype)
                for r in fresh:
                    ym = mem.Y[r] * fm
                    sm = mem.S[r] * fm
                    out = _kernels.lbfgs_gram(mem.S, mem.Y, rows, ym, sm)
                    kk = rows.size
                    self.SY[rows, r] = out[0:4 * kk:4]     # s_i . y_r (free part)
                    self.YY[rows, r] = self.YY[r, rows] = out[1:4 * kk:4]
                    self.SS[rows, r] = self.SS[r, rows] = out[2:4 * kk:4]
                    self.SY[r, rows] = out[3:4 * kk:4]     # s_r . y_i
        self.ids[rows] = mem.ids[rows]
        if self.mask is None:
            self.mask = free.copy()
        elif D is None:
            np.copyto(self.mask, free)
        ix = np.ix_(rows, rows)
        return self.YY[ix], self.SY[ix], self.SS[ix]


class _Subspace:
    """:math:`M`, and the factor of the reduced matrix for one free set, cached while the
    memory and the free set stay the same."""

    def __init__(self, memory: CompactMemory):
        self.mem = memory
        self.version = -1
        self.free_key: Any = None
        self.M: np.ndarray | None = None
        self.Minv: np.ndarray | None = None
        self.N: np.ndarray | None = None
        self.G: np.ndarray | None = None
        self.free_gram = FreeGram(memory)

    def middle(self) -> np.ndarray | None:
        """:math:`M`, or None when :math:`M^{-1}` is singular (the memory is then reset)."""
        if self.version != self.mem.version:
            self.version = self.mem.version
            self.free_key = None
            self.Minv = self.mem.middle_inverse()
            try:
                self.M = np.linalg.inv(self.Minv)
            except np.linalg.LinAlgError:
                self.M = None
            if self.M is not None and not np.all(np.isfinite(self.M)):
                self.M = None
        return self.M

    def reduced(self, free: np.ndarray | None, nfree: int) -> tuple[np.ndarray, np.ndarray]:
        r"""``(N, G)``: :math:`G = W_F^T W_F` over the free set ``free`` (None: all) and
        :math:`N = M^{-1} - G / \theta`."""
        mem = self.mem
        if self.N is not None and self.free_key is not None and (
                (free is None and isinstance(self.free_key, str))
                or (free is not None and not isinstance(self.free_key, str)
                    and np.array_equal(free, self.free_key))):
            assert self.G is not None
            return self.N, self.G
        o = mem.rows
        k = o.size
        th = mem.theta
        ix = np.ix_(o, o)
        YY, SY, SS = mem.YY[ix], mem.SY[ix], mem.SS[ix]
        if free is not None and nfree < mem.n:
            YY, SY, SS = self.free_gram.matrices(free, nfree)
        G = np.empty((2 * k, 2 * k))
        G[:k, :k] = YY
        G[:k, k:] = th * SY.T        # y_i . s_j
        G[k:, :k] = th * SY
        G[k:, k:] = th * th * SS
        assert self.Minv is not None
        self.G = G
        self.N = self.Minv - G / th
        self.free_key = "all" if free is None else free.copy()
        return self.N, self.G


def _result(reason: str, x, f, g, nit, obj: Objective, memory: CompactMemory,
            shape, detail: str = "") -> OptimizeResult:
    status = LBFGSB_STATUS[reason][0]
    message = lbfgsb_message(reason)
    why = _DETAIL[reason] + (f" ({detail})" if detail else "")
    if reason == "linesearch" and message.endswith(": "):
        message = message + why
    return optimize_result(
        x=np.array(x).reshape(shape), fun=float(f),
        jac=None if g is None else np.array(g).reshape(shape),
        nit=int(nit), nfev=int(obj.nfev), njev=int(obj.njev), status=status,
        success=status == 0, message=message, reason=reason, reason_detail=why,
        hess_inv=memory.hess_inv())


class _BoxLine(Line):
    """The line :math:`P(x + \\alpha d)`: trial points projected onto the box; the slope
    :math:`g^T d` at 0 comes from :func:`~fastopt._kernels.lbfgsb_direction`. ``unit``:
    :math:`P(x + d)` when the pass that formed ``d`` wrote it too (the point of
    :math:`\\alpha = 1`, the usual first trial), else None."""

    def __init__(self, obj, x, d, f0, g0, dphi0, pool, *, lower, upper, unit=None):
        super().__init__(obj, x, d, f0, g0, pool, LOCAL, dphi0=dphi0, unit=unit)
        self.lower, self.upper = lower, upper

    def point(self, alpha: float) -> np.ndarray:
        unit = self._take_unit(alpha)
        if unit is not None:
            return unit
        out = self.pool.pop() if self.pool else np.empty_like(self.x)
        self.points.append(out)
        return _K.bounds_step(self.x, alpha, self.d, self.lower, self.upper, out=out)


def minimize_lbfgsb(objective: Objective | Callable[..., Any], x0: Any,
                    lower: np.ndarray | None = None, upper: np.ndarray | None = None, *,
                    ftol: float = 2.2204460492503131e-09, gtol: float = 1e-5,
                    maxcor: int = 10, maxls: int = 20, maxiter: int = 15000,
                    maxfun: int = 15000,
                    callback: Callable[[OptimizeResult], Any] | None = None,
                    shape: tuple[int, ...] | None = None) -> OptimizeResult:
    r"""Minimise a function subject to ``lower <= x <= upper`` with L-BFGS-B.

    Parameters
    ----------
    objective : Objective or callable
        A :class:`~fastopt.optimize.objective.Objective`, or ``fun(x) -> (f, g)`` (value
        and gradient in one call, scipy's ``jac=True``).
    x0 : array_like
        Start; moved into the box first (``np.clip``, as scipy). float32 keeps float32.
    lower, upper : ndarray or None
        Bounds, flat, of x0's size (``-inf``/``+inf`` where a side is open); see
        :func:`fastopt.optimize.bounds.parse_bounds`. None: no bound on that side.
    ftol : float
        Stop when :math:`(f_k - f_{k+1}) \le \mathrm{ftol}\,\max(|f_k|, |f_{k+1}|, 1)`
        (scipy's ``factr * eps`` with ``factr = 1e7``).
    gtol : float
        Stop when the max-norm of the projected gradient is at most ``gtol``.
    maxcor : int
        Number of pairs kept (scipy's ``m``).
    maxls : int
        Evaluations allowed per line search.
    maxiter, maxfun : int
        Limits; as scipy, ``maxfun`` is checked after each iteration, so the last line
        search may exceed it.
    callback : callable, optional
        ``callback(intermediate_result)`` after every iteration, with ``x`` and ``fun``;
        raising ``StopIteration`` stops the run (status 1).
    shape : tuple, optional
        Shape of the returned ``x`` and ``jac`` (default: x0's shape).

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x, fun, jac, nit, nfev, njev, status, success, message, hess_inv`` as scipy's
        L-BFGS-B (status 0: converged, 1: a limit, 2: line-search failure), plus
        ``reason`` (``"gtol"``, ``"ftol"``, ``"maxiter"``, ``"maxfun"``, ``"callback"``,
        ``"linesearch"``, ``"nonfinite"``) and ``reason_detail``, a sentence.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.optimize.lbfgsb import minimize_lbfgsb
    >>> def fg(x):   # (x0 - 3)^2 + (x1 + 1)^2, minimiser (3, -1) outside the box
    ...     return (x[0] - 3) ** 2 + (x[1] + 1) ** 2, np.array([2 * (x[0] - 3), 2 * (x[1] + 1)])
    >>> res = minimize_lbfgsb(fg, [0.5, 0.5], np.array([0.0, 0.0]), np.array([1.0, 1.0]))
    >>> res.x, res.status
    (array([1., 0.]), 0)
    """
    x_in = np.asarray(x0)
    dtype = np.dtype(np.float32) if x_in.dtype == np.float32 else np.dtype(np.float64)
    if shape is None:
        shape = x_in.shape if x_in.ndim else (1,)
    x = np.array(x_in, dtype=dtype, copy=True).reshape(-1)
    n = x.size
    lo = np.full(n, -np.inf, dtype=dtype) if lower is None else np.asarray(lower, dtype=dtype)
    hi = np.full(n, np.inf, dtype=dtype) if upper is None else np.asarray(upper, dtype=dtype)
    lo = np.ascontiguousarray(lo.reshape(-1))
    hi = np.ascontiguousarray(hi.reshape(-1))
    if lo.size != n or hi.size != n:
        raise ValueError(f"lower, upper: expected {n} values (the size of x0), got "
                         f"{lo.size} and {hi.size}")
    if maxls <= 0:
        raise ValueError(f"maxls: expected a positive integer, got {maxls!r}")
    if maxcor <= 0:
        raise ValueError(f"maxcor: expected a positive integer, got {maxcor!r}")
    np.clip(x, lo, hi, out=x)
    if isinstance(objective, Objective):
        obj = objective
    else:
        obj = Objective(objective, shape, dtype, jac=True)
    bounded_lo = np.isfinite(lo)
    bounded_hi = np.isfinite(hi)
    constrained = bool(bounded_lo.any() or bounded_hi.any())
    boxed = bool(bounded_lo.all() and bounded_hi.all())
    eps = float(np.finfo(dtype).eps)
    memory = CompactMemory(n, maxcor, dtype)
    sub = _Subspace(memory)
    nit = 0
    pool: list = []
    # the Cauchy point and the search direction: written afresh every iteration
    xcp_buf = np.empty_like(x)
    d_buf = np.empty_like(x)
    # the next Cauchy point's first pass, made by the pair update's pass (constrained
    # problems): its scan buffer and mask, and whether they hold the current (x, g)'s
    classify = ((np.empty(_K.lbfgsb_scan_bytes(n), dtype=np.uint8),
                 np.empty(n, dtype=np.uint8)) if constrained else None)
    classified = False

    def result(reason, x, f, g, detail=""):
        return _result(reason, x, f, g, nit, obj, memory, shape, detail)

    try:
        f, g = obj.fg(x)
    except MaxFunReached:
        return result("maxfun", x, math.nan, None)
    pgnorm = _K.bounds_projgrad_norm(x, g, lo, hi)
    if not (math.isfinite(f) and math.isfinite(pgnorm)):
        return result("nonfinite", x, f, g, "at x0")
    if pgnorm <= gtol:
        return result("gtol", x, f, g)

    while True:
        # ---- the point z to move towards: Cauchy point, then the subspace step
        M = sub.middle() if memory.count else None
        if memory.count and M is None:
            memory.reset()
            continue
        k = memory.count
        if not constrained and k > 0:
            # scipy skips the Cauchy point without bounds: z minimises the model from x
            np.copyto(xcp_buf, x)
            z, free, nfree, tsum = xcp_buf, None, n, 0.0
            c = np.zeros(2 * k)
            wd = memory.products_with_d()     # d = -g: no variable is held
            if wd is None:
                out = _kernels.lbfgs_gram(memory.S, memory.Y, memory.rows, None, g)
                wd = -np.concatenate([out[3:4 * k:4], out[2:4 * k:4]])
            p = np.concatenate([wd[:k], memory.theta * wd[k:]])
        else:
            # the scan updates the mask in place: the classification serves once
            scan, pre_free = classify if classified and classify is not None else (None, None)
            classified = False
            # with pairs, the point is formed where it is needed (the subspace step's pass,
            # or below when no variable is free), not stored and read back
            z, c, free, nfree, tsum, p = _K.lbfgsb_cauchy(
                x, g, lo, hi, memory.S, memory.Y, memory.rows, memory.theta,
                np.zeros((0, 0)) if M is None else M, memory.products_with_d(), out=xcp_buf,
                scan=scan, free=pre_free, point=k == 0)
            if nfree == n:
                free = None
            if z is None and nfree == 0:
                z = _K.lbfgsb_cauchy_point(x, g, lo, hi, free, tsum, out=xcp_buf)
        unit = None
        if nfree > 0 and k > 0:
            assert M is not None
            # P(x + d), the line search's first point when it starts at 1 (from the second
            # iteration on), formed in the same pass as d
            unit = (pool.pop() if pool else np.empty_like(x)) if nit > 0 else None
            found = _subspace_direction(x, g, z, c, tsum, p, lo, hi, free, nfree, memory, sub,
                                        M, d_buf, unit)
            if found is None:        # the reduced matrix is singular: start afresh
                if unit is not None:
                    pool.append(unit)
                memory.reset()
                continue
            d, box_step, gd, dd = found
        else:
            d, box_step, gd, dd = _K.lbfgsb_direction(x, z, g, lo, hi, out=z)

        # ---- line search along d, inside the box
        if constrained and nit == 0:
            alpha_max = 1.0
        elif constrained:
            alpha_max = min(box_step, 1e10)
        else:
            alpha_max = 1e10
        if nit == 0 and not boxed:
            alpha0 = min(1.0 / math.sqrt(dd), alpha_max) if dd > 0 else alpha_max
        else:
            alpha0 = 1.0
        line = _BoxLine(obj, x, d, f, g, gd, pool, lower=lo, upper=hi, unit=unit)
        if not gd < 0.0 or alpha_max <= 0.0:
            ls = None
        else:
            ls = more_thuente(line, min(alpha0, alpha_max), c1=1e-3, c2=0.9, xtol=0.1,
                              alpha_min=0.0, alpha_max=alpha_max, maxls=maxls,
                              strict_decrease=False)
        if ls is not None and ls.maxfun:
            if ls.f < f and ls.g is not None:
                return result("maxfun", ls.x, ls.f, ls.g)
            return result("maxfun", x, f, g)
        if ls is not None and ls.success and not ls.curvature and ls.nfev >= maxls:
            # scipy's rule: maxls evaluations without a Wolfe step is a failure, even
            # when one trial had sufficient decrease
            ls.success = False
        if ls is None or not ls.success:
            line.release(None)
            if memory.count:         # scipy: forget the memory and start again from here
                memory.reset()
                continue
            why = (f"the direction is not a descent direction: g'd = {line.dphi0:.3g}"
                   if ls is None else ls.message)
            return result("linesearch", x, f, g, why)
        line.release(ls.x)
        x_old, f_old, g_old = x, f, g
        assert ls.g is not None
        x, f, g = ls.x, ls.f, ls.g
        nit += 1
        # ---- the driver's tests come first, as scipy's
        if callback is not None:
            try:
                callback(optimize_result(x=x.reshape(shape).copy(), fun=float(f)))
            except StopIteration:
                return result("callback", x, f, g)
        if nit >= maxiter:
            return result("maxiter", x, f, g)
        if obj.nfev > maxfun:
            return result("maxfun", x, f, g)
        free_gram = sub.free_gram if constrained else None
        formed, pgnorm = memory.form(x, x_old, g, g_old, lo, hi, free_gram, classify)
        classified = classify is not None
        if not (math.isfinite(f) and math.isfinite(pgnorm)):
            return result("nonfinite", x, f, g)
        if pgnorm <= gtol:
            return result("gtol", x, f, g)
        if f_old - f <= ftol * max(abs(f_old), abs(f), 1.0):
            return result("ftol", x, f, g)
        memory.add(formed, eps, ls.alpha * line.dphi0, free_gram)
        obj.forget(x_old)
        pool.append(x_old)
        del g_old


def _subspace_direction(x, g, xcp, c, tsum, p, lo, hi, free, nfree, memory: CompactMemory,
                        sub: _Subspace, M, out: np.ndarray,
                        unit: np.ndarray | None = None) -> tuple | None:
    r"""The search direction ``(d, max_step, gd, dd)`` (:func:`~fastopt._kernels.lbfgsb_direction`)
    towards the point :math:`z` that minimises the model over the free variables from the
    Cauchy point ``xcp`` (None: formed in the pass from ``free`` and ``tsum``,
    :func:`~fastopt._kernels.lbfgsb_cauchy_point`), with the Morales-Nocedal projection,
    ``d`` written to ``out``;
    None when the reduced matrix is singular.

    On the free set the Cauchy point moved by :math:`-t g`, so the reduced gradient is
    :math:`r = -(1 - \theta t) g_F + W_F M c` and, with :math:`p = -W_F^T g` from the
    Cauchy scan and :math:`G = W_F^T W_F`, :math:`W_F^T r = (1 - \theta t) p + G M c`
    costs no pass over memory; the step
    :math:`r/\theta + W_F N^{-1} W_F^T r / \theta^2`, :math:`z` and :math:`d = z - x`
    are then one fused pass (:func:`~fastopt._kernels.lbfgsb_subspace_direction`), which
    also writes :math:`P(x + d)` to ``unit`` when given."""
    k = memory.count
    th = memory.theta
    N, G = sub.reduced(free, nfree)
    Mc = M @ c
    scale = 1.0 - th * tsum
    wr = scale * p + G @ Mc
    try:
        sol = np.linalg.solve(N, wr)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(sol)):
        return None
    # du = -scale/theta g + W (Mc / theta + sol / theta^2), W = [Y, theta S]
    a = Mc[:k] / th + sol[:k] / (th * th)
    b = Mc[k:] + sol[k:] / th
    return _K.lbfgsb_subspace_direction(x, g, xcp, lo, hi, memory.S, memory.Y, memory.rows,
                                        -scale / th, a, b, free, out=out, trial=unit,
                                        tsum=tsum)
