r"""L-BFGS: limited-memory inverse Hessian (ring buffer + two-loop recursion).

The memory holds the last :math:`m` correction pairs

.. math::  s_k = x_{k+1} - x_k, \qquad y_k = g_{k+1} - g_k,

as two contiguous ``(m, n)`` arrays used as a ring buffer, with
:math:`\rho_k = 1/(s_k^T y_k)` and the scaling :math:`\gamma = s^T y / y^T y`
of the newest pair (Nocedal & Wright, eq. 7.20).  A pair is stored only if
:math:`s^T y > \varepsilon\, y^T y` (curvature guard, as LBFGS++), with
:math:`\varepsilon` the machine epsilon of the working dtype; the products are
accumulated in float64.

:math:`H g` is the two-loop recursion (Nocedal & Wright, Algorithm 7.4):

.. math::
    q &\leftarrow g;\quad a_i \leftarrow \rho_i s_i^T q,\ q \leftarrow q - a_i y_i
        \quad (i = k-1, \dots, k-m)\\
    r &\leftarrow \gamma q;\quad b \leftarrow \rho_i y_i^T r,\ r \leftarrow r + (a_i - b) s_i
        \quad (i = k-m, \dots, k-1)

which costs :math:`4mn` multiply-adds.  :class:`LbfgsInverseHessian` exposes the
same operator as a :class:`scipy.sparse.linalg.LinearOperator` (``res.hess_inv``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ._vector import dot

__all__ = ["LbfgsMemory", "LbfgsInverseHessian", "two_loop"]


def two_loop(g: np.ndarray, S: np.ndarray, Y: np.ndarray, rho: np.ndarray, order,
             gamma: float) -> np.ndarray:
    r"""Return :math:`H g` for the pairs ``S[order], Y[order]`` (oldest first).

    Parameters
    ----------
    g : ndarray, shape (n,)
    S, Y : ndarray, shape (m, n)
        Ring buffers of :math:`s_i`, :math:`y_i`.
    rho : ndarray, shape (m,)
        :math:`1 / s_i^T y_i` (float64).
    order : sequence of int
        Slots of the stored pairs, oldest first.
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
    r"""Ring buffer of ``m`` correction pairs and the two-loop product.

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
    """

    def __init__(self, n: int, m: int, dtype, scaling: bool = True):
        self.scaling = scaling
        self.n, self.m = n, m
        self.dtype = np.dtype(dtype)
        self.S = np.zeros((m, n), dtype=self.dtype)
        self.Y = np.zeros((m, n), dtype=self.dtype)
        self.rho = np.zeros(m)
        self.head = 0        # slot the next pair goes to
        self.count = 0
        self.gamma = 1.0
        self.eps = float(np.finfo(self.dtype).eps)

    # --------------------------------------------------------------- state
    @property
    def order(self):
        """Slots of the stored pairs, oldest first."""
        return [(self.head - self.count + k) % self.m for k in range(self.count)]

    def is_empty(self) -> bool:
        return self.count == 0

    def reset(self, identity: bool = True) -> None:
        """Forget all pairs (H = I)."""
        self.count = 0
        self.head = 0
        self.gamma = 1.0

    def update(self, s: np.ndarray, y: np.ndarray) -> bool:
        r"""Store :math:`(s, y)` if :math:`s^T y > \varepsilon y^T y`; return whether stored."""
        sy = dot(s, y)
        yy = dot(y, y)
        if not (sy > self.eps * yy) or not np.isfinite(sy) or not np.isfinite(yy):
            return False
        i = self.head
        self.S[i] = s
        self.Y[i] = y
        self.rho[i] = 1.0 / sy
        if self.scaling:
            self.gamma = sy / yy
        self.head = (i + 1) % self.m
        self.count = min(self.count + 1, self.m)
        return True

    def apply(self, g: np.ndarray) -> np.ndarray:
        """:math:`H g` by the two-loop recursion (``g`` itself when empty)."""
        if self.count == 0:
            return np.array(g, dtype=self.dtype, copy=True)
        return two_loop(g, self.S, self.Y, self.rho, self.order, self.gamma)

    def direction(self, g: np.ndarray) -> np.ndarray:
        """Search direction :math:`d = -H g`."""
        d = self.apply(g)
        np.negative(d, out=d)
        return d

    # ----------------------------------------------------------- export
    def state_dict(self) -> Dict[str, Any]:
        """Plain-array copy of the memory, oldest pair first."""
        o = self.order
        return {"s": self.S[o].copy(), "y": self.Y[o].copy(), "gamma": float(self.gamma)}

    def load(self, s: np.ndarray, y: np.ndarray, gamma: Optional[float] = None) -> int:
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

    def operator(self) -> "LbfgsInverseHessian":
        st = self.state_dict()
        return LbfgsInverseHessian(st["s"], st["y"], st["gamma"])


class LbfgsInverseHessian(LinearOperator):
    r"""The L-BFGS inverse-Hessian approximation as a ``LinearOperator``.

    :math:`H = V_{k-1}^T \cdots V_{k-m}^T (\gamma I) V_{k-m} \cdots V_{k-1} + \dots`,
    applied with the two-loop recursion (never formed; ``todense()`` forms it).

    Parameters
    ----------
    s, y : ndarray, shape (k, n)
        The stored pairs, oldest first.
    gamma : float
        Initial scaling :math:`H_0 = \gamma I`.

    Attributes
    ----------
    s, y, rho, gamma
        The memory; ``fastopt.minimize(..., options={"warm_start": res})`` reads
        them back.
    """

    def __init__(self, s: np.ndarray, y: np.ndarray, gamma: float):
        s = np.asarray(s)
        y = np.asarray(y)
        n = s.shape[1]
        super().__init__(dtype=s.dtype if s.size else np.dtype(np.float64), shape=(n, n))
        self.s = s
        self.y = y
        self.gamma = float(gamma)
        self.rho = np.array([1.0 / dot(s[i], y[i]) for i in range(s.shape[0])])

    @property
    def n_pairs(self) -> int:
        return self.s.shape[0]

    def _matvec(self, v):
        v = np.asarray(v).reshape(-1)
        if self.n_pairs == 0:
            return (self.gamma * v).astype(self.dtype, copy=False)
        return two_loop(v.astype(self.dtype, copy=False), self.s, self.y, self.rho,
                        list(range(self.n_pairs)), self.gamma)

    def todense(self) -> np.ndarray:
        """The dense ``(n, n)`` matrix (n two-loop products: for inspection only)."""
        n = self.shape[0]
        return np.stack([self._matvec(e) for e in np.eye(n, dtype=self.dtype)], axis=1)

    def _rmatvec(self, v):
        return self._matvec(v)  # symmetric

    def _adjoint(self):
        return self

    def state_dict(self) -> Dict[str, Any]:
        return {"s": self.s.copy(), "y": self.y.copy(), "gamma": self.gamma}
