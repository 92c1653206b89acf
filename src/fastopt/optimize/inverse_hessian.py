"""The L-BFGS inverse Hessian as a :class:`scipy.sparse.linalg.LinearOperator`
(``res.hess_inv`` of L-BFGS and OWL-QN).

This module imports scipy; :mod:`fastopt.optimize` loads it on first use, so that
``import fastopt`` does not import scipy.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from fastopt import _kernels

from ._vector import dot

__all__ = ["LbfgsInverseHessian"]


class LbfgsInverseHessian(LinearOperator):
    r"""The L-BFGS inverse-Hessian approximation as a ``LinearOperator``.

    :math:`H = V_{k-1}^T \cdots V_{k-m}^T (\gamma I) V_{k-m} \cdots V_{k-1} + \dots`,
    applied with the two-loop recursion (never formed; :meth:`todense` forms it).

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

    Examples
    --------
    ``res.hess_inv`` of ``method="L-BFGS"``:

    >>> import numpy as np
    >>> import fastopt
    >>> A = np.diag([1.0, 10.0, 100.0])
    >>> res = fastopt.minimize(lambda x: (0.5 * x @ A @ x, A @ x), np.ones(3), jac=True,
    ...                        method="L-BFGS")
    >>> H = res.hess_inv
    >>> H.shape, H.s.shape[1]
    ((3, 3), 3)
    >>> bool(np.allclose(H @ (A @ H.s[-1]), H.s[-1]))   # the secant condition H y = s
    True
    """

    def __init__(self, s: np.ndarray, y: np.ndarray, gamma: float):
        s = np.ascontiguousarray(s)
        y = np.ascontiguousarray(y)
        rho = np.array([1.0 / dot(s[i], y[i]) for i in range(s.shape[0])])
        self._init(s, y, rho, list(range(s.shape[0])), gamma)

    @classmethod
    def _from_ring(cls, S, Y, rho, rows, gamma) -> LbfgsInverseHessian:
        self = cls.__new__(cls)
        self._init(S, Y, rho, list(rows), gamma)
        return self

    def _init(self, S, Y, rho, rows, gamma):
        n = S.shape[1]
        super().__init__(dtype=S.dtype, shape=(n, n))
        self._S, self._Y, self._rho, self._rows = S, Y, rho, rows
        self.gamma = float(gamma)

    @property
    def n_pairs(self) -> int:
        return len(self._rows)

    @property
    def s(self) -> np.ndarray:
        """The stored :math:`s_i`, oldest first, shape (k, n) (a copy)."""
        return self._S[self._rows]

    @property
    def y(self) -> np.ndarray:
        """The stored :math:`y_i`, oldest first, shape (k, n) (a copy)."""
        return self._Y[self._rows]

    @property
    def rho(self) -> np.ndarray:
        """:math:`1 / s_i^T y_i`, oldest first."""
        return self._rho[self._rows]

    def _matvec(self, v):
        v = np.ascontiguousarray(np.asarray(v).reshape(-1), dtype=self.dtype)
        k = self.n_pairs
        return _kernels.lbfgs_two_loop(v, self._S, self._Y, self._rho, self.gamma, k,
                                       self._rows[-1] if k else 0)

    def todense(self) -> np.ndarray:
        """The dense ``(n, n)`` matrix (n two-loop products: for inspection only)."""
        n = self.shape[0]
        return np.stack([self._matvec(e) for e in np.eye(n, dtype=self.dtype)], axis=1)

    def _rmatvec(self, v):
        return self._matvec(v)  # symmetric

    def _adjoint(self):
        return self

    def state_dict(self) -> dict[str, Any]:
        """Plain arrays (copies), oldest pair first: ``{"s", "y", "gamma"}``."""
        return {"s": self.s, "y": self.y, "gamma": self.gamma}
