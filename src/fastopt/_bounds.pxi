# _bounds.pxi — boundary for L-BFGS-B's vector kernels (csrc/bounds.c): box projection,
# projected-gradient norm, step to the boundary, search direction, generalized Cauchy
# point, free-set gram matrix and subspace point. Uses _linalg.pxi's checkers (_vec_in,
# _vec_out, _overlap, _ring, _rows, _f64). The numpy statements of the same formulas are
# fastopt/optimize/bounds_reference.py (the tests compare the two).

from libc.stdint cimport int8_t, uint8_t

cdef extern from "bounds.h" nogil:
    int fo_bounds_step_f32(int64_t n, const float *x, double alpha, const float *d,
                           const float *lo, const float *hi, float *out, int nthreads)
    int fo_bounds_step_f64(int64_t n, const double *x, double alpha, const double *d,
                           const double *lo, const double *hi, double *out, int nthreads)
    int fo_bounds_projgrad_norm_f32(int64_t n, const float *x, const float *g,
                                    const float *lo, const float *hi, double *result,
                                    int nthreads)
    int fo_bounds_projgrad_norm_f64(int64_t n, const double *x, const double *g,
                                    const double *lo, const double *hi, double *result,
                                    int nthreads)
    int fo_bounds_max_step_f32(int64_t n, const float *x, const float *d, const float *lo,
                               const float *hi, double *result, int nthreads)
    int fo_bounds_max_step_f64(int64_t n, const double *x, const double *d,
                               const double *lo, const double *hi, double *result,
                               int nthreads)
    int fo_lbfgsb_direction_f32(int64_t n, const float *x, const float *z, const float *g,
                                const float *lo, const float *hi, float *d,
                                double *max_step, double *gd, double *dd, int nthreads)
    int fo_lbfgsb_direction_f64(int64_t n, const double *x, const double *z,
                                const double *g, const double *lo, const double *hi,
                                double *d, double *max_step, double *gd, double *dd,
                                int nthreads)
    int fo_lbfgsb_cauchy_f32(int64_t n, const float *x, const float *g, const float *lo,
                             const float *hi, const float *S, const float *Y,
                             const int64_t *rows, int64_t k, double theta, const double *M,
                             const double *wd, const void *scan, float *xcp, double *c,
                             uint8_t *is_free, int64_t *nfree, double *tsum, double *p,
                             int nthreads)
    int fo_lbfgsb_cauchy_f64(int64_t n, const double *x, const double *g, const double *lo,
                             const double *hi, const double *S, const double *Y,
                             const int64_t *rows, int64_t k, double theta, const double *M,
                             const double *wd, const void *scan, double *xcp, double *c,
                             uint8_t *is_free, int64_t *nfree, double *tsum, double *p,
                             int nthreads)
    int fo_lbfgsb_pair_dots_f32(int64_t n, const float *S, const float *Y,
                                const int64_t *rows, int64_t k, int64_t r,
                                const uint8_t *mask, const float *g, double *out,
                                int nthreads)
    int fo_lbfgsb_pair_dots_f64(int64_t n, const double *S, const double *Y,
                                const int64_t *rows, int64_t k, int64_t r,
                                const uint8_t *mask, const double *g, double *out,
                                int nthreads)
    int fo_lbfgsb_pair_update_f32(int64_t n, const float *x1, const float *x0,
                                  const float *g1, const float *g0, const float *lo,
                                  const float *hi, float *S, float *Y, const int64_t *rows,
                                  int64_t k, int64_t r, const uint8_t *mask, float *dcp,
                                  double *out, double *pgnorm, uint8_t *is_free, void *scan,
                                  int nthreads)
    int fo_lbfgsb_pair_update_f64(int64_t n, const double *x1, const double *x0,
                                  const double *g1, const double *g0, const double *lo,
                                  const double *hi, double *S, double *Y,
                                  const int64_t *rows, int64_t k, int64_t r,
                                  const uint8_t *mask, double *dcp, double *out,
                                  double *pgnorm, uint8_t *is_free, void *scan, int nthreads)
    int64_t fo_lbfgsb_scan_bytes(int64_t n)
    int fo_lbfgsb_cauchy_point_f32(int64_t n, const float *x, const float *g, const float *lo,
                                   const float *hi, const uint8_t *is_free, double tsum,
                                   float *xcp, int nthreads)
    int fo_lbfgsb_cauchy_point_f64(int64_t n, const double *x, const double *g,
                                   const double *lo, const double *hi, const uint8_t *is_free,
                                   double tsum, double *xcp, int nthreads)
    int fo_lbfgsb_gram_update_f32(int64_t n, const float *S, const float *Y,
                                  const int64_t *rows, int64_t k, const int8_t *weight,
                                  double *out, int nthreads)
    int fo_lbfgsb_gram_update_f64(int64_t n, const double *S, const double *Y,
                                  const int64_t *rows, int64_t k, const int8_t *weight,
                                  double *out, int nthreads)
    int fo_lbfgsb_gram_change_f32(int64_t n, const float *S, const float *Y,
                                  const int64_t *rows, int64_t k, const uint8_t *now,
                                  uint8_t *before, int64_t limit, double *out,
                                  int64_t *changes, int nthreads)
    int fo_lbfgsb_gram_change_f64(int64_t n, const double *S, const double *Y,
                                  const int64_t *rows, int64_t k, const uint8_t *now,
                                  uint8_t *before, int64_t limit, double *out,
                                  int64_t *changes, int nthreads)
    int fo_lbfgsb_subspace_direction_f32(int64_t n, const float *x, const float *g,
                                         const float *xcp, const float *lo, const float *hi,
                                         const float *S, const float *Y,
                                         const int64_t *rows, int64_t k, double cg,
                                         const double *a, const double *b,
                                         const uint8_t *is_free, double tsum, float *out,
                                         float *trial, double *max_step, double *gd,
                                         double *dd, int nthreads)
    int fo_lbfgsb_subspace_direction_f64(int64_t n, const double *x, const double *g,
                                         const double *xcp, const double *lo,
                                         const double *hi, const double *S, const double *Y,
                                         const int64_t *rows, int64_t k, double cg,
                                         const double *a, const double *b,
                                         const uint8_t *is_free, double tsum, double *out,
                                         double *trial, double *max_step, double *gd,
                                         double *dd, int nthreads)
    int fo_lbfgsb_subspace_point_f32(int64_t n, const float *x, const float *g,
                                     const float *xcp, const float *lo, const float *hi,
                                     const float *S, const float *Y, const int64_t *rows,
                                     int64_t k, double cg, const double *a, const double *b,
                                     const uint8_t *is_free, float *out, int nthreads)
    int fo_lbfgsb_subspace_point_f64(int64_t n, const double *x, const double *g,
                                     const double *xcp, const double *lo, const double *hi,
                                     const double *S, const double *Y, const int64_t *rows,
                                     int64_t k, double cg, const double *a,
                                     const double *b, const uint8_t *is_free, double *out,
                                     int nthreads)


cdef tuple _box(object lower, object upper, cnp.ndarray ref):
    """`lower`, `upper` checked against vector `ref` (dtype and size), contiguous."""
    return _vec_in(lower, "lower", ref), _vec_in(upper, "upper", ref)


cdef cnp.ndarray _mask(object mask, str name, int64_t n, object dtype):
    """A 0/1 (uint8) or -1/0/+1 (int8) vector of n elements, contiguous."""
    if not isinstance(mask, np.ndarray) or mask.dtype != dtype:
        raise TypeError(f"{name}: expected a {np.dtype(dtype)} array of {n} elements, got "
                        f"{_dtype_name(mask)}")
    if mask.size != n:
        raise ValueError(f"{name}: expected {n} elements, got {mask.size}")
    cdef cnp.ndarray m = <cnp.ndarray>mask
    return <cnp.ndarray>_contiguous_copy(m) if _needs_copy(m) else m


cdef inline void *_data_or_null(cnp.ndarray a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(a)


def lbfgsb_scan_bytes(n):
    """Bytes of a scan buffer for `n` variables (:func:`lbfgsb_pair_update`'s ``scan``)."""
    return int(fo_lbfgsb_scan_bytes(_validation.check_int(n, "n", 0, None)))


cdef tuple _scan_args(object scan, object free, int64_t n, bint written):
    """`scan` (a uint8 buffer of lbfgsb_scan_bytes(n) bytes) and `free` (uint8, n): both
    or neither, C-contiguous, writeable where `written`, apart."""
    if scan is None and free is None:
        return None, None
    if scan is None or free is None:
        raise ValueError("scan, free: expected both or neither")
    cdef int64_t nb = fo_lbfgsb_scan_bytes(n)
    for arr, name, size in ((scan, "scan", nb), (free, "free", n)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8:
            raise TypeError(f"{name}: expected a uint8 array of {size} elements, got "
                            f"{_dtype_name(arr)}")
        if arr.size != size:
            raise ValueError(f"{name}: expected {size} elements, got {arr.size}")
        if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>arr):
            raise ValueError(f"{name}: expected a C-contiguous array")
        if (written or name == "free") and not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>arr):
            raise ValueError(f"{name}: expected a writeable array, got a read-only one")
    if _overlap(<cnp.ndarray>scan, <cnp.ndarray>free):
        raise ValueError("scan: overlaps free")
    return scan, free


def bounds_step(x, alpha, d, lower, upper, out=None):
    """``out = clip(x + alpha * d, lower, upper)`` element-wise (``d`` None or ``alpha``
    0: the projection of ``x``); ``alpha`` is rounded to the dtype once, NaN propagates.

    ``out`` (allocated when omitted) may be ``x`` but must not overlap anything else.
    Returns ``out``.
    """
    global _last_threads_used
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    cdef double av = check_real(alpha, "alpha")
    cdef cnp.ndarray da = None if d is None else _vec_in(d, "d", xa)
    la, ua = _box(lower, upper, xa)
    cdef cnp.ndarray lo_ = <cnp.ndarray>la, hi_ = <cnp.ndarray>ua
    cdef cnp.ndarray oa = np.empty_like(xa) if out is None else _vec_out(out, "out", xa)
    for other, nm in ((da, "d"), (lo_, "lower"), (hi_, "upper")):
        if other is not None and _overlap(oa, <cnp.ndarray>other):
            raise ValueError(f"out: overlaps {nm}")
    if oa is not xa and _overlap(oa, xa) and cnp.PyArray_DATA(oa) != cnp.PyArray_DATA(xa):
        raise ValueError("out: overlaps x without being the same array")
    cdef int64_t n = cnp.PyArray_SIZE(xa)
    cdef int status, nthreads = current_threads()
    cdef void *dp = _data_or_null(da)
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_bounds_step_f32(n, <const float *>cnp.PyArray_DATA(xa), av,
                                        <const float *>dp, <const float *>cnp.PyArray_DATA(lo_),
                                        <const float *>cnp.PyArray_DATA(hi_),
                                        <float *>cnp.PyArray_DATA(oa), nthreads)
        else:
            status = fo_bounds_step_f64(n, <const double *>cnp.PyArray_DATA(xa), av,
                                        <const double *>dp,
                                        <const double *>cnp.PyArray_DATA(lo_),
                                        <const double *>cnp.PyArray_DATA(hi_),
                                        <double *>cnp.PyArray_DATA(oa), nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "bounds_step")
    return oa if out is None else out


def bounds_projgrad_norm(x, g, lower, upper):
    """``max_i |pg_i|``, the projected gradient of scipy's L-BFGS-B: ``pg_i = max(x_i -
    upper_i, g_i)`` where ``g_i < 0``, else ``min(x_i - lower_i, g_i)``; NaN when ``g``
    holds a NaN. Exact for any thread count (a max)."""
    global _last_threads_used
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    cdef cnp.ndarray ga = _vec_in(g, "g", xa)
    la, ua = _box(lower, upper, xa)
    cdef cnp.ndarray lo_ = <cnp.ndarray>la, hi_ = <cnp.ndarray>ua
    cdef int64_t n = cnp.PyArray_SIZE(xa)
    cdef double r = 0.0
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_bounds_projgrad_norm_f32(
                n, <const float *>cnp.PyArray_DATA(xa), <const float *>cnp.PyArray_DATA(ga),
                <const float *>cnp.PyArray_DATA(lo_), <const float *>cnp.PyArray_DATA(hi_),
                &r, nthreads)
        else:
            status = fo_bounds_projgrad_norm_f64(
                n, <const double *>cnp.PyArray_DATA(xa), <const double *>cnp.PyArray_DATA(ga),
                <const double *>cnp.PyArray_DATA(lo_), <const double *>cnp.PyArray_DATA(hi_),
                &r, nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "bounds_projgrad_norm")
    return r


def bounds_max_step(x, d, lower, upper):
    """The largest ``a >= 0`` with ``lower <= x + a d <= upper`` (``inf`` when no bound
    limits the step; 0 when ``d`` points out of the box from a bound)."""
    global _last_threads_used
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    cdef cnp.ndarray da = _vec_in(d, "d", xa)
    la, ua = _box(lower, upper, xa)
    cdef cnp.ndarray lo_ = <cnp.ndarray>la, hi_ = <cnp.ndarray>ua
    cdef int64_t n = cnp.PyArray_SIZE(xa)
    cdef double r = 0.0
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_bounds_max_step_f32(
                n, <const float *>cnp.PyArray_DATA(xa), <const float *>cnp.PyArray_DATA(da),
                <const float *>cnp.PyArray_DATA(lo_), <const float *>cnp.PyArray_DATA(hi_),
                &r, nthreads)
        else:
            status = fo_bounds_max_step_f64(
                n, <const double *>cnp.PyArray_DATA(xa), <const double *>cnp.PyArray_DATA(da),
                <const double *>cnp.PyArray_DATA(lo_), <const double *>cnp.PyArray_DATA(hi_),
                &r, nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "bounds_max_step")
    return r


def lbfgsb_direction(x, z, g, lower, upper, out=None):
    """``d = z - x`` with, in the same pass, the largest step along ``d`` inside the box
    (:func:`bounds_max_step`), ``g . d`` and ``d . d`` (float64, fixed blocks).

    ``out`` (allocated when omitted) may be ``z``. Returns ``(d, max_step, gd, dd)``.
    """
    global _last_threads_used
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    cdef cnp.ndarray za = _vec_in(z, "z", xa)
    cdef cnp.ndarray ga = _vec_in(g, "g", xa)
    la, ua = _box(lower, upper, xa)
    cdef cnp.ndarray lo_ = <cnp.ndarray>la, hi_ = <cnp.ndarray>ua
    cdef cnp.ndarray oa = np.empty_like(xa) if out is None else _vec_out(out, "out", xa)
    for other, nm in ((xa, "x"), (ga, "g"), (lo_, "lower"), (hi_, "upper")):
        if _overlap(oa, <cnp.ndarray>other):
            raise ValueError(f"out: overlaps {nm}")
    if oa is not za and _overlap(oa, za) and cnp.PyArray_DATA(oa) != cnp.PyArray_DATA(za):
        raise ValueError("out: overlaps z without being the same array")
    cdef int64_t n = cnp.PyArray_SIZE(xa)
    cdef double step = 0.0, gd = 0.0, dd = 0.0
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_lbfgsb_direction_f32(
                n, <const float *>cnp.PyArray_DATA(xa), <const float *>cnp.PyArray_DATA(za),
                <const float *>cnp.PyArray_DATA(ga), <const float *>cnp.PyArray_DATA(lo_),
                <const float *>cnp.PyArray_DATA(hi_), <float *>cnp.PyArray_DATA(oa),
                &step, &gd, &dd, nthreads)
        else:
            status = fo_lbfgsb_direction_f64(
                n, <const double *>cnp.PyArray_DATA(xa), <const double *>cnp.PyArray_DATA(za),
                <const double *>cnp.PyArray_DATA(ga), <const double *>cnp.PyArray_DATA(lo_),
                <const double *>cnp.PyArray_DATA(hi_), <double *>cnp.PyArray_DATA(oa),
                &step, &gd, &dd, nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "lbfgsb_direction")
    return (oa if out is None else out), step, gd, dd


def lbfgsb_cauchy(x, g, lower, upper, S, Y, rows, theta, M, wd=None, out=None, scan=None,
                  free=None, point=True):
    """The generalized Cauchy point of L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995).

    Parameters
    ----------
    x, g, lower, upper : ndarray
        Point, gradient and box (``-inf``/``+inf`` where open), one dtype and size.
    S, Y : ndarray, shape (slots, n)
        Ring buffers of the pairs; ``rows`` (k) the rows in use, oldest first.
    theta : float
        The compact form's scaling (> 0).
    M : ndarray of float64, shape (2k, 2k)
        The compact form's middle matrix (ignored when k = 0).
    wd : ndarray of float64, shape (2k,), optional
        ``(Y[rows] @ d, S[rows] @ d)`` for the path's direction ``d`` at ``(x, g)`` (from
        :func:`lbfgsb_pair_update`): taken instead of a pass over `S` and `Y`.
    out : ndarray, optional
        Where to write the Cauchy point (allocated when omitted); it must not overlap any
        other argument.
    scan, free : ndarray of uint8, optional
        Both or neither: the classification of ``(x, g)`` that :func:`lbfgsb_pair_update`
        wrote (its ``scan`` and ``free``), taken instead of the first pass over the
        vectors; ``free`` is updated in place and returned.
    point : bool, optional
        False: the point is not formed (no pass; ``xcp`` is None):
        :func:`lbfgsb_cauchy_point` forms it from ``free`` and ``tsum``, and
        :func:`lbfgsb_subspace_direction` where it needs it.

    Returns
    -------
    (xcp, c, free, nfree, tsum, p)
        The Cauchy point (new array), ``c = W^T (xcp - x)``, the uint8 mask of the
        variables free at ``xcp`` and their number, the path parameter of ``xcp`` and
        ``p = -W_F^T g`` (float64, 2k), with ``W = [Y, theta S]``; ``xcp`` is ``out`` when
        given.
    """
    global _last_threads_used
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    cdef cnp.ndarray ga = _vec_in(g, "g", xa)
    la, ua = _box(lower, upper, xa)
    cdef cnp.ndarray lo_ = <cnp.ndarray>la, hi_ = <cnp.ndarray>ua
    Sa, Ya = _ring(S, Y, xa)
    cdef cnp.ndarray Sc = <cnp.ndarray>Sa, Yc = <cnp.ndarray>Ya
    cdef cnp.ndarray ra = _rows(rows, Sc.shape[0])
    cdef int64_t n = cnp.PyArray_SIZE(xa), k = cnp.PyArray_SIZE(ra)
    cdef double th = check_real(theta, "theta", 0.0, np.inf)
    if not th > 0.0:
        raise ValueError(f"theta: expected a positive finite number, got {theta!r}")
    cdef cnp.ndarray Ma = _f64(M, "M", (2 * k, 2 * k)) if k > 0 else None
    cdef cnp.ndarray wga = None if wd is None or k == 0 else _f64(wd, "wd", (2 * k,))
    cdef void *wgp = _data_or_null(wga)
    cdef cnp.ndarray xcp = None
    if point:
        xcp = np.empty_like(xa) if out is None else _vec_out(out, "out", xa)
    if point and out is not None:
        for other, nm in ((xa, "x"), (ga, "g"), (lo_, "lower"), (hi_, "upper"), (Sc, "S"),
                          (Yc, "Y")):
            if _overlap(xcp, <cnp.ndarray>other):
                raise ValueError(f"out: overlaps {nm}")
    sc, fr_ = _scan_args(scan, free, n, False)
    if fr_ is not None:
        for other, nm in ((xa, "x"), (ga, "g"), (lo_, "lower"), (hi_, "upper"), (Sc, "S"),
                          (Yc, "Y"), (xcp, "out")):
            if other is not None and _overlap(<cnp.ndarray>fr_, <cnp.ndarray>other):
                raise ValueError(f"free: overlaps {nm}")
    cdef void *xcpp = _data_or_null(xcp)
    cdef void *scp = _data_or_null(<cnp.ndarray>sc)
    cdef cnp.ndarray c = np.zeros(2 * k)
    cdef cnp.ndarray p = np.zeros(2 * k)
    cdef cnp.ndarray fr = np.empty(n, dtype=np.uint8) if fr_ is None else <cnp.ndarray>fr_
    cdef int64_t nfree = 0
    cdef double tsum = 0.0
    cdef int status, nthreads = current_threads()
    cdef void *Mp = _data_or_null(Ma)
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_lbfgsb_cauchy_f32(
                n, <const float *>cnp.PyArray_DATA(xa), <const float *>cnp.PyArray_DATA(ga),
                <const float *>cnp.PyArray_DATA(lo_), <const float *>cnp.PyArray_DATA(hi_),
                <const float *>cnp.PyArray_DATA(Sc), <const float *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, th, <const double *>Mp,
                <const double *>wgp, <const void *>scp, <float *>xcpp,
                <double *>cnp.PyArray_DATA(c),
                <uint8_t *>cnp.PyArray_DATA(fr), &nfree, &tsum,
                <double *>cnp.PyArray_DATA(p), nthreads)
        else:
            status = fo_lbfgsb_cauchy_f64(
                n, <const double *>cnp.PyArray_DATA(xa), <const double *>cnp.PyArray_DATA(ga),
                <const double *>cnp.PyArray_DATA(lo_), <const double *>cnp.PyArray_DATA(hi_),
                <const double *>cnp.PyArray_DATA(Sc), <const double *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, th, <const double *>Mp,
                <const double *>wgp, <const void *>scp, <double *>xcpp,
                <double *>cnp.PyArray_DATA(c),
                <uint8_t *>cnp.PyArray_DATA(fr), &nfree, &tsum,
                <double *>cnp.PyArray_DATA(p), nthreads)
    _last_threads_used = fo_team_size(n * (1 + 2 * k), nthreads)
    if status == FO_ERR_ARGUMENT and sc is not None:
        raise ValueError("scan: expected the buffer lbfgsb_pair_update wrote for these "
                         "variables, got one that is not")
    check_status(status, "lbfgsb_cauchy")
    return (xcp if out is None or not point else out), c, fr, int(nfree), tsum, p


def lbfgsb_cauchy_point(x, g, lower, upper, free, tsum, out=None):
    """The Cauchy point from :func:`lbfgsb_cauchy`'s ``free`` (None: all free) and ``tsum``,
    the bits of its ``xcp``: ``x + tsum d`` on the free variables (``d = -g``, ``x`` where
    ``g`` is 0), ``x`` on the others held at a bound at ``(x, g)``, the bound the path
    reached on the rest. ``out`` (allocated when omitted) must not overlap the inputs."""
    global _last_threads_used
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    cdef cnp.ndarray ga = _vec_in(g, "g", xa)
    la, ua = _box(lower, upper, xa)
    cdef cnp.ndarray lo_ = <cnp.ndarray>la, hi_ = <cnp.ndarray>ua
    cdef int64_t n = cnp.PyArray_SIZE(xa)
    cdef double ts = check_real(tsum, "tsum")
    cdef cnp.ndarray fa = None if free is None else _mask(free, "free", n, np.uint8)
    cdef cnp.ndarray oa = np.empty_like(xa) if out is None else _vec_out(out, "out", xa)
    for other, nm in ((xa, "x"), (ga, "g"), (lo_, "lower"), (hi_, "upper"), (fa, "free")):
        if other is not None and _overlap(oa, <cnp.ndarray>other):
            raise ValueError(f"out: overlaps {nm}")
    cdef void *fp = _data_or_null(fa)
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_lbfgsb_cauchy_point_f32(
                n, <const float *>cnp.PyArray_DATA(xa), <const float *>cnp.PyArray_DATA(ga),
                <const float *>cnp.PyArray_DATA(lo_), <const float *>cnp.PyArray_DATA(hi_),
                <const uint8_t *>fp, ts, <float *>cnp.PyArray_DATA(oa), nthreads)
        else:
            status = fo_lbfgsb_cauchy_point_f64(
                n, <const double *>cnp.PyArray_DATA(xa), <const double *>cnp.PyArray_DATA(ga),
                <const double *>cnp.PyArray_DATA(lo_), <const double *>cnp.PyArray_DATA(hi_),
                <const uint8_t *>fp, ts, <double *>cnp.PyArray_DATA(oa), nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "lbfgsb_cauchy_point")
    return oa if out is None else out


def lbfgsb_pair_dots(S, Y, rows, r, mask=None, g=None):
    """The products of the new pair in row `r` with the pairs ``rows`` (r among them), in
    one pass over `S` and `Y`.

    Returns a float64 array of shape ``(k, 10)``: for pair i, ``s_i . y_r, y_i . y_r,
    s_i . s_r, y_i . s_r``, the same four summed where ``mask == 1`` (zeros without
    `mask`), and ``s_i . g, y_i . g`` (zeros without `g`).
    """
    global _last_threads_used
    if not isinstance(S, np.ndarray) or S.ndim != 2 or S.dtype not in (np.float32,
                                                                        np.float64):
        raise TypeError(f"S: expected a 2-D float32 or float64 array, got {_dtype_name(S)}")
    cdef cnp.ndarray ref = np.empty(S.shape[1], dtype=S.dtype)
    Sa, Ya = _ring(S, Y, ref)
    cdef cnp.ndarray Sc = <cnp.ndarray>Sa, Yc = <cnp.ndarray>Ya
    cdef cnp.ndarray ra = _rows(rows, Sc.shape[0])
    cdef int64_t n = S.shape[1], k = cnp.PyArray_SIZE(ra)
    cdef int64_t rr = _validation.check_int(r, "r", 0, Sc.shape[0] - 1)
    cdef cnp.ndarray ma = None if mask is None else _mask(mask, "mask", n, np.uint8)
    cdef cnp.ndarray ga = None if g is None else _vec_in(g, "g", ref)
    cdef cnp.ndarray out = np.zeros((k, 10))
    cdef void *mp = _data_or_null(ma)
    cdef void *gp = _data_or_null(ga)
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(Sc) == cnp.NPY_FLOAT:
            status = fo_lbfgsb_pair_dots_f32(
                n, <const float *>cnp.PyArray_DATA(Sc), <const float *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, rr, <const uint8_t *>mp,
                <const float *>gp, <double *>cnp.PyArray_DATA(out), nthreads)
        else:
            status = fo_lbfgsb_pair_dots_f64(
                n, <const double *>cnp.PyArray_DATA(Sc), <const double *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, rr, <const uint8_t *>mp,
                <const double *>gp, <double *>cnp.PyArray_DATA(out), nthreads)
    _last_threads_used = fo_team_size(n * (2 * k + 2), nthreads)
    check_status(status, "lbfgsb_pair_dots")
    return out


def lbfgsb_pair_update(x1, x0, g1, g0, lower, upper, S, Y, rows, mask=None, dcp=None,
                       scan=None, free=None):
    """Forms the new pair in row ``r = rows[-1]`` of `S` and `Y` (``s = x1 - x0``,
    ``y = g1 - g0``) and, in the same pass, the direction ``dcp`` of the next Cauchy path
    (``-g1``, 0 where a variable is held at a bound or ``g1`` is 0),
    :func:`lbfgsb_pair_dots` with ``g = dcp`` and :func:`bounds_projgrad_norm` at
    ``(x1, g1)``.

    Returns ``(out, pgnorm, dcp)``: ``out`` of shape ``(k, 10)`` as
    :func:`lbfgsb_pair_dots` (its last row holds ``s_r . y_r`` and ``y_r . y_r``; columns
    8-9 give :func:`lbfgsb_cauchy`'s ``wd``), the projected gradient's max-norm and
    ``dcp`` (written to the argument when given, allocated otherwise; ``dcp=False``: not
    stored, formed range by range in cache, None returned).

    ``scan`` (:func:`lbfgsb_scan_bytes` bytes) and ``free`` (n), uint8, both or neither:
    written with the first pass of :func:`lbfgsb_cauchy` at ``(x1, g1)`` (``free``: the
    variables not held at a bound), for that kernel to take instead of the pass.
    """
    global _last_threads_used
    cdef cnp.ndarray x1a = _vec_in(x1, "x1", None)
    cdef cnp.ndarray x0a = _vec_in(x0, "x0", x1a)
    cdef cnp.ndarray g1a = _vec_in(g1, "g1", x1a)
    cdef cnp.ndarray g0a = _vec_in(g0, "g0", x1a)
    la, ua = _box(lower, upper, x1a)
    cdef cnp.ndarray lo_ = <cnp.ndarray>la, hi_ = <cnp.ndarray>ua
    Sa, Ya = _ring(S, Y, x1a)
    cdef cnp.ndarray Sc = <cnp.ndarray>Sa, Yc = <cnp.ndarray>Ya
    for name, arr in (("S", Sc), ("Y", Yc)):
        if not cnp.PyArray_ISWRITEABLE(arr):
            raise ValueError(f"{name}: expected a writeable array, got a read-only one")
        for other, nm in ((x1a, "x1"), (x0a, "x0"), (g1a, "g1"), (g0a, "g0"),
                          (lo_, "lower"), (hi_, "upper")):
            if _overlap(arr, <cnp.ndarray>other):
                raise ValueError(f"{name}: overlaps {nm}")
    if _overlap(Sc, Yc):
        raise ValueError("S: overlaps Y")
    cdef cnp.ndarray ra = _rows(rows, Sc.shape[0])
    cdef int64_t n = cnp.PyArray_SIZE(x1a), k = cnp.PyArray_SIZE(ra)
    if k == 0:
        raise ValueError("rows: expected at least the new pair's row, got none")
    cdef int64_t rr = (<int64_t *>cnp.PyArray_DATA(ra))[k - 1]
    cdef cnp.ndarray ma = None if mask is None else _mask(mask, "mask", n, np.uint8)
    cdef bint keep_dcp = dcp is not False
    cdef cnp.ndarray da = None
    if keep_dcp:
        da = np.empty_like(x1a) if dcp is None else _vec_out(dcp, "dcp", x1a)
    if keep_dcp and dcp is not None:
        for other, nm in ((x1a, "x1"), (x0a, "x0"), (g1a, "g1"), (g0a, "g0"), (lo_, "lower"),
                          (hi_, "upper"), (Sc, "S"), (Yc, "Y")):
            if _overlap(da, <cnp.ndarray>other):
                raise ValueError(f"dcp: overlaps {nm}")
    sc, fr_ = _scan_args(scan, free, n, True)
    if sc is not None:
        for arr, name in ((sc, "scan"), (fr_, "free")):
            for other, nm in ((x1a, "x1"), (x0a, "x0"), (g1a, "g1"), (g0a, "g0"),
                              (lo_, "lower"), (hi_, "upper"), (Sc, "S"), (Yc, "Y"),
                              (da, "dcp")):
                if other is not None and _overlap(<cnp.ndarray>arr, <cnp.ndarray>other):
                    raise ValueError(f"{name}: overlaps {nm}")
            if ma is not None and _overlap(<cnp.ndarray>arr, ma):
                raise ValueError(f"{name}: overlaps mask")
    cdef void *scp = _data_or_null(<cnp.ndarray>sc)
    cdef void *frp = _data_or_null(<cnp.ndarray>fr_)
    cdef void *dap = _data_or_null(da)
    cdef cnp.ndarray out = np.zeros((k, 10))
    cdef double pg = 0.0
    cdef void *mp = _data_or_null(ma)
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(x1a) == cnp.NPY_FLOAT:
            status = fo_lbfgsb_pair_update_f32(
                n, <const float *>cnp.PyArray_DATA(x1a), <const float *>cnp.PyArray_DATA(x0a),
                <const float *>cnp.PyArray_DATA(g1a), <const float *>cnp.PyArray_DATA(g0a),
                <const float *>cnp.PyArray_DATA(lo_), <const float *>cnp.PyArray_DATA(hi_),
                <float *>cnp.PyArray_DATA(Sc), <float *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, rr, <const uint8_t *>mp,
                <float *>dap, <double *>cnp.PyArray_DATA(out), &pg,
                <uint8_t *>frp, scp, nthreads)
        else:
            status = fo_lbfgsb_pair_update_f64(
                n, <const double *>cnp.PyArray_DATA(x1a), <const double *>cnp.PyArray_DATA(x0a),
                <const double *>cnp.PyArray_DATA(g1a), <const double *>cnp.PyArray_DATA(g0a),
                <const double *>cnp.PyArray_DATA(lo_), <const double *>cnp.PyArray_DATA(hi_),
                <double *>cnp.PyArray_DATA(Sc), <double *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, rr, <const uint8_t *>mp,
                <double *>dap, <double *>cnp.PyArray_DATA(out), &pg,
                <uint8_t *>frp, scp, nthreads)
    _last_threads_used = fo_team_size(n * (2 * k + 2), nthreads)
    check_status(status, "lbfgsb_pair_update")
    return out, pg, (None if not keep_dcp else da if dcp is None else dcp)


def lbfgsb_gram_update(S, Y, rows, weight):
    """``sum_i weight[i] u_i u_i^T`` (float64, 2k x 2k) with ``u_i = (Y[rows, i],
    S[rows, i])``; ``weight`` an int8 vector (0/1: the gram matrix of a variable set;
    -1/0/+1: its change). Work grows with the number of nonzero weights."""
    global _last_threads_used
    if not isinstance(S, np.ndarray):
        raise TypeError(f"S: expected a numpy array, got {type(S).__name__}")
    if S.ndim != 2:
        raise ValueError(f"S: expected shape (slots, n), got {S.shape}")
    cdef cnp.ndarray ref = np.empty(S.shape[1], dtype=S.dtype) if S.dtype in (
        np.float32, np.float64) else None
    if ref is None:
        raise TypeError(f"S: expected a float32 or float64 array, got dtype {S.dtype}")
    Sa, Ya = _ring(S, Y, ref)
    cdef cnp.ndarray Sc = <cnp.ndarray>Sa, Yc = <cnp.ndarray>Ya
    cdef cnp.ndarray ra = _rows(rows, Sc.shape[0])
    cdef int64_t n = S.shape[1], k = cnp.PyArray_SIZE(ra)
    cdef cnp.ndarray wa = _mask(weight, "weight", n, np.int8)
    cdef cnp.ndarray out = np.zeros((2 * k, 2 * k))
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(Sc) == cnp.NPY_FLOAT:
            status = fo_lbfgsb_gram_update_f32(
                n, <const float *>cnp.PyArray_DATA(Sc), <const float *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, <const int8_t *>cnp.PyArray_DATA(wa),
                <double *>cnp.PyArray_DATA(out), nthreads)
        else:
            status = fo_lbfgsb_gram_update_f64(
                n, <const double *>cnp.PyArray_DATA(Sc), <const double *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, <const int8_t *>cnp.PyArray_DATA(wa),
                <double *>cnp.PyArray_DATA(out), nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "lbfgsb_gram_update")
    return out


def lbfgsb_gram_change(S, Y, rows, now, before, limit):
    """The change of the free-set gram matrix when the free set goes from `before` to `now`
    (uint8 0/1 masks; `before` is written): ``(G, changes)`` with ``changes`` the number of
    variables whose mask differs. If ``changes <= limit``, ``G`` is
    :func:`lbfgsb_gram_update` with weights ``now - before`` (the same bits) and `before` is
    set to `now`; otherwise ``G`` is None and `before` is left as it was. One pass over
    the masks (no temporary), then work in proportion to the changes."""
    global _last_threads_used
    if not isinstance(S, np.ndarray):
        raise TypeError(f"S: expected a numpy array, got {type(S).__name__}")
    if S.ndim != 2:
        raise ValueError(f"S: expected shape (slots, n), got {S.shape}")
    if S.dtype not in (np.float32, np.float64):
        raise TypeError(f"S: expected a float32 or float64 array, got dtype {S.dtype}")
    cdef cnp.ndarray ref = np.empty(S.shape[1], dtype=S.dtype)
    Sa, Ya = _ring(S, Y, ref)
    cdef cnp.ndarray Sc = <cnp.ndarray>Sa, Yc = <cnp.ndarray>Ya
    cdef cnp.ndarray ra = _rows(rows, Sc.shape[0])
    cdef int64_t n = S.shape[1], k = cnp.PyArray_SIZE(ra)
    cdef int64_t lim = _validation.check_int(limit, "limit", 0, None)
    cdef cnp.ndarray na = _mask(now, "now", n, np.uint8)
    _mask(before, "before", n, np.uint8)
    cdef cnp.ndarray ba = <cnp.ndarray>before
    if not cnp.PyArray_IS_C_CONTIGUOUS(ba) or not cnp.PyArray_ISWRITEABLE(ba):
        raise ValueError("before: expected a writeable C-contiguous array")
    if _overlap(ba, na):
        raise ValueError("before: overlaps now")
    cdef cnp.ndarray out = np.zeros((2 * k, 2 * k))
    cdef int64_t changes = 0
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(Sc) == cnp.NPY_FLOAT:
            status = fo_lbfgsb_gram_change_f32(
                n, <const float *>cnp.PyArray_DATA(Sc), <const float *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, <const uint8_t *>cnp.PyArray_DATA(na),
                <uint8_t *>cnp.PyArray_DATA(ba), lim, <double *>cnp.PyArray_DATA(out),
                &changes, nthreads)
        else:
            status = fo_lbfgsb_gram_change_f64(
                n, <const double *>cnp.PyArray_DATA(Sc), <const double *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, <const uint8_t *>cnp.PyArray_DATA(na),
                <uint8_t *>cnp.PyArray_DATA(ba), lim, <double *>cnp.PyArray_DATA(out),
                &changes, nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "lbfgsb_gram_change")
    return (None if changes > lim else out), int(changes)


def lbfgsb_free_gram(S, Y, rows, free, select=1):
    """``(Y_F^T Y_F, S_F^T Y_F, S_F^T S_F)`` (k x k each, ``SY[i, j] = s_i . y_j``) over
    the variables with ``free == select`` (``free`` a uint8 mask)."""
    fm = _mask(free, "free", S.shape[1] if isinstance(S, np.ndarray) and S.ndim == 2 else -1,
               np.uint8)
    G = lbfgsb_gram_update(S, Y, rows, (fm == select).view(np.int8))
    k = G.shape[0] // 2
    return G[:k, :k], G[k:, :k], G[k:, k:]


def lbfgsb_subspace_point(x, g, xcp, lower, upper, S, Y, rows, cg, a, b, free):
    """The subspace point of L-BFGS-B with the Morales-Nocedal (2011) projection.

    ``du = cg g + sum_j a_j Y[rows[j]] + b_j S[rows[j]]`` on the variables with
    ``free == 1`` (``free`` None: all), 0 elsewhere; returns (new array) ``xcp + du`` if
    that hits no bound, else ``P(xcp + du)`` if ``(P(xcp + du) - x) . g <= 0``, else
    ``xcp + alpha du`` with the largest ``alpha <= 1`` inside the box (the first blocking
    variable put on its bound).
    """
    global _last_threads_used
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    cdef cnp.ndarray ga = _vec_in(g, "g", xa)
    cdef cnp.ndarray ca = _vec_in(xcp, "xcp", xa)
    la, ua = _box(lower, upper, xa)
    cdef cnp.ndarray lo_ = <cnp.ndarray>la, hi_ = <cnp.ndarray>ua
    Sa, Ya = _ring(S, Y, xa)
    cdef cnp.ndarray Sc = <cnp.ndarray>Sa, Yc = <cnp.ndarray>Ya
    cdef cnp.ndarray ra = _rows(rows, Sc.shape[0])
    cdef int64_t n = cnp.PyArray_SIZE(xa), k = cnp.PyArray_SIZE(ra)
    cdef double cgv = check_real(cg, "cg")
    cdef cnp.ndarray aa = _f64(np.asarray(a, dtype=np.float64), "a", (k,))
    cdef cnp.ndarray ba = _f64(np.asarray(b, dtype=np.float64), "b", (k,))
    cdef cnp.ndarray fa = None if free is None else _mask(free, "free", n, np.uint8)
    cdef cnp.ndarray out = np.empty_like(xa)
    cdef int status, nthreads = current_threads()
    cdef void *fp = _data_or_null(fa)
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_lbfgsb_subspace_point_f32(
                n, <const float *>cnp.PyArray_DATA(xa), <const float *>cnp.PyArray_DATA(ga),
                <const float *>cnp.PyArray_DATA(ca), <const float *>cnp.PyArray_DATA(lo_),
                <const float *>cnp.PyArray_DATA(hi_), <const float *>cnp.PyArray_DATA(Sc),
                <const float *>cnp.PyArray_DATA(Yc), <const int64_t *>cnp.PyArray_DATA(ra), k,
                cgv, <const double *>cnp.PyArray_DATA(aa), <const double *>cnp.PyArray_DATA(ba),
                <const uint8_t *>fp, <float *>cnp.PyArray_DATA(out), nthreads)
        else:
            status = fo_lbfgsb_subspace_point_f64(
                n, <const double *>cnp.PyArray_DATA(xa), <const double *>cnp.PyArray_DATA(ga),
                <const double *>cnp.PyArray_DATA(ca), <const double *>cnp.PyArray_DATA(lo_),
                <const double *>cnp.PyArray_DATA(hi_), <const double *>cnp.PyArray_DATA(Sc),
                <const double *>cnp.PyArray_DATA(Yc), <const int64_t *>cnp.PyArray_DATA(ra),
                k, cgv, <const double *>cnp.PyArray_DATA(aa),
                <const double *>cnp.PyArray_DATA(ba), <const uint8_t *>fp,
                <double *>cnp.PyArray_DATA(out), nthreads)
    _last_threads_used = fo_team_size(n * (1 + 2 * k), nthreads)
    check_status(status, "lbfgsb_subspace_point")
    return out


def lbfgsb_subspace_direction(x, g, xcp, lower, upper, S, Y, rows, cg, a, b, free, out=None,
                              trial=None, tsum=None):
    """The subspace point of :func:`lbfgsb_subspace_point` and the search direction from
    it, :func:`lbfgsb_direction`, in one pass over `S` and `Y` (the same bits as the two in
    turn; the point itself is not stored).

    ``out`` (allocated when omitted) receives ``d = z - x`` and must not overlap the other
    arguments; ``trial`` (optional, the same rule) receives ``bounds_step(x, 1, d, lower,
    upper)``, the line search's usual first point, in the same pass. ``xcp`` None: the
    Cauchy point is :func:`lbfgsb_cauchy_point`'s with `free` and ``tsum`` (then
    required), formed where needed instead of read.
    Returns ``(d, max_step, gd, dd)``.
    """
    global _last_threads_used
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    cdef cnp.ndarray ga = _vec_in(g, "g", xa)
    cdef cnp.ndarray ca = None if xcp is None else _vec_in(xcp, "xcp", xa)
    if xcp is None and tsum is None:
        raise ValueError("tsum: expected the Cauchy point's path parameter when xcp is None, "
                         "got None")
    cdef double tsv = 0.0 if xcp is not None else check_real(tsum, "tsum")
    la, ua = _box(lower, upper, xa)
    cdef cnp.ndarray lo_ = <cnp.ndarray>la, hi_ = <cnp.ndarray>ua
    Sa, Ya = _ring(S, Y, xa)
    cdef cnp.ndarray Sc = <cnp.ndarray>Sa, Yc = <cnp.ndarray>Ya
    cdef cnp.ndarray ra = _rows(rows, Sc.shape[0])
    cdef int64_t n = cnp.PyArray_SIZE(xa), k = cnp.PyArray_SIZE(ra)
    cdef double cgv = check_real(cg, "cg")
    cdef cnp.ndarray aa = _f64(np.asarray(a, dtype=np.float64), "a", (k,))
    cdef cnp.ndarray ba = _f64(np.asarray(b, dtype=np.float64), "b", (k,))
    cdef cnp.ndarray fa = None if free is None else _mask(free, "free", n, np.uint8)
    cdef cnp.ndarray oa = np.empty_like(xa) if out is None else _vec_out(out, "out", xa)
    if out is not None:
        for other, nm in ((xa, "x"), (ga, "g"), (ca, "xcp"), (lo_, "lower"), (hi_, "upper"),
                          (Sc, "S"), (Yc, "Y")):
            if other is not None and _overlap(oa, <cnp.ndarray>other):
                raise ValueError(f"out: overlaps {nm}")
    cdef cnp.ndarray ta = None if trial is None else _vec_out(trial, "trial", xa)
    if trial is not None:
        for other, nm in ((xa, "x"), (ga, "g"), (ca, "xcp"), (lo_, "lower"), (hi_, "upper"),
                          (Sc, "S"), (Yc, "Y"), (oa, "out")):
            if other is not None and _overlap(ta, <cnp.ndarray>other):
                raise ValueError(f"trial: overlaps {nm}")
    cdef void *cp = _data_or_null(ca)
    cdef void *tp = _data_or_null(ta)
    cdef double step = 0.0, gd = 0.0, dd = 0.0
    cdef int status, nthreads = current_threads()
    cdef void *fp = _data_or_null(fa)
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_lbfgsb_subspace_direction_f32(
                n, <const float *>cnp.PyArray_DATA(xa), <const float *>cnp.PyArray_DATA(ga),
                <const float *>cp, <const float *>cnp.PyArray_DATA(lo_),
                <const float *>cnp.PyArray_DATA(hi_), <const float *>cnp.PyArray_DATA(Sc),
                <const float *>cnp.PyArray_DATA(Yc), <const int64_t *>cnp.PyArray_DATA(ra), k,
                cgv, <const double *>cnp.PyArray_DATA(aa), <const double *>cnp.PyArray_DATA(ba),
                <const uint8_t *>fp, tsv, <float *>cnp.PyArray_DATA(oa), <float *>tp, &step, &gd,
                &dd, nthreads)
        else:
            status = fo_lbfgsb_subspace_direction_f64(
                n, <const double *>cnp.PyArray_DATA(xa), <const double *>cnp.PyArray_DATA(ga),
                <const double *>cp, <const double *>cnp.PyArray_DATA(lo_),
                <const double *>cnp.PyArray_DATA(hi_), <const double *>cnp.PyArray_DATA(Sc),
                <const double *>cnp.PyArray_DATA(Yc), <const int64_t *>cnp.PyArray_DATA(ra),
                k, cgv, <const double *>cnp.PyArray_DATA(aa),
                <const double *>cnp.PyArray_DATA(ba), <const uint8_t *>fp, tsv,
                <double *>cnp.PyArray_DATA(oa), <double *>tp, &step, &gd, &dd, nthreads)
    _last_threads_used = fo_team_size(n * (1 + 2 * k), nthreads)
    check_status(status, "lbfgsb_subspace_direction")
    return (oa if out is None else out), step, gd, dd
