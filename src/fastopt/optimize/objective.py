"""The objective as the solvers see it: counted calls, one dtype, flat vectors.

:class:`Objective` wraps the user's ``fun``/``jac`` pair once, so the solvers
never deal with ``args``, ``jac=True``, finite differences, shapes or dtypes.

* ``fun`` receives a **copy** of the current point, shaped like ``x0`` (scipy
  gh-13740: a user function that modifies its argument cannot corrupt the
  solver's state).  The copy goes into a buffer that is reused from call to
  call as long as ``fun`` kept no reference to it (CPython reference count):
  a fresh 8 MB array costs page faults that can exceed the solver's own work
  per iteration at n = 1e6.
* The gradient is copied into a flat array of the working dtype, so a user
  function returning one reused buffer cannot corrupt the stored ``(s, y)``
  pairs -- except when the returned array is a fresh one nobody else holds
  (it owns its data and its reference count says the solver has the only
  reference), which is then taken over without a copy.
* Finite differences stay inside a box when one is set (:meth:`Objective.set_box`,
  L-BFGS-B): a step that would leave it is reversed, or shortened to the room there is,
  and a central difference becomes one-sided near a bound (scipy's
  ``approx_derivative`` rules); variables the box fixes (``lower == upper``) are never
  perturbed: their derivative is not estimated (0 for the solver; scipy removes them
  from the problem and reports NaN, which ``minimize`` does too).
* ``nfev`` counts calls of ``fun`` (finite-difference calls included, as in
  scipy) and ``njev`` counts gradient evaluations (analytic, or one per
  finite-difference approximation).  With ``jac=True`` every call of ``fun``
  yields both, so ``nfev == njev``.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["MaxFunReached", "Objective"]


class MaxFunReached(Exception):
    """Raised internally when ``maxfun`` evaluations are used up."""


class Objective:
    """Counted, dtype-consistent access to ``fun`` and its gradient.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float`` or, with ``jac=True``, ``-> (float, array)``.
    shape : tuple
        Shape of ``x0``; ``fun`` receives arrays of this shape.
    dtype : numpy dtype
        Working dtype (float32 or float64).
    args : tuple
        Extra arguments for ``fun`` and ``jac``.
    jac : callable, bool, str or None
        ``True``: ``fun`` returns ``(f, g)``; callable: ``jac(x, *args)``;
        ``None``/``False``/``"2-point"``: forward differences;
        ``"3-point"``: central differences.
    fd_rel_step : float, ndarray or None
        Relative finite-difference step (one per variable, or one for all); default
        ``sqrt(eps)`` (2-point) or ``eps**(1/3)`` (3-point) of the working dtype. The
        step of variable ``i`` is ``fd_rel_step * max(1, |x_i|)`` with the sign of
        ``x_i`` (scipy's rule).
    fd_abs_step : float, ndarray or None
        Absolute step (scipy's ``eps`` option), used as given where ``x_i + h != x_i``
        (elsewhere the relative step); wins over ``fd_rel_step``.
    maxfun : int or None
        Calls of ``fun`` allowed; one more raises :class:`MaxFunReached`.
    """

    def __init__(self, fun: Callable, shape: tuple[int, ...], dtype: np.dtype,
                 args: tuple = (), jac: Any = None, fd_rel_step: Any = None,
                 maxfun: int | None = None, fd_abs_step: Any = None):
        self._fun = fun
        self.shape = shape
        self.n = int(np.prod(shape)) if shape else 1
        self.dtype = np.dtype(dtype)
        self.args = args
        self.maxfun = maxfun
        self.nfev = 0
        self.njev = 0
        if jac is True:
            self.mode = "combined"
            self._jac = None
        elif callable(jac):
            self.mode = "jac"
            self._jac = jac
        elif jac is None or jac is False or jac == "2-point":
            self.mode = "2-point"
            self._jac = None
        elif jac == "3-point":
            self.mode = "3-point"
            self._jac = None
        else:
            raise ValueError(f"jac must be True, a callable, None, '2-point' or '3-point'; "
                             f"got {jac!r}")
        eps = float(np.finfo(self.dtype).eps)
        if fd_rel_step is None:
            fd_rel_step = eps ** 0.5 if self.mode == "2-point" else eps ** (1 / 3)
        self.fd_rel_step = np.broadcast_to(np.asarray(fd_rel_step, dtype=np.float64),
                                           (self.n,))
        self.fd_abs_step = (None if fd_abs_step is None else
                            np.broadcast_to(np.asarray(fd_abs_step, dtype=np.float64),
                                            (self.n,)))
        # identity cache of the last point whose value is known (for f-then-grad)
        self._last_x: np.ndarray | None = None
        self._last_f = 0.0
        self._last_g: np.ndarray | None = None
        self._ubuf: np.ndarray | None = None   # the copy of x handed to fun
        # the box finite differences stay in (float64, +-inf where open) and the
        # variables it fixes (set_box)
        self._lower: np.ndarray | None = None
        self._upper: np.ndarray | None = None
        self.fixed: np.ndarray | None = None

    def set_box(self, lower: np.ndarray | None, upper: np.ndarray | None) -> None:
        """Keep finite-difference steps inside ``lower <= x <= upper`` (flat arrays of
        size n, +-inf where open; None: no box) and leave fixed variables alone."""
        if lower is None or upper is None:
            self._lower = self._upper = self.fixed = None
            return
        self._lower = np.asarray(lower, dtype=np.float64).reshape(self.n)
        self._upper = np.asarray(upper, dtype=np.float64).reshape(self.n)
        fixed = self._lower == self._upper
        self.fixed = fixed if fixed.any() else None

    @property
    def finite_differences(self) -> bool:
        return self.mode in ("2-point", "3-point")

    # ------------------------------------------------------------------ calls
    def forget(self, x: np.ndarray) -> None:
        """``x`` is about to be reused for another point: drop it from the cache."""
        if self._last_x is x:
            self._last_x, self._last_g = None, None

    def _user_copy(self, x: np.ndarray) -> np.ndarray:
        """``x`` copied into an array of x0's shape for the user's function."""
        buf = self._ubuf
        # references: the attribute, `buf` and getrefcount's argument -- any other one
        # means the user kept the array (or a view of it): then it is not reused
        if buf is None or sys.getrefcount(buf) > 3:
            buf = np.empty(self.shape, dtype=self.dtype)
            self._ubuf = buf
        np.copyto(buf.reshape(-1), x)
        return buf

    def _call(self, x: np.ndarray):
        if self.maxfun is not None and self.nfev >= self.maxfun:
            raise MaxFunReached
        self.nfev += 1
        return self._fun(self._user_copy(x), *self.args)

    def _scalar(self, value, what="fun") -> float:
        arr = np.asarray(value)
        if arr.size != 1:
            raise ValueError(f"{what} must return a scalar, got an array of shape {arr.shape}")
        if np.iscomplexobj(arr):
            raise TypeError(f"{what} must return a real scalar, got {arr.dtype}")
        return float(arr.reshape(()))

    def _vector(self, value, what: str, fresh: bool = False) -> np.ndarray:
        """The gradient as a flat array of the working dtype that the solver owns.

        ``fresh``: the caller saw no reference to ``value`` but its own, so an
        array that owns its data can be kept without copying."""
        arr = np.asarray(value)
        if arr.size != self.n:
            raise ValueError(f"{what} must return a gradient with {self.n} elements "
                             f"(the size of x0), got shape {arr.shape}")
        if np.iscomplexobj(arr):
            raise TypeError(f"{what} must return a real gradient, got {arr.dtype}")
        if (fresh and arr is value and type(arr) is np.ndarray and arr.dtype == self.dtype
                and arr.flags.owndata and arr.flags.c_contiguous and arr.flags.writeable):
            return arr.reshape(self.n)
        return np.array(arr, dtype=self.dtype, copy=True).reshape(self.n)

    def f(self, x: np.ndarray) -> float:
        """Value at ``x``; with ``jac=True`` the gradient is kept for :meth:`grad`."""
        if self.mode == "combined":
            out = self._call(x)
            try:
                fv, gv = out
            except (TypeError, ValueError):
                raise TypeError("with jac=True, fun must return a pair (f, gradient)") from None
            del out
            f = self._scalar(fv)
            self.njev += 1
            # references to gv: this frame and getrefcount's argument
            fresh = sys.getrefcount(gv) == 2
            self._last_x, self._last_f, self._last_g = x, f, self._vector(gv, "fun", fresh)
            return f
        f = self._scalar(self._call(x))
        self._last_x, self._last_f, self._last_g = x, f, None
        return f

    def grad(self, x: np.ndarray) -> np.ndarray:
        """Gradient at ``x``, reusing the value computed by :meth:`f` at the same array."""
        if self._last_x is x and self._last_g is not None:
            return self._last_g
        if self.mode == "combined":
            self.f(x)
            assert self._last_g is not None     # f() of a combined fun keeps the gradient
            return self._last_g
        if self.mode == "jac":
            assert self._jac is not None
            self.njev += 1
            gv = self._jac(self._user_copy(x), *self.args)
            fresh = sys.getrefcount(gv) == 2
            g = self._vector(gv, "jac", fresh)
            del gv
        else:
            f0 = self._last_f if self._last_x is x else self.f(x)
            g = self._fd(x, f0)
        if self._last_x is x:
            self._last_g = g
        return g

    def fg(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Value and gradient at ``x``."""
        f = self.f(x)
        return f, self.grad(x)

    # ------------------------------------------------------ finite differences
    def _fd_step(self, xi: float, i: int) -> float:
        """The step of variable ``i`` at ``x_i = xi`` (scipy's rules, see the class)."""
        if self.fd_abs_step is not None:
            h = float(self.fd_abs_step[i])
            if float(self.dtype.type(xi + h)) != xi:
                return h
        h = float(self.fd_rel_step[i]) * max(1.0, abs(xi))
        return h if xi >= 0 else -h

    def _fd_in_box(self, xi: float, h: float, i: int) -> tuple[float, bool]:
        """Step ``h`` of variable ``i`` at ``xi`` moved inside the box, and whether a
        central difference must become one-sided (the rules of scipy's
        ``approx_derivative``: a forward step that leaves the box is reversed if the
        other side has room, else shortened to the larger side's room; a central one
        that does not fit becomes one-sided toward the larger room, at most half of it,
        or shrinks to the smaller room when that is no shorter)."""
        assert self._lower is not None and self._upper is not None
        lo, hi = float(self._lower[i]), float(self._upper[i])
        below, above = xi - lo, hi - xi
        if self.mode == "2-point":
            if lo <= xi + h <= hi:
                return h, False
            if abs(h) <= max(below, above):
                return -h, False
            return (above, False) if above >= below else (-below, False)
        if below >= h and above >= h:
            return h, False
        if above >= below:
            h_new, one_sided = min(h, 0.5 * above), True
        else:
            h_new, one_sided = -min(h, 0.5 * below), True
        room = min(above, below)
        if abs(h_new) <= room:
            return room, False
        return h_new, one_sided

    def _fd(self, x: np.ndarray, f0: float) -> np.ndarray:
        self.njev += 1
        g = np.empty(self.n, dtype=self.dtype)
        xt = x.copy()
        boxed = self._lower is not None
        fixed = self.fixed
        for i in range(self.n):
            if fixed is not None and fixed[i]:
                g[i] = 0.0      # never perturbed (scipy removes the variable)
                continue
            xi = x[i]
            h = self._fd_step(float(xi), i)
            if self.mode == "3-point":
                h = abs(h)      # central: both sides anyway (scipy's order: x - h first)
            one_sided = False
            if boxed:
                h, one_sided = self._fd_in_box(float(xi), h, i)
            if self.mode == "2-point":
                xt[i] = xi + h
                hh = float(xt[i]) - float(xi)  # the step actually taken
                g[i] = (self._scalar(self._call(xt)) - f0) / hh
            elif one_sided:     # f0, f(x + h), f(x + 2h): second order, one side
                xt[i] = xi + h
                f1 = self._scalar(self._call(xt))
                xt[i] = xi + 2 * h
                h2 = float(xt[i]) - float(xi)
                f2 = self._scalar(self._call(xt))
                g[i] = (-3.0 * f0 + 4.0 * f1 - f2) / h2
            else:
                xt[i] = xi - h
                lo = float(xt[i])
                fm = self._scalar(self._call(xt))
                xt[i] = xi + h
                fp = self._scalar(self._call(xt))
                g[i] = (fp - fm) / (float(xt[i]) - lo)
            xt[i] = xi
        return g
