r"""Plain numpy statements of the L-BFGS-B vector kernels (``csrc/bounds.inc``).

Each function here computes what the C kernel of the same name in :mod:`fastopt._kernels`
computes, written for clarity, not speed: the tests check the kernels against these (as
:func:`fastopt.optimize.lbfgs.two_loop_numpy` for the two-loop recursion). Inner products
are accumulated in float64, element-wise results are in the arrays' dtype.

Notation: ``S``, ``Y`` are ``(slots, n)`` arrays of pairs, ``rows`` the rows in use
(oldest first, ``k`` of them), :math:`W = [Y, \theta S]` (``n x 2k``), ``free`` a uint8
mask of the free variables (None: all free).
"""
from __future__ import annotations

import numpy as np

__all__ = ["lbfgsb_scan_bytes", "bounds_step", "bounds_projgrad_norm", "bounds_max_step", "lbfgsb_cauchy",
           "lbfgsb_free_gram", "lbfgsb_gram_update", "lbfgsb_gram_change", "lbfgsb_pair_dots", "lbfgsb_subspace_point",
           "lbfgsb_direction", "lbfgsb_subspace_direction", "lbfgsb_pair_update",
           "lbfgsb_cauchy_point"]


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def bounds_step(x, alpha, d, lower, upper, out=None):
    """``out = clip(x + alpha * d, lower, upper)`` (``d`` None: ``clip(x)``)."""
    x = np.asarray(x)
    t = x.dtype.type
    v = x.copy() if d is None or alpha == 0.0 else x + t(alpha) * d
    v = np.minimum(np.maximum(v, lower), upper)
    if out is None:
        return v
    out[...] = v
    return out


def bounds_projgrad_norm(x, g, lower, upper):
    r""":math:`\max_i |P(x - g)_i - x_i|` as scipy's ``projgr``: a negative component is
    cut to ``x - upper``, a positive one to ``x - lower`` (NaN propagates)."""
    x, g, lo, hi = _f64(x), _f64(g), _f64(lower), _f64(upper)
    pg = np.where(g < 0, np.maximum(x - hi, g), np.minimum(x - lo, g))
    pg = np.where(np.isnan(g), np.nan, pg)
    return float(np.max(np.abs(pg))) if pg.size else 0.0


def bounds_max_step(x, d, lower, upper):
    """The largest step ``a`` with ``x + a d`` inside the box (inf if unbounded)."""
    x, d, lo, hi = _f64(x), _f64(d), _f64(lower), _f64(upper)
    steps = np.full(x.shape, np.inf)
    dn = (d < 0) & np.isfinite(lo)
    up = (d > 0) & np.isfinite(hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps[dn] = np.where(lo[dn] - x[dn] >= 0, 0.0, (lo[dn] - x[dn]) / d[dn])
        steps[up] = np.where(hi[up] - x[up] <= 0, 0.0, (hi[up] - x[up]) / d[up])
    return float(steps.min()) if steps.size else np.inf


def _w_rows(S, Y, rows, theta, i):
    """Row i of W = [Y, theta S] (2k,)."""
    return np.concatenate([_f64(Y[rows, i]), theta * _f64(S[rows, i])])


def _path_direction(x, g, lower, upper):
    """``(fixed, held, d)`` of the Cauchy path at ``(x, g)``: scipy's iwhere (at the lower
    bound and pushed down, or else at the upper bound and pushed up: held there) and the
    direction ``d`` (float64): ``-g``, 0 where held or where ``g`` is 0."""
    xd, gd, lo, hi = _f64(x), _f64(g), _f64(lower), _f64(upper)
    has_lo, has_hi = np.isfinite(lo), np.isfinite(hi)
    fixed = has_lo & has_hi & (hi - lo <= 0)
    at_lo = has_lo & (xd - lo <= 0)
    at_hi = has_hi & (hi - xd <= 0)
    neg = -gd
    held = fixed | (at_lo & (neg <= 0)) | (~at_lo & at_hi & (neg >= 0))
    return fixed, held, np.where(held | (neg == 0), 0.0, neg)


def lbfgsb_scan_bytes(n):
    """The kernels' scan buffer holds the Cauchy point's first pass; the statements here
    recompute it, so theirs is empty."""
    return 0


def lbfgsb_cauchy(x, g, lower, upper, S, Y, rows, theta, M, wd=None, out=None, scan=None,
                  free=None, point=True):
    r"""The generalized Cauchy point (Byrd, Lu, Nocedal & Zhu 1995, Algorithm CP).

    Returns ``(xcp, c, free, nfree, tsum, p)``: the point, :math:`c = W^T (x^{cp} - x)`
    (2k, float64), the uint8 mask of the variables free at ``xcp``, their number, the
    path parameter :math:`t` of ``xcp`` (a free variable moved by :math:`-t g_i`) and
    :math:`p = -W_F^T g` over the free variables (2k, float64), which lets the subspace
    step skip a pass over :math:`W`. ``wd`` (the kernel's shortcut for
    :math:`W^T d`) is not used: the statement here always forms :math:`W^T d`. ``out``:
    where to write the point. ``scan`` is not used either; ``free`` (given with it) receives
    the mask and is returned. ``point`` False: ``xcp`` is None.
    """
    if not point:
        return (None, *lbfgsb_cauchy(x, g, lower, upper, S, Y, rows, theta, M, free=free)[1:])
    free_out = free
    if out is not None:
        got = lbfgsb_cauchy(x, g, lower, upper, S, Y, rows, theta, M, free=free_out)
        out[...] = got[0]
        return (out, *got[1:])
    x = np.asarray(x)
    dt_ = x.dtype
    n = x.size
    rows = np.asarray(rows, dtype=np.int64)
    k = rows.size
    lo, hi = _f64(lower), _f64(upper)
    xd = _f64(x)
    has_lo, has_hi = np.isfinite(lo), np.isfinite(hi)
    fixed, held, d = _path_direction(x, g, lower, upper)
    free = np.ones(n, dtype=np.uint8)
    free[held] = 0
    brk_lo = has_lo & ~fixed & (d < 0)
    brk_hi = has_hi & ~fixed & (d > 0) & ~brk_lo
    t = np.full(n, np.inf)
    t[brk_lo] = (xd[brk_lo] - lo[brk_lo]) / -d[brk_lo]
    t[brk_hi] = (hi[brk_hi] - xd[brk_hi]) / d[brk_hi]
    bnded = not np.any((d != 0) & ~brk_lo & ~brk_hi)
    nbreak = int(np.count_nonzero(brk_lo | brk_hi))
    xcp = np.array(x, copy=True)
    c = np.zeros(2 * k)
    f1 = -float(np.dot(d, d))
    if not np.any(d != 0):
        return xcp, c, _into(free, free_out), int(free.sum()), 0.0, np.zeros(2 * k)
    Sd = _f64(S[rows]) if k else np.zeros((0, n))
    Yd = _f64(Y[rows]) if k else np.zeros((0, n))
    p = np.concatenate([Yd @ d, theta * (Sd @ d)]) if k else np.zeros(0)
    f2 = -theta * f1
    if k:
        f2 -= float(p @ (M @ p))
    f2_org = f2
    dtm = -f1 / f2
    tsum = 0.0
    eps = np.finfo(np.float64).eps
    order = np.argsort(t[brk_lo | brk_hi], kind="stable")
    idx = np.flatnonzero(brk_lo | brk_hi)[order]
    tj = 0.0
    nleft = nbreak
    skip_final = False
    for ibp in idx:
        tj0, tj = tj, t[ibp]
        dt = tj - tj0
        if dtm < dt:
            break
        tsum += dt
        nleft -= 1
        dib = d[ibp]
        d[ibp] = 0.0
        if dib > 0:
            zib = hi[ibp] - xd[ibp]
            xcp[ibp] = upper[ibp]
        else:
            zib = lo[ibp] - xd[ibp]
            xcp[ibp] = lower[ibp]
        free[ibp] = 0
        if nleft == 0 and nbreak == n:
            dtm = dt
            skip_final = True
            break
        dib2 = dib * dib
        f1 = f1 + dt * f2 + dib2 - theta * dib * zib
        f2 = f2 - theta * dib2
        if k:
            c += dt * p
            wbp = _w_rows(S, Y, rows, theta, ibp)
            v = M @ wbp
            wmc, wmp, wmw = float(c @ v), float(p @ v), float(wbp @ v)
            p = p - dib * wbp
            f1 += dib * wmc
            f2 += 2.0 * dib * wmp - dib2 * wmw
        f2 = max(eps * f2_org, f2)
        if nleft > 0:
            dtm = -f1 / f2
        elif bnded:
            f1 = f2 = dtm = 0.0
        else:
            dtm = -f1 / f2
    if not skip_final:
        dtm = max(dtm, 0.0)
        tsum += dtm
        moving = d != 0
        xcp[moving] = (xd[moving] + tsum * d[moving]).astype(dt_)
    if k:
        c += dtm * p
    return xcp, c, _into(free, free_out), int(free.sum()), tsum, p


def lbfgsb_free_gram(S, Y, rows, free, select=1):
    """The inner products ``(Y_F^T Y_F, S_F^T Y_F, S_F^T S_F)`` over the variables with
    ``free == select``, k x k each (the middle one holds :math:`s_i^T y_j`)."""
    m = np.asarray(free) == select
    Sf = _f64(S[np.asarray(rows)][:, m])
    Yf = _f64(Y[np.asarray(rows)][:, m])
    return Yf @ Yf.T, Sf @ Yf.T, Sf @ Sf.T


def lbfgsb_gram_update(S, Y, rows, weight):
    """``sum_i weight[i] u_i u_i^T`` with ``u_i = (Y[rows, i], S[rows, i])`` (float64)."""
    rows = np.asarray(rows)
    U = np.concatenate([_f64(Y[rows]), _f64(S[rows])])
    return (U * np.asarray(weight, dtype=np.float64)) @ U.T


def lbfgsb_gram_change(S, Y, rows, now, before, limit):
    """``(G, changes)``: ``changes`` the number of variables whose mask differs between
    ``now`` and ``before``; if at most ``limit``, ``G`` = :func:`lbfgsb_gram_update` with
    weights ``now - before`` and ``before`` is set to ``now``, else ``G`` is None and
    ``before`` is left as it was."""
    changes = int(np.count_nonzero(np.asarray(now) != np.asarray(before)))
    if changes > limit:
        return None, changes
    G = lbfgsb_gram_update(S, Y, rows, np.asarray(now, dtype=np.int8) - before.astype(np.int8))
    np.copyto(before, now)
    return G, changes


def lbfgsb_pair_dots(S, Y, rows, r, mask=None, g=None):
    """The new pair's products with the memory, shape ``(k, 10)``.

    Per pair i: :math:`s_i^T y_r, y_i^T y_r, s_i^T s_r, y_i^T s_r`, the same summed where
    ``mask == 1``, and :math:`s_i^T g, y_i^T g` (zeros for a missing ``mask`` or ``g``)."""
    rows = np.asarray(rows)
    out = np.zeros((rows.size, 10))
    yr, sr = _f64(Y[r]), _f64(S[r])
    m = None if mask is None else np.asarray(mask, dtype=np.float64)
    for i, row in enumerate(rows):
        si, yi = _f64(S[row]), _f64(Y[row])
        out[i, :4] = [si @ yr, yi @ yr, si @ sr, yi @ sr]
        if m is not None:
            out[i, 4:8] = [si @ (yr * m), yi @ (yr * m), si @ (sr * m), yi @ (sr * m)]
        if g is not None:
            out[i, 8:] = [si @ _f64(g), yi @ _f64(g)]
    return out


def _w_times(S, Y, rows, a, b):
    """``sum_j a_j y_j + b_j s_j`` in float64 (n,)."""
    rows = np.asarray(rows)
    out = np.zeros(S.shape[1])
    for j, r in enumerate(rows):
        out += a[j] * _f64(Y[r]) + b[j] * _f64(S[r])
    return out


def lbfgsb_subspace_point(x, g, xcp, lower, upper, S, Y, rows, cg, a, b, free):
    r"""The subspace step ``du = cg g + sum_j a_j y_j + b_j s_j`` (free variables, 0
    elsewhere) from ``xcp``, then the Morales-Nocedal choice: ``xcp + du`` if that hits no
    bound; else its projection onto the box if that is a descent direction from ``x``
    (:math:`(P(x^{cp} + du) - x)^T g \le 0`); else ``xcp + alpha du`` with the largest
    ``alpha <= 1`` that stays in the box, the blocking variable put on its bound.
    Returns the new point (dtype of ``x``)."""
    x = np.asarray(x)
    t = x.dtype.type
    fm = np.ones(x.size, bool) if free is None else np.asarray(free).astype(bool)
    du = (cg * _f64(g) + _w_times(S, Y, rows, a, b)).astype(x.dtype)
    du[~fm] = 0
    lo, hi = np.asarray(lower), np.asarray(upper)
    xcp = np.asarray(xcp)
    trial = xcp + du
    proj = np.where(fm, np.minimum(np.maximum(trial, lo), hi), xcp).astype(x.dtype)
    hit = fm & (((proj == lo) & np.isfinite(lo)) | ((proj == hi) & np.isfinite(hi)))
    if not hit.any():
        return np.where(fm, trial, xcp).astype(x.dtype)
    if float(np.dot(_f64(proj) - _f64(x), _f64(g))) <= 0.0:
        return proj
    alpha, ibd = 1.0, -1
    for i in np.flatnonzero(fm):
        di = float(du[i])
        if di < 0 and np.isfinite(lo[i]):
            room = float(lo[i]) - float(xcp[i])
            step = 0.0 if room >= 0 else (room / di if di * alpha < room else alpha)
        elif di > 0 and np.isfinite(hi[i]):
            room = float(hi[i]) - float(xcp[i])
            step = 0.0 if room <= 0 else (room / di if di * alpha > room else alpha)
        else:
            continue
        if step < alpha:
            alpha, ibd = step, i
    out = xcp.copy()
    out[fm] = xcp[fm] + t(alpha) * du[fm]
    if alpha < 1.0 and ibd >= 0:
        out[ibd] = hi[ibd] if du[ibd] > 0 else lo[ibd]
    return out


def lbfgsb_direction(x, z, g, lower, upper, out=None):
    """The direction ``d = z - x``, the largest step along it inside the box, and two
    inner products.

    Returns ``(d, max_step, gd, dd)`` with ``max_step`` as :func:`bounds_max_step`,
    :math:`g^T d` and :math:`d^T d` (float64)."""
    x = np.asarray(x)
    d = (np.asarray(z) - x).astype(x.dtype)
    if out is not None:
        out[...] = d
        d = out
    return (d, bounds_max_step(x, d, lower, upper), float(np.dot(_f64(g), _f64(d))),
            float(np.dot(_f64(d), _f64(d))))


def lbfgsb_cauchy_point(x, g, lower, upper, free, tsum, out=None):
    """The Cauchy point from :func:`lbfgsb_cauchy`'s ``free`` and ``tsum``: ``x + tsum d``
    on the free variables (``x`` where ``g`` is 0), ``x`` where held at a bound at ``(x, g)``,
    the bound reached (``upper`` where ``-g > 0``, else ``lower``) on the rest."""
    x = np.asarray(x)
    g = np.asarray(g)
    f = np.ones(x.size, dtype=bool) if free is None else np.asarray(free) != 0
    moved = (_f64(x) + tsum * -_f64(g)).astype(x.dtype)
    on_free = np.where(g != 0, moved, x)
    held = _path_direction(x, g, lower, upper)[1]
    passed = np.where(-g > 0, upper, lower).astype(x.dtype)
    z = np.where(f, on_free, np.where(held, x, passed)).astype(x.dtype)
    if out is not None:
        out[...] = z
        return out
    return z


def lbfgsb_subspace_direction(x, g, xcp, lower, upper, S, Y, rows, cg, a, b, free, out=None,
                              trial=None, tsum=None):
    """:func:`lbfgsb_direction` from the point of :func:`lbfgsb_subspace_point`:
    ``(d, max_step, gd, dd)``; ``trial`` (optional) receives ``bounds_step(x, 1, d)``;
    ``xcp`` None: :func:`lbfgsb_cauchy_point` with ``free`` and ``tsum``."""
    if xcp is None:
        xcp = lbfgsb_cauchy_point(x, g, lower, upper, free, tsum)
    z = lbfgsb_subspace_point(x, g, xcp, lower, upper, S, Y, rows, cg, a, b, free)
    found = lbfgsb_direction(x, z, g, lower, upper, out=out)
    if trial is not None:
        bounds_step(x, 1.0, found[0], lower, upper, out=trial)
    return found


def _into(mask, out):
    """`mask`, copied into `out` when that is given."""
    if out is None:
        return mask
    out[...] = mask
    return out


def lbfgsb_pair_update(x1, x0, g1, g0, lower, upper, S, Y, rows, mask=None, dcp=None,
                       scan=None, free=None):
    """``S[r] = x1 - x0``, ``Y[r] = g1 - g0`` for ``r = rows[-1]``, the direction ``dcp``
    of the Cauchy path at ``(x1, g1)``, then ``(lbfgsb_pair_dots(S, Y, rows, r, mask,
    dcp), bounds_projgrad_norm(x1, g1, ...), dcp)`` (``dcp=False``: None); ``free`` (with ``scan``, which is not
    used) receives the mask of the variables not held at a bound at ``(x1, g1)``."""
    r = int(np.asarray(rows)[-1])
    if free is not None:
        free[...] = ~_path_direction(x1, g1, lower, upper)[1]
    x1 = np.asarray(x1)
    S[r] = x1 - np.asarray(x0)
    Y[r] = np.asarray(g1) - np.asarray(g0)
    d = _path_direction(x1, g1, lower, upper)[2].astype(x1.dtype)
    if dcp is not None and dcp is not False:
        dcp[...] = d
        d = dcp
    return (lbfgsb_pair_dots(S, Y, rows, r, mask, d), bounds_projgrad_norm(x1, g1, lower, upper),
            None if dcp is False else d)
