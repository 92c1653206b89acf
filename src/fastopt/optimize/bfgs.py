r"""BFGS: dense inverse-Hessian approximation with an O(n²) rank-2 update.

With :math:`s = x_{k+1} - x_k`, :math:`y = g_{k+1} - g_k`, :math:`\rho = 1/s^T y`,
the BFGS update of the inverse Hessian (Nocedal & Wright, eq. 6.17)

.. math::  H_+ = (I - \rho s y^T) H (I - \rho y s^T) + \rho s s^T

expands, with :math:`v = H y` and :math:`c = \rho + \rho^2 y^T v`, into the
symmetric rank-2 update

.. math::  H_+ = H + s w^T + w s^T, \qquad w = \tfrac{c}{2} s - \rho v,

one ``symv`` and one ``syr2`` (:math:`O(n^2)`, no :math:`O(n^3)` products as in
scipy's BFGS).  Only the upper triangle of the Fortran-ordered ``H`` is kept
current; :meth:`BfgsMemory.dense` returns the full symmetric matrix.

Before the first update :math:`H_0 = I` is rescaled to :math:`\gamma I`,
:math:`\gamma = s^T y / y^T y` (Nocedal & Wright, eq. 6.20), unless the user gave
``hess_inv0`` or a warm start.  Pairs failing the curvature guard of
:func:`~fastopt.optimize.lbfgs.curvature_ok` are skipped.

``H`` is stored in float64 also for float32 problems (its accumulated updates
are what makes the steps good); the BLAS calls are scipy's
(:mod:`scipy.linalg.blas`, ``dsymv``/``dsyr2``), reached from Python and imported
when a BFGS run starts.
"""
from __future__ import annotations

import numpy as np

from ._vector import dot
from .lbfgs import curvature_ok

__all__ = ["BfgsMemory"]


class BfgsMemory:
    r"""Dense inverse Hessian :math:`H` with the BFGS update.

    Parameters
    ----------
    n : int
    dtype : numpy dtype
        Working dtype of ``x`` (directions are returned in it).
    H0 : array_like, optional
        Initial inverse Hessian (symmetric positive definite); disables the
        :math:`\gamma` scaling of the first update.
    """

    def __init__(self, n: int, dtype, H0: np.ndarray | None = None):
        self.n = n
        self.dtype = np.dtype(dtype)
        self.eps = float(np.finfo(self.dtype).eps)
        self.user_H0 = H0 is not None
        self.H0 = None if H0 is None else np.array(H0, dtype=np.float64, order="F", copy=True)
        self.H = np.empty((n, n), dtype=np.float64, order="F")
        from scipy.linalg.blas import dsymv, dsyr2
        self._symv, self._syr2 = dsymv, dsyr2
        self.reset()

    def reset(self, identity: bool = False) -> None:
        """Back to :math:`H_0` (the user's, or, with ``identity``, the identity
        awaiting its scaling)."""
        if self.H0 is not None and not identity:
            self.H[...] = self.H0
            self.pristine = False
        else:
            self.H[...] = 0.0
            np.fill_diagonal(self.H, 1.0)
            self.pristine = True    # identity, not yet scaled
        self.count = 0
        self.from_user = self.H0 is not None and not identity

    def is_empty(self) -> bool:
        return self.count == 0 and not self.from_user

    def apply(self, g: np.ndarray) -> np.ndarray:
        """:math:`H g` (upper triangle of ``H`` read by ``dsymv``)."""
        if self.pristine:
            return np.array(g, dtype=self.dtype, copy=True)
        return self._symv(1.0, self.H, np.asarray(g, dtype=np.float64)).astype(self.dtype, copy=False)

    def direction(self, g: np.ndarray) -> np.ndarray:
        d = self.apply(g)
        np.negative(d, out=d)
        return d

    def update(self, s: np.ndarray, y: np.ndarray, slope: float | None = None) -> bool:
        """BFGS update with the pair ``(s, y)``; returns whether it was applied.
        ``slope``: :math:`s^T g_{old}`, the curvature guard's scale."""
        sy = dot(s, y)
        yy = dot(y, y)
        if not curvature_ok(sy, yy, slope, self.eps):
            return False
        s64 = np.asarray(s, dtype=np.float64)
        y64 = np.asarray(y, dtype=np.float64)
        if self.pristine:
            gamma = sy / yy
            self.H *= gamma          # diagonal only is non-zero
            self.pristine = False
        rho = 1.0 / sy
        v = self._symv(1.0, self.H, y64)
        c = rho + rho * rho * float(np.dot(y64, v))
        w = (0.5 * c) * s64 - rho * v
        # H <- H + s w' + w s'   (upper triangle, in place)
        self.H = self._syr2(1.0, s64, w, a=self.H, overwrite_a=1)
        self.count += 1
        return True

    def update_from(self, x_new, x_old, g_new, g_old, slope: float | None = None) -> bool:
        """:meth:`update` with ``s = x_new - x_old``, ``y = g_new - g_old``."""
        return self.update(np.subtract(x_new, x_old, dtype=np.float64),
                           np.subtract(g_new, g_old, dtype=np.float64), slope)

    def dense(self) -> np.ndarray:
        """The full symmetric :math:`H` (a new C-ordered float64 array)."""
        U = np.triu(self.H)
        return U + np.triu(self.H, 1).T
