r"""L-BFGS: limited-memory inverse Hessian (ring buffer + two-loop recursion).

The memory holds the last :math:`m` correction pairs

.. math::  s_k = x_{k+1} - x_k, \qquad y_k = g_{k+1} - g_k,

as two contiguous ``(m, n)`` arrays used as a ring buffer, with
:math:`\rho_k = 1/(s_k^T y_k)` and the scaling :math:`\gamma = s^T y / y^T y`
of the newest pair (Nocedal & Wright, eq. 7.20).  A pair is stored only if
:math:`s^T y > \varepsilon\, |s^T g_k|` (curvature guard of L-BFGS-B, where
:math:`s^T g_k` is the line search's initial slope times the step; both sides scale
alike when ``f`` is multiplied by a constant), or, when the slope is not known (pairs
loaded from a warm start), :math:`s^T y > \varepsilon\, y^T y` (LBFGS++'s guard), with
:math:`\varepsilon` the machine epsilon of the working dtype; the products are
accumulated in float64.

:math:`H g` is the two-loop recursion (Nocedal & Wright, Algorithm 7.4):

.. math::
    q &\leftarrow g;\quad a_i \leftarrow \rho_i s_i^T q,\ q \leftarrow q - a_i y_i
        \quad (i = k-1, \dots, k-m)\\
    r &\leftarrow \gamma q;\quad b \leftarrow \rho_i y_i^T r,\ r \leftarrow r + (a_i - b) s_i
        \quad (i = k-m, \dots, k-1)

which costs :math:`4mn` multiply-adds.  It runs in C
(:func:`fastopt._kernels.lbfgs_two_loop`: :math:`2m+1` passes over memory, each
update of :math:`q` fused with the dot product the next step needs, float64
accumulation over fixed blocks, OpenMP above the serial threshold, the same bits
for any thread count).  :func:`two_loop_numpy` is the plain numpy statement of
the same recursion, kept as the reference the kernel is tested against.

The ring buffer has :math:`m + 1` rows: a new pair is written straight into the
free row, its curvature checked there, and only then committed, so a rejected
pair never overwrites a stored one and no temporaries are allocated.
:class:`~fastopt.optimize.inverse_hessian.LbfgsInverseHessian` exposes the same operator
as a :class:`scipy.sparse.linalg.LinearOperator` (``res.hess_inv``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fastopt import _kernels

from ._vector import LOCAL, VectorSpace, dot

if TYPE_CHECKING:
    from .inverse_hessian import LbfgsInverseHessian

__all__ = ["LbfgsMemory", "two_loop_numpy", "curvature_ok", "VECTOR_FREE_BYTES",
           "vector_free_default"]

#: From this many bytes per vector, ``LbfgsMemory(vector_free=None)`` uses the
#: vector-free form. Below, the plain recursion's work vector stays in the cache between
#: its 2m + 1 passes; above, it goes to memory and back in every pass, which the
#: vector-free form does not do. A fixed size, not this machine's cache: the choice, and
#: so the iterates, are the same on every machine and for any thread count.
VECTOR_FREE_BYTES = 16 << 20


def vector_free_default(n: int, dtype) -> bool:
    """The form ``LbfgsMemory(vector_free=None)`` takes for n elements of `dtype`: the
    vector-free one from :data:`VECTOR_FREE_BYTES` per vector (n = 2,097,152 float64 or
    4,194,304 float32), else the plain recursion."""
    return n * np.dtype(dtype).itemsize >= VECTOR_FREE_BYTES


def curvature_ok(sy: float, yy: float, slope: float | None, eps: float) -> bool:
    r"""The curvature guard of a pair: :math:`s^T y > \varepsilon |s^T g_{old}|`
    (L-BFGS-B's test, invariant when ``f`` is scaled) when ``slope`` (:math:`s^T g_{old}`)
    is known, else :math:`s^T y > \varepsilon\, y^T y`; both products finite."""
    if not (np.isfinite(sy) and np.isfinite(yy)):
        return False
    if slope is not None and np.isfinite(slope):
        return sy > eps * abs(slope)
    return sy > eps * yy


def two_loop_numpy(g: np.ndarray, S: np.ndarray, Y: np.ndarray, rho: np.ndarray, order,
                   gamma: float) -> np.ndarray:
    r"""Reference numpy two-loop recursion: :math:`H g` for the pairs ``S[order], Y[order]``.

    Parameters
    ----------
    g : ndarray, shape (n,)
    S, Y : ndarray, shape (slots, n)
    rho : ndarray, shape (slots,)
        :math:`1 / s_i^T y_i` (float64).
    order : sequence of int
        Rows of the stored pairs, oldest first.
    gamma : float
        :math:`H_0 = \gamma I`.
    """
    q = np.array(g, dtype=S.dtype if S.size else g.dtype, copy=True)
    a = {}
    for i in reversed(order):
        ai = rho[i] * dot(S[i], q)
        a[i] = ai
        q -= ai * Y[i]
    q *= gamma
    for i in order:
        b = rho[i] * dot(Y[i], q)
        q += (a[i] - b) * S[i]
    return q


class LbfgsMemory:
    r"""Ring buffer of ``m`` correction pairs and the product :math:`H g`.

    Parameters
    ----------
    n : int
        Dimension.
    m : int
        Number of pairs kept.
    dtype : numpy dtype
        Storage dtype of ``s`` and ``y``.
    scaling : bool
        Use :math:`H_0 = \gamma I` (else :math:`H_0 = I`).
    vector_free : bool or None
        Compute directions with the vector-free form of the two-loop recursion
        (:func:`fastopt._kernels.lbfgs_vf_direction`): the inner products
        :math:`s_i^T y_j`, :math:`y_i^T y_j`, :math:`s_i^T g`, :math:`y_i^T g` are
        kept up to date with one pass over the memory per new pair and gradient
        (:func:`fastopt._kernels.lbfgs_gram`), the recursion runs on :math:`2m+1`
        coefficients, and one more pass forms the direction (and, as the plain
        recursion's last pass does, the first trial point and its slope). Both forms read
        the :math:`2m` stored rows twice per iteration; the plain recursion also moves its
        work vector through the cache in every pass, the vector-free form reads the rows
        in two passes with few synchronisations. Measured on the 2-core AMD EPYC this was
        written on (float64, m = 10, ``benchmarks/lbfgs_barriers.py``, overhead per
        iteration against scipy L-BFGS-B's, median of interleaved repeats), the plain
        recursion wins while its work vector stays in the 32 MB cache, the vector-free
        form once it does not:

        * n = 1e6 (8 MB): plain 0.31-0.32x scipy on 1 thread against vector-free 0.34x,
          quiet or beside a busy process; 0.24x against 0.26x on 2 threads (quiet);
        * n = 3e6 (24 MB): plain 80 against vector-free 68 ms on 1 thread, 58 against
          51 ms on 2 (quiet); 81 against 71 ms on 1 thread beside a busy process;
        * n = 1e7 (80 MB): plain 238 against vector-free 216 ms on 1 thread, 194 against
          162 ms on 2 (quiet); 244 against 246 ms on 1 thread beside a busy process.

        ``None`` (default) takes the vector-free form from :data:`VECTOR_FREE_BYTES` per
        vector (:func:`vector_free_default`), the plain recursion below; ``True`` or
        ``False`` forces one. The two give the same directions up to rounding.
    space : VectorSpace, optional
        Where the inner products are reduced (default: this process). Another space
        (``fastopt.distributed``: the vector sharded across MPI ranks) needs
        ``vector_free=True``, whose one :func:`~fastopt._kernels.lbfgs_gram` array of
        partial sums per pair is all that must be reduced.
    """

    def __init__(self, n: int, m: int, dtype, scaling: bool = True,
                 vector_free: bool | None = None, space: VectorSpace = LOCAL):
        if space is not LOCAL and not vector_free:
            raise ValueError("space: a vector space other than LOCAL needs vector_free=True "
                             "(the two-loop kernel reduces inside C)")
        self.space = space
        self.scaling = scaling
        self.n, self.m = n, m
        self.slots = m + 1          # one spare row receives the candidate pair
        self.dtype = np.dtype(dtype)
        # np.empty, not np.zeros: a row is read only after a pair was written to it, and
        # numpy's calloc path first-touches fresh pages far more slowly on this VM (0.07 to
        # 0.5 s against 0.03 to 0.05 s for the 0.18 GB of m = 10 at n = 1e6, measured)
        self.S = np.empty((self.slots, n), dtype=self.dtype)
        self.Y = np.empty((self.slots, n), dtype=self.dtype)
        self.rho = np.zeros(self.slots)
        self.head = 0        # the free row: the next pair goes there
        self.count = 0
        self.gamma = 1.0
        self.eps = float(np.finfo(self.dtype).eps)
        self.vector_free = (vector_free_default(n, self.dtype) if vector_free is None
                            else bool(vector_free))
        # inner products by physical row: SY[i, j] = s_i . y_j (kept for i older than or
        # equal to j), YY[i, j] = y_i . y_j; Sp/Yp: s_i . p, y_i . p for the probe p
        self.SY = np.zeros((self.slots, self.slots))
        self.YY = np.zeros((self.slots, self.slots))
        self._probe: np.ndarray | None = None
        self._Sp = np.zeros(self.slots)
        self._Yp = np.zeros(self.slots)
        self._dbuf: np.ndarray | None = None   # reused output of direction()
        # the last trial point's candidate pair in the free row (trial_for):
        # (x_new, x_old, g_new, g_old, row, s.y, y.y)
        self._candidate: tuple | None = None

    # --------------------------------------------------------------- state
    @property
    def newest(self) -> int:
        return (self.head - 1) % self.slots

    @property
    def order(self):
        """Rows of the stored pairs, oldest first."""
        return [(self.head - self.count + k) % self.slots for k in range(self.count)]

    def is_empty(self) -> bool:
        return self.count == 0

    def reset(self, identity: bool = True) -> None:
        """Forget all pairs (H = I)."""
        self.count = 0
        self.head = 0
        self.gamma = 1.0
        self._probe = None
        self._candidate = None

    def _commit(self, sy: float, yy: float, slope: float | None = None) -> bool:
        if not curvature_ok(sy, yy, slope, self.eps):
            return False
        i = self.head
        self.rho[i] = 1.0 / sy
        if self.scaling:
            self.gamma = sy / yy
        self.head = (i + 1) % self.slots
        self.count = min(self.count + 1, self.m)
        return True

    def _store_gram(self, g: np.ndarray | None, slope: float | None = None,
                    known: tuple[float, float] | None = None) -> bool:
        """Inner products of the candidate row (and of ``g``) with the memory; commit.
        ``known``: the candidate's ``(s.y, y.y)``, already summed (by the trial pass, with
        the bits the gram would give), so the commit is decided first and the pass reads
        only the rows that stay: not the oldest pair a full memory drops (1/(m+1) of the
        pass), nor, when the pair is refused, the candidate and its products with y."""
        r = self.head
        if not self.vector_free:
            return self._commit(dot(self.S[r], self.Y[r]), dot(self.Y[r], self.Y[r]), slope)
        if known is not None and g is not None:
            ok = self._commit(known[0], known[1], slope)
            rows = self.order              # with the candidate r last when it was stored
            out = self.space.sums(_kernels.lbfgs_gram(self.S, self.Y, np.array(rows),
                                                      self.Y[r] if ok else None, g))
        else:
            rows = self.order + [r]
            out = self.space.sums(_kernels.lbfgs_gram(self.S, self.Y, np.array(rows),
                                                      self.Y[r],
                                                      g if g is not None else self.Y[r]))
            ok = self._commit(out[4 * len(rows) - 4], out[4 * len(rows) - 3], slope)
        k = len(rows)
        if ok:
            self.SY[rows, r] = out[0:4 * k:4]
            self.YY[rows, r] = out[1:4 * k:4]
            self.YY[r, rows] = out[1:4 * k:4]
        if g is not None:
            self._Sp[rows] = out[2:4 * k:4]
            self._Yp[rows] = out[3:4 * k:4]
        self._probe = g
        return ok

    def update(self, s: np.ndarray, y: np.ndarray) -> bool:
        r"""Store :math:`(s, y)` if :math:`s^T y > \varepsilon y^T y`; return whether stored."""
        self._candidate = None
        self.S[self.head] = s
        self.Y[self.head] = y
        return self._store_gram(None)

    def update_from(self, x_new, x_old, g_new, g_old, slope: float | None = None) -> bool:
        """:meth:`update` with ``s = x_new - x_old``, ``y = g_new - g_old`` formed in
        place (one pass that also returns ``s.y`` and ``y.y``:
        :func:`fastopt._kernels.lbfgs_pair`); the vector-free path also prepares the
        product with ``g_new`` (the next direction's). ``slope``: :math:`s^T g_{old}`
        (the curvature guard's scale; see the module)."""
        r = self.head
        c, self._candidate = self._candidate, None
        formed = (c is not None and c[0] is x_new and c[1] is x_old and c[2] is g_new
                  and c[3] is g_old and c[4] == r)
        if not self.vector_free:
            if c is not None and formed:
                sy, yy = c[5], c[6]
            else:
                sy, yy = _kernels.lbfgs_pair(x_new, x_old, g_new, g_old, self.S[r],
                                             self.Y[r])
            return self._commit(sy, yy, slope)
        if not formed:
            np.subtract(x_new, x_old, out=self.S[r])
            np.subtract(g_new, g_old, out=self.Y[r])
        return self._store_gram(g_new, slope,
                                (c[5], c[6]) if c is not None and formed else None)

    def trial_for(self, x: np.ndarray, g: np.ndarray, d: np.ndarray):
        """The line search's pass over a trial point along ``d`` from ``x`` (gradient
        ``g``): ``trial(xa, ga) -> (ga . d, max |ga|)``, which also writes the candidate
        pair ``(xa - x, ga - g)`` into the free row with its ``s.y`` and ``y.y``
        (:func:`fastopt._kernels.lbfgs_trial`: one pass instead of the slope's dot
        product, :func:`~fastopt._kernels.lbfgs_pair` and the gradient test's norm, the
        same bits). :meth:`update_from` with that point then commits it without another
        pass. None where the reductions are not local."""
        if self.space is not LOCAL or x.dtype != self.dtype:
            return None

        def trial(xa: np.ndarray, ga: np.ndarray) -> tuple[float, float]:
            r = self.head
            gd, sy, yy, gmax = _kernels.lbfgs_trial(xa, x, ga, g, d, self.S[r], self.Y[r])
            self._candidate = (xa, x, ga, g, r, sy, yy)
            return gd, gmax

        return trial

    def _product(self, g: np.ndarray, negate: bool, out=None, x=None, unit=None):
        """``(-1 if negate else 1) * H g``; with ``x``: ``(that, g . that)``, and the first
        trial point ``x + that`` written into ``unit`` by the same last pass."""
        g = np.asarray(g, dtype=self.dtype)
        if not self.vector_free or self.count == 0:
            return _kernels.lbfgs_two_loop(g, self.S, self.Y, self.rho, self.gamma,
                                           self.count, self.newest, out=out, negate=negate,
                                           x=x, x_unit=unit)
        o = np.array(self.order)
        if g is not self._probe:
            dots = self.space.sums(_kernels.lbfgs_gram(self.S, self.Y, o, None, g))
            self._Sp[o] = dots[2:4 * o.size:4]
            self._Yp[o] = dots[3:4 * o.size:4]
            self._probe = g
        ix = np.ix_(o, o)
        return _kernels.lbfgs_vf_direction(g, self.S, self.Y, o, self.rho[o], self.SY[ix],
                                           self.YY[ix], self._Sp[o], self._Yp[o],
                                           self.gamma, out=out, negate=negate, x=x,
                                           x_unit=unit)

    def apply(self, g: np.ndarray) -> np.ndarray:
        """:math:`H g` (C kernels)."""
        return self._product(g, False)

    def direction(self, g: np.ndarray) -> np.ndarray:
        """Search direction :math:`d = -H g`, written into a buffer that the next call
        reuses (one direction is alive at a time)."""
        if self._dbuf is None:
            self._dbuf = np.empty(self.n, dtype=self.dtype)
        return self._product(g, True, out=self._dbuf)

    def direction_step(self, g: np.ndarray, x: np.ndarray, pool: list):
        """:meth:`direction`, and the line search's first trial point from the same last
        pass while the direction is in cache: ``(d, g . d, x + d)`` (the bits of a dot
        product and an axpy; :func:`fastopt._kernels.lbfgs_two_loop` or
        :func:`~fastopt._kernels.lbfgs_vf_direction` with ``x``), the point in a spare
        array of ``pool``. ``(d, None, None)`` where ``g . d`` is not a local sum (another
        space) or ``x`` is not of the memory's dtype."""
        if self.space is not LOCAL or x.dtype != self.dtype:
            return self.direction(g), None, None
        if self._dbuf is None:
            self._dbuf = np.empty(self.n, dtype=self.dtype)
        unit = pool.pop() if pool else np.empty_like(x)
        d, gd = self._product(g, True, out=self._dbuf, x=x, unit=unit)
        return d, gd, unit

    # ----------------------------------------------------------- export
    def state_dict(self) -> dict[str, Any]:
        """Plain-array copy of the memory, oldest pair first."""
        o = self.order
        return {"s": self.S[o].copy(), "y": self.Y[o].copy(), "gamma": float(self.gamma)}

    def load(self, s: np.ndarray, y: np.ndarray, gamma: float | None = None) -> int:
        """Fill the memory from pairs (oldest first), keeping the newest ``m``.

        Pairs failing the curvature guard are dropped.  Returns the number stored.
        """
        s = np.asarray(s)
        y = np.asarray(y)
        if s.ndim != 2 or s.shape != y.shape or s.shape[1] != self.n:
            raise ValueError(f"warm start pairs must have shape (k, {self.n}); got s "
                             f"{s.shape} and y {y.shape}")
        self.reset()
        for k in range(max(0, s.shape[0] - self.m), s.shape[0]):
            self.update(s[k].astype(self.dtype), y[k].astype(self.dtype))
        if gamma is not None and self.count and self.scaling:
            self.gamma = float(gamma)
        return self.count

    def operator(self) -> LbfgsInverseHessian:
        """The memory as a LinearOperator (a view on the ring buffer: no copy)."""
        from .inverse_hessian import LbfgsInverseHessian  # imports scipy: on first use
        return LbfgsInverseHessian._from_ring(self.S, self.Y, self.rho, self.order,
                                              self.gamma)
