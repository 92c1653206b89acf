r"""Line searches: Moré–Thuente (strong Wolfe) and Armijo backtracking.

Both search the one-dimensional function

.. math::  \phi(\alpha) = f(x + \alpha d), \qquad \phi'(\alpha) = g(x + \alpha d)^T d,

along a descent direction :math:`d` (:math:`\phi'(0) < 0`) for a step satisfying

* sufficient decrease (Armijo):
  :math:`\phi(\alpha) \le \phi(0) + c_1 \alpha \phi'(0)`,
* and, for Moré–Thuente, the strong curvature condition:
  :math:`|\phi'(\alpha)| \le c_2 |\phi'(0)|`,

with :math:`0 < c_1 < c_2 < 1`.

:func:`more_thuente` follows J. J. Moré and D. J. Thuente, "Line search
algorithms with guaranteed sufficient decrease", *ACM TOMS* 20(3), 1994: a
safeguarded interval of uncertainty :math:`[\alpha_l, \alpha_u]`, trial steps
from cubic and quadratic interpolation (:func:`_mt_step`), the auxiliary
function :math:`\psi(\alpha) = \phi(\alpha) - \phi(0) - c_1\alpha\phi'(0)` while
no step with :math:`\psi \le 0, \phi' \ge 0` has been seen, and bisection when the
interval does not shrink fast enough.

fastopt additions (robustness, not in the paper):

* a trial step where ``fun`` or the gradient is NaN/Inf is treated as "too
  long": the search retreats towards the best step and never goes that far
  again, instead of failing;
* when the search ends without satisfying both conditions (interval below
  rounding level, ``maxls`` evaluations, step bound), the best step that
  satisfies sufficient decrease is returned as a *weak* step
  (``curvature=False``); only if no such step exists does the search fail, and
  the result then says which condition failed after how many evaluations;
* the step at the best end of the interval is remembered, so returning it never
  costs an extra evaluation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._vector import LOCAL, VectorSpace, axpy
from .objective import MaxFunReached, Objective

__all__ = ["Line", "LineSearchResult", "more_thuente", "backtracking"]


class Line:
    r"""The objective restricted to the line :math:`x + \alpha d`.

    Parameters
    ----------
    obj : Objective
    x, d : ndarray
        Start point and direction (working dtype, flat).
    f0 : float
        :math:`\phi(0)`.
    g0 : ndarray
        Gradient at ``x``.
    pool : list, optional
        Spare arrays (shape and dtype of ``x``) that trial points may reuse;
        every trial point is recorded in :attr:`points` so that the caller can
        give back the ones it does not keep (:meth:`release`).
    space : VectorSpace, optional
        Where the slopes :math:`g^T d` are reduced (default: this process).
    trial : callable, optional
        ``trial(xa, ga) -> (slope, gmax)``: the slope :math:`g_a^T d` and
        :math:`\|g_a\|_\infty` of a trial point, from a pass that also does other work
        on it (L-BFGS: :meth:`~fastopt.optimize.lbfgs.LbfgsMemory.trial_for` forms the
        candidate pair in the same pass); by default the slope is a dot product.
    dphi0 : float, optional
        :math:`g_0^T d` when the pass that formed ``d`` computed it (else a dot product).
    unit : ndarray, optional
        The point :math:`x + d` (:math:`\alpha = 1`, the usual first trial) when the pass
        that formed ``d`` wrote it too; a spare array of the pool, given back by
        :meth:`release` if the search never asks for it.
    """

    def __init__(self, obj: Objective, x: np.ndarray, d: np.ndarray, f0: float,
                 g0: np.ndarray, pool: list | None = None, space: VectorSpace = LOCAL,
                 trial=None, dphi0: float | None = None, unit: np.ndarray | None = None):
        self.obj = obj
        self.x = x
        self.d = d
        self.f0 = f0
        self.g0 = g0
        self.space = space
        self.dphi0 = space.dot(g0, d) if dphi0 is None else dphi0
        self.pool = pool
        self.points: list = []
        self.trial = trial
        # (the last trial's gradient, its max-norm)
        self._gmax: tuple[np.ndarray, float] | None = None
        self.unit: np.ndarray | None = unit

    def _take_unit(self, alpha: float) -> np.ndarray | None:
        """The ready point :math:`x + d` when ``alpha`` is 1 and it was formed."""
        if alpha != 1.0 or self.unit is None:
            return None
        out, self.unit = self.unit, None
        self.points.append(out)
        return out

    def point(self, alpha: float) -> np.ndarray:
        unit = self._take_unit(alpha)
        if unit is not None:
            return unit
        out = self.pool.pop() if self.pool else np.empty_like(self.x)
        self.points.append(out)
        if alpha == 0.0:
            np.copyto(out, self.x)
            return out
        return axpy(alpha, self.d, self.x, out=out)

    def release(self, keep: np.ndarray | None) -> None:
        """Give every trial point but ``keep`` (and the unused unit point) back to the
        pool."""
        if self.unit is not None:       # formed, never asked for
            if self.pool is not None:
                self.pool.append(self.unit)
            self.unit = None
        if self.pool is None:
            return
        for a in self.points:
            if a is not keep:
                self.obj.forget(a)
                self.pool.append(a)
        self.points = []

    def value(self, alpha: float) -> tuple[float, np.ndarray]:
        xa = self.point(alpha)
        return self.obj.f(xa), xa

    def value_slope(self, alpha: float) -> tuple[float, float, np.ndarray, np.ndarray]:
        xa = self.point(alpha)
        f, g = self.obj.fg(xa)
        if self.trial is None:
            return f, self.space.dot(g, self.d), xa, g
        slope, gmax = self.trial(xa, g)
        self._gmax = (g, gmax)
        return f, slope, xa, g

    def norm_inf(self, g: np.ndarray) -> float:
        r""":math:`\|g\|_\infty`, from the last trial's pass when ``g`` is its gradient."""
        if self._gmax is not None and self._gmax[0] is g:
            return self._gmax[1]
        return self.space.norm_inf(g)


@dataclass
class LineSearchResult:
    r"""Outcome of one line search.

    Attributes
    ----------
    success : bool
        A step with sufficient decrease was accepted.
    alpha, f, dphi, x, g
        The accepted step (or, on failure, the best step seen: lowest ``f``;
        ``alpha = 0`` and ``x`` the start when nothing beat :math:`\\phi(0)`).
    nfev : int
        Evaluations used by this search.
    armijo, curvature : bool
        Whether the returned step satisfies sufficient decrease and the
        (strong, for Moré–Thuente) curvature condition.
    message : str
        Why the search stopped, for anything but a clean Wolfe step.
    maxfun : bool
        The evaluation budget of the whole run ran out during the search.
    unbounded : bool
        The step reached ``alpha_max`` with :math:`\phi` still decreasing at
        least at the sufficient-decrease rate: the objective is probably
        unbounded below along the direction.
    """

    success: bool
    alpha: float
    f: float
    dphi: float
    x: np.ndarray
    g: np.ndarray | None
    nfev: int
    armijo: bool
    curvature: bool
    message: str = ""
    maxfun: bool = False
    unbounded: bool = False


class _Best:
    """Lowest finite function value seen during a search."""

    def __init__(self, f0, dphi0, x0, g0):
        self.alpha, self.f, self.dphi, self.x, self.g = 0.0, f0, dphi0, x0, g0

    def offer(self, alpha, f, dphi, x, g):
        if f < self.f:
            self.alpha, self.f, self.dphi, self.x, self.g = alpha, f, dphi, x, g


def _finite(*v) -> bool:
    return all(math.isfinite(t) for t in v)


def _cubic_min(a, fa, da, b, fb, db):
    r"""Minimiser of the cubic interpolating (a, fa, da) and (b, fb, db).

    Uses the scaled form of the Moré–Thuente paper to avoid overflow:
    :math:`\theta = 3(f_a - f_b)/(b - a) + d_a + d_b`,
    :math:`\gamma = \pm\sqrt{\theta^2 - d_a d_b}` (sign so that the formula is
    stable) and :math:`\alpha_c = b + \frac{\gamma - d_b + \theta}{2\gamma - d_b + d_a}(a - b)`.
    Returns NaN where the cubic has no real minimiser.
    """
    theta = 3.0 * (fa - fb) / (b - a) + da + db
    s = max(abs(theta), abs(da), abs(db))
    if s == 0.0:
        return math.nan
    disc = (theta / s) ** 2 - (da / s) * (db / s)
    if disc < 0.0:
        return math.nan
    gamma = s * math.sqrt(disc)
    if b > a:
        gamma = -gamma
    p = (gamma - db) + theta
    q = ((gamma - db) + gamma) + da
    if q == 0.0:
        return math.nan
    return b + (p / q) * (a - b)


def _mt_step(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):
    r"""One safeguarded trial step of Moré–Thuente (their Section 4, cases 1-4).

    ``(stx, fx, dx)`` is the best end of the interval, ``(sty, fy, dy)`` the
    other end and ``(stp, fp, dp)`` the newest trial.  Returns the next trial
    step, whether a minimiser is now bracketed, and which ends the newest trial
    replaces: ``"y"`` (it becomes the far end), ``"x"`` (it becomes the best
    end), ``"xy"`` (the best end moves to the far end, the trial becomes the
    best end).
    """
    opposite = dp * math.copysign(1.0, dx) < 0.0
    if fp > fx:
        # Case 1: higher value. The minimiser is bracketed between stx and stp.
        # Take the cubic step unless it is much farther than the quadratic one.
        c = _cubic_min(stx, fx, dx, stp, fp, dp)
        q = stx + (dx / ((fx - fp) / (stp - stx) + dx)) / 2.0 * (stp - stx)
        if not math.isfinite(c):
            new = q
        elif abs(c - stx) < abs(q - stx):
            new = c
        else:
            new = c + (q - c) / 2.0
        return new, True, "y"
    if opposite:
        # Case 2: lower value, derivatives of opposite sign: bracketed between
        # stp and stx. Take whichever of cubic/secant step is farther from stp.
        c = _cubic_min(stx, fx, dx, stp, fp, dp)
        q = stp + (dp / (dp - dx)) * (stx - stp)
        if not math.isfinite(c) or abs(c - stp) <= abs(q - stp):
            new = q
        else:
            new = c
        return new, True, "xy"
    if abs(dp) < abs(dx):
        # Case 3: lower value, same sign, slope decreasing in magnitude.
        # The cubic may have no minimiser in the right direction: then
        # extrapolate to the bound.
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt(max(0.0, (theta / s) ** 2 - (dx / s) * (dp / s))) if s else 0.0
        if stp > stx:
            gamma = -gamma
        p = (gamma - dp) + theta
        q_ = (gamma + (dx - dp)) + gamma
        r = p / q_ if q_ != 0.0 else math.nan
        if math.isfinite(r) and r < 0.0 and gamma != 0.0:
            c = stp + r * (stx - stp)
        elif stp > stx:
            c = stpmax
        else:
            c = stpmin
        q = stp + (dp / (dp - dx)) * (stx - stp)
        if brackt:
            new = c if abs(c - stp) < abs(q - stp) else q
            # stay well inside the interval
            if stp > stx:
                new = min(stp + 0.66 * (sty - stp), new)
            else:
                new = max(stp + 0.66 * (sty - stp), new)
        else:
            new = c if abs(c - stp) > abs(q - stp) else q
            new = min(stpmax, max(stpmin, new))
        return new, brackt, "x"
    # Case 4: lower value, same sign, slope not decreasing: the step was too
    # short (or too long, if bracketed on the other side).
    if brackt:
        c = _cubic_min(sty, fy, dy, stp, fp, dp)
        new = c if math.isfinite(c) else stp + 0.5 * (sty - stp)
    elif stp > stx:
        new = stpmax
    else:
        new = stpmin
    return new, brackt, "x"


def more_thuente(line: Line, alpha0: float, *, c1: float = 1e-4, c2: float = 0.9,
                 xtol: float = 1e-14, alpha_min: float = 0.0, alpha_max: float = 1e10,
                 maxls: int = 20, fnoise: float = 0.0,
                 strict_decrease: bool = True) -> LineSearchResult:
    r"""Moré–Thuente line search for a step satisfying the strong Wolfe conditions.

    Parameters
    ----------
    line : Line
        :math:`\phi` and its derivative; ``line.dphi0`` must be negative.
    alpha0 : float
        First trial step (> 0).
    c1, c2 : float
        Sufficient-decrease and curvature constants, ``0 < c1 < c2 < 1``.
    xtol : float
        The search stops when the interval of uncertainty is shorter than
        ``xtol * alpha_max_of_interval``.
    alpha_min, alpha_max : float
        Bounds on the step.
    maxls : int
        Evaluations allowed.
    fnoise : float
        Size of function differences that are not trusted (0: trust all).  A
        trial with :math:`\phi(\alpha) \le \phi(0) + \text{fnoise}` that fails
        sufficient decrease but satisfies the strong curvature condition and
        :math:`\phi'(\alpha) \le (2c_1 - 1)\phi'(0)` is accepted: the
        *approximate Wolfe* conditions of Hager & Zhang (SIAM J. Optim. 16(1),
        2005), which imply sufficient decrease for a quadratic :math:`\phi` and
        rest on derivatives, still accurate where ``f`` only differs in its
        last digits.  Returned with ``armijo=False, curvature=True``.
    strict_decrease : bool
        Also require :math:`\phi(\alpha) < \phi(0)` for sufficient decrease (default).
        False is MINPACK-2's ``dcsrch`` rule (scipy's L-BFGS-B): where
        :math:`\alpha c_1 \phi'(0)` is below the resolution of :math:`\phi(0)`, a step
        that leaves ``f`` unchanged is accepted, so that the solver can test the gradient
        at the new point.

    Returns
    -------
    LineSearchResult
    """
    f0, d0 = line.f0, line.dphi0
    best = _Best(f0, d0, line.x, line.g0)
    if not d0 < 0.0:
        return LineSearchResult(False, 0.0, f0, d0, line.x, line.g0, 0, False, False,
                                f"not a descent direction (g'd = {d0:.3g} >= 0)")
    dtest = c1 * d0                 # slope of the sufficient-decrease line
    loose = not strict_decrease
    stp = min(max(alpha0, alpha_min), alpha_max)
    brackt = False
    stage1 = True
    width = alpha_max - alpha_min
    width1 = 2.0 * width
    # ends of the interval, with the payloads of their evaluations
    stx, fx, dx, px = 0.0, f0, d0, (line.x, line.g0)
    sty, fy, dy = 0.0, f0, d0
    stmin, stmax = 0.0, stp + 4.0 * stp
    bad = math.inf                  # smallest step where fun was not finite
    nfev = 0
    seen_armijo = seen_curv = False

    def finish(reason):
        # Best step with sufficient decrease: the current trial (if it has it)
        # or the best end of the interval (stx > 0 always has it).
        cands = [] if cur is None else [cur]
        if stx > 0.0:
            cands.append((stx, fx, dx, px[0], px[1]))
        cands = [t for t in cands if t[1] <= f0 + t[0] * dtest and (t[1] < f0 or loose)]
        if cands:
            a, f, dp, x, g = min(cands, key=lambda t: t[1])
            curv = abs(dp) <= c2 * -d0
            return LineSearchResult(True, a, f, dp, x, g, nfev, True, curv,
                                    "" if curv else f"weak step: {reason}")
        msg = (f"Moré–Thuente line search: sufficient decrease was not reached after "
               f"{nfev} evaluations ({reason}; "
               f"{'a' if seen_curv else 'no'} trial step met the curvature condition).")
        return LineSearchResult(False, best.alpha, best.f, best.dphi, best.x, best.g,
                                nfev, False, False, msg)

    cur = None
    while True:
        if nfev >= maxls:
            return finish(f"maxls={maxls} evaluations used")
        try:
            f, dp, xa, ga = line.value_slope(stp)
        except MaxFunReached:
            r = finish("maxfun reached")
            r.maxfun = True
            return r
        nfev += 1
        if not _finite(f, dp):
            if stp <= stx:
                cur = None
                return finish("the objective is not finite between the start and the best step")
            # Too far: retreat towards the best end and never come back here.
            bad = min(bad, stp)
            cur = None
            stp = stx + 0.5 * (stp - stx)
            if brackt:
                if (sty - stx) * (sty - bad) > 0 and abs(sty - stx) > abs(bad - stx):
                    sty, fy, dy = bad, math.inf, dy  # far end moves in
            stmax = min(stmax, bad)
            if abs(stp - stx) <= xtol * max(abs(stp), 1e-300):
                return finish("the objective is not finite just beyond the best step")
            continue
        best.offer(stp, f, dp, xa, ga)
        cur = (stp, f, dp, xa, ga)
        ftest = f0 + stp * dtest
        # sufficient decrease; f < f0 also when stp*dtest is below the resolution of f0
        armijo = f <= ftest and (f < f0 or loose)
        curv = abs(dp) <= c2 * -d0
        seen_armijo |= armijo
        seen_curv |= curv
        if armijo and curv:
            return LineSearchResult(True, stp, f, dp, xa, ga, nfev, True, True)
        if fnoise > 0.0 and curv and f <= f0 + fnoise and dp <= (2.0 * c1 - 1.0) * d0:
            return LineSearchResult(True, stp, f, dp, xa, ga, nfev, False, True,
                                    "approximate Wolfe step (f differences below fnoise)")
        if stage1 and armijo and dp >= 0.0:
            stage1 = False
        # termination tests on the interval
        if brackt and (stp <= stmin or stp >= stmax):
            return finish("rounding errors prevent progress")
        if brackt and stmax - stmin <= xtol * stmax:
            return finish("interval of uncertainty below xtol")
        if stp == alpha_max and armijo and dp <= dtest:
            r = finish(f"step reached alpha_max={alpha_max:g}")
            r.unbounded = True
            return r
        if stp == alpha_min and (not armijo or dp >= dtest):
            return finish(f"step reached alpha_min={alpha_min:g}")
        # next trial step
        if stage1 and f <= fx and not armijo:
            # use the auxiliary function psi = phi - c1*alpha*phi'(0)
            new, brackt, which = _mt_step(stx, fx - stx * dtest, dx - dtest,
                                          sty, fy - sty * dtest, dy - dtest,
                                          stp, f - stp * dtest, dp - dtest,
                                          brackt, stmin, stmax)
        else:
            new, brackt, which = _mt_step(stx, fx, dx, sty, fy, dy, stp, f, dp,
                                          brackt, stmin, stmax)
        if which == "y":
            sty, fy, dy = stp, f, dp
        elif which == "xy":
            sty, fy, dy = stx, fx, dx
            stx, fx, dx, px = stp, f, dp, (xa, ga)
        else:
            stx, fx, dx, px = stp, f, dp, (xa, ga)
        stp = new
        if brackt:
            if abs(sty - stx) >= 0.66 * width1:
                stp = stx + 0.5 * (sty - stx)   # bisect: the interval shrinks too slowly
            width1 = width
            width = abs(sty - stx)
            stmin, stmax = min(stx, sty), max(stx, sty)
        else:
            stmin = stp + 1.1 * (stp - stx)
            stmax = stp + 4.0 * (stp - stx)
        stp = min(max(stp, alpha_min), alpha_max)
        if stp >= bad:
            stp = stx + 0.5 * (bad - stx)
        if not math.isfinite(stp):
            stp = stx + 0.5 * (sty - stx) if brackt else 2.0 * max(stx, alpha0)
        if brackt and (stp <= stmin or stp >= stmax or stmax - stmin <= xtol * stmax):
            # no further progress possible: the best end is the answer
            return finish("rounding errors prevent progress")


def backtracking(line: Line, alpha0: float, *, c1: float = 1e-4, maxls: int = 20,
                 shrink_min: float = 0.1, shrink_max: float = 0.5) -> LineSearchResult:
    r"""Armijo backtracking with safeguarded quadratic/cubic interpolation.

    Trial steps only evaluate :math:`\phi` (not the gradient, which matters for a
    separate ``jac`` callable or finite differences); the gradient is computed
    once, at the accepted step.  After a failed trial the next step is the
    minimiser of the quadratic through :math:`\phi(0), \phi'(0), \phi(\alpha)`
    (then the cubic through the last two trials, Nocedal & Wright §3.5),
    kept in ``[shrink_min*alpha, shrink_max*alpha]``.  A non-finite value
    shrinks the step by ``shrink_min``.

    The curvature condition is not enforced; ``curvature`` in the result reports
    whether the weak one, :math:`\phi'(\alpha) \ge 0.9\,\phi'(0)`, happens to hold.
    """
    f0, d0 = line.f0, line.dphi0
    best = _Best(f0, d0, line.x, line.g0)
    if not d0 < 0.0:
        return LineSearchResult(False, 0.0, f0, d0, line.x, line.g0, 0, False, False,
                                f"not a descent direction (g'd = {d0:.3g} >= 0)")
    alpha = alpha0
    prev = None  # (alpha, f) of the previous finite trial
    nfev = 0
    while nfev < maxls:
        try:
            f, xa = line.value(alpha)
        except MaxFunReached:
            r = LineSearchResult(False, best.alpha, best.f, best.dphi, best.x, best.g, nfev,
                                 False, False, "maxfun reached", maxfun=True)
            return r
        nfev += 1
        if not math.isfinite(f):
            alpha *= shrink_min
            continue
        if f < best.f:
            best.offer(alpha, f, math.nan, xa, None)
        if f <= f0 + c1 * alpha * d0 and f < f0:
            try:
                g = line.obj.grad(xa)
            except MaxFunReached:
                return LineSearchResult(False, best.alpha, best.f, best.dphi, best.x, best.g,
                                        nfev, False, False, "maxfun reached", maxfun=True)
            dp = line.space.dot(g, line.d)
            return LineSearchResult(True, alpha, f, dp, xa, g, nfev, True, dp >= 0.9 * d0)
        # interpolate
        if prev is None:
            denom = 2.0 * (f - f0 - d0 * alpha)
            new = -d0 * alpha * alpha / denom if denom > 0 else shrink_max * alpha
        else:
            a1, f1 = prev
            a2, f2 = alpha, f
            r1 = f2 - f0 - d0 * a2
            r2 = f1 - f0 - d0 * a1
            div = a2 * a2 * a1 * a1 * (a2 - a1)
            ca = (a1 * a1 * r1 - a2 * a2 * r2) / div
            cb = (-a1 ** 3 * r1 + a2 ** 3 * r2) / div
            if ca == 0.0:
                new = -d0 / (2.0 * cb) if cb != 0 else shrink_max * alpha
            else:
                disc = cb * cb - 3.0 * ca * d0
                new = (-cb + math.sqrt(disc)) / (3.0 * ca) if disc >= 0 else shrink_max * alpha
        if not math.isfinite(new):
            new = shrink_max * alpha
        prev = (alpha, f)
        alpha = min(max(new, shrink_min * alpha), shrink_max * alpha)
    msg = (f"Armijo backtracking: sufficient decrease was not reached after {nfev} "
           f"evaluations (smallest step {alpha / shrink_max:.3g}).")
    return LineSearchResult(False, best.alpha, best.f, best.dphi, best.x, best.g, nfev,
                            False, False, msg)
