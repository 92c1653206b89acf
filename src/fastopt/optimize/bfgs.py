r"""BFGS: dense inverse-Hessian approximation with an O(n²) rank-2 update.

With :math:`s = x_{k+1} - x_k`, :math:`y = g_{k+1} - g_k`, :math:`\rho = 1/s^T y`,
the BFGS update of the inverse Hessian (Nocedal & Wright, eq. 6.17)

.. math::  H_+ = (I - \rho s y^T) H (I - \rho y s^T) + \rho s s^T

expands, with :math:`v = H y` and :math:`c = \rho + \rho^2 y^T v`, into the
symmetric rank-2 update

.. math::  H_+ = H + s w^T + w s^T, \qquad w = \tfrac{c}{2} s - \rho v,

one ``symv`` and one ``syr2`` (:math:`O(n^2)`, no :math:`O(n^3)` products as in
scipy's BFGS), both fastopt's own C kernels (:func:`fastopt._kernels.symv`,
:func:`fastopt._kernels.syr2`; the update and the next direction's product
:math:`H_+ g_+` share one pass, :func:`fastopt._kernels.syr2_symv`: two passes over
``H`` per iteration after the first instead of three) on the whole C-ordered matrix: sums in float64 over
fixed blocks in a fixed order, so the iterates are the same bits for any thread count,
CPU and BLAS (scipy's bundled ``dsymv``/``dsyr2`` differ per CPU kernel in the last
bits, and on a badly scaled problem that decided convergence).

Before the first update :math:`H_0 = I` is rescaled to :math:`\gamma I`,
:math:`\gamma = s^T y / y^T y` (Nocedal & Wright, eq. 6.20), unless the user gave
``hess_inv0``, a warm start or ``scaling=False`` (scipy's choice; measured in
``fastopt.minimize``'s notes). As scipy's BFGS, a quasi-Newton step's first trial step
is the one the last decrease predicts,
``min(1, 1.01 * 2 (f_k - f_{k-1}) / g_k^T d_k)``.  Pairs failing the curvature guard of
:func:`~fastopt.optimize.lbfgs.curvature_ok` are skipped.

If :math:`H` has lost positive definiteness to rounding (:math:`y^T H y \le 0`, or
not finite), the update restarts from :math:`\gamma I` with this pair instead
(``restarts`` counts it).

``H`` is stored in float64 also for float32 problems (its accumulated updates
are what makes the steps good).
"""
from __future__ import annotations

import numpy as np

from fastopt import _kernels

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
        # exactly symmetric (the kernels keep it so; a user's H0 may be off in the last bits)
        self.H0 = None if H0 is None else 0.5 * (np.asarray(H0, dtype=np.float64)
                                                  + np.asarray(H0, dtype=np.float64).T)
        self.H = np.empty((n, n), dtype=np.float64)
        self._v = np.empty(n, dtype=np.float64)      # H y of the update
        # (g, H g) formed by the last update's fused pass, for the next direction(g)
        self._next: tuple[np.ndarray, np.ndarray] | None = None
        self.restarts = 0
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
        self._next = None

    def is_empty(self) -> bool:
        return self.count == 0 and not self.from_user

    def apply(self, g: np.ndarray) -> np.ndarray:
        """:math:`H g` (:func:`fastopt._kernels.symv`, or the product the last update's
        pass already formed when ``g`` is the gradient it was given)."""
        ahead, self._next = self._next, None
        if ahead is not None and ahead[0] is g:
            return ahead[1].astype(self.dtype, copy=False)
        if self.pristine:
            return np.array(g, dtype=self.dtype, copy=True)
        return _kernels.symv(self.H, np.asarray(g, dtype=np.float64)).astype(self.dtype,
                                                                             copy=False)

    def direction(self, g: np.ndarray) -> np.ndarray:
        d = self.apply(g)
        np.negative(d, out=d)
        return d

    def update(self, s: np.ndarray, y: np.ndarray, slope: float | None = None,
               g_next: np.ndarray | None = None) -> bool:
        """BFGS update with the pair ``(s, y)``; returns whether it was applied.
        ``slope``: :math:`s^T g_{old}`, the curvature guard's scale; ``g_next``: the
        gradient the next direction will be asked for: :math:`H_+ g` is formed in the
        update's pass over ``H`` (:func:`fastopt._kernels.syr2_symv`)."""
        self._next = None
        sy = dot(s, y)
        yy = dot(y, y)
        if not curvature_ok(sy, yy, slope, self.eps):
            return False
        s64 = np.asarray(s, dtype=np.float64)
        y64 = np.asarray(y, dtype=np.float64)
        if self.pristine:
            self._scaled_identity(sy / yy)
        v = _kernels.symv(self.H, y64, out=self._v)
        yHy = dot(y64, v)
        if not (yHy > 0.0 and np.isfinite(yHy)):
            # H is no longer positive definite (rounding): start again from gamma I
            self.restarts += 1
            self._scaled_identity(sy / yy)
            v = _kernels.symv(self.H, y64, out=self._v)
            yHy = dot(y64, v)
        rho = 1.0 / sy
        c = rho + rho * rho * yHy
        w = (0.5 * c) * s64 - rho * v
        # H <- H + s w' + w s'
        if g_next is None:
            _kernels.syr2(1.0, s64, w, self.H)
        else:
            Hg = _kernels.syr2_symv(1.0, s64, w, self.H, np.asarray(g_next, dtype=np.float64))
            self._next = (g_next, Hg)
        self.count += 1
        return True

    def _scaled_identity(self, gamma: float) -> None:
        self.H[...] = 0.0
        np.fill_diagonal(self.H, gamma)
        self.pristine = False

    def update_from(self, x_new, x_old, g_new, g_old, slope: float | None = None) -> bool:
        """:meth:`update` with ``s = x_new - x_old``, ``y = g_new - g_old``."""
        return self.update(np.subtract(x_new, x_old, dtype=np.float64),
                           np.subtract(g_new, g_old, dtype=np.float64), slope, g_next=g_new)

    def dense(self) -> np.ndarray:
        """The full symmetric :math:`H` (a new C-ordered float64 array)."""
        return self.H.copy()
