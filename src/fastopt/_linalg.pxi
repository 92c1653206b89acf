# _linalg.pxi — boundary for the quasi-Newton vector kernels (csrc/linalg.c): dot, axpy,
# scal, the new L-BFGS pair and the L-BFGS two-loop recursion. Arrays are checked once here (dtype, size,
# contiguity, writeability, overlap); C runs without the GIL.
#
# The dense BFGS matrix has its own two kernels here (symv, syr2: full symmetric storage),
# so that BFGS's iterates do not depend on which BLAS kernel a CPU gets.

cdef extern from "linalg.h" nogil:
    int fo_dot_f32(int64_t n, const float *x, const float *y, double *result, int nthreads)
    int fo_dot_f64(int64_t n, const double *x, const double *y, double *result, int nthreads)
    int fo_axpy_f32(int64_t n, double a, const float *x, const float *y, float *out,
                    int nthreads)
    int fo_axpy_f64(int64_t n, double a, const double *x, const double *y, double *out,
                    int nthreads)
    int fo_scal_f32(int64_t n, double a, float *x, int nthreads)
    int fo_scal_f64(int64_t n, double a, double *x, int nthreads)
    int fo_lbfgs_pair_f32(int64_t n, const float *x1, const float *x0, const float *g1,
                          const float *g0, float *s, float *y, double *sy, double *yy,
                          int nthreads)
    int fo_lbfgs_pair_f64(int64_t n, const double *x1, const double *x0, const double *g1,
                          const double *g0, double *s, double *y, double *sy, double *yy,
                          int nthreads)
    int fo_lbfgs_two_loop_step_f32(int64_t n, int64_t slots, int64_t count, int64_t newest,
                                   const float *S, const float *Y, const double *rho,
                                   double gamma, const float *g, float *out, int negate,
                                   const float *x, float *x_unit, double *gd, int nthreads)
    int fo_lbfgs_two_loop_step_f64(int64_t n, int64_t slots, int64_t count, int64_t newest,
                                   const double *S, const double *Y, const double *rho,
                                   double gamma, const double *g, double *out, int negate,
                                   const double *x, double *x_unit, double *gd, int nthreads)
    int fo_lbfgs_trial_f32(int64_t n, const float *x1, const float *x0, const float *g1,
                           const float *g0, const float *d, float *s, float *y, double *out,
                           int nthreads)
    int fo_lbfgs_trial_f64(int64_t n, const double *x1, const double *x0, const double *g1,
                           const double *g0, const double *d, double *s, double *y,
                           double *out, int nthreads)
    int fo_lbfgs_two_loop_f32(int64_t n, int64_t slots, int64_t count, int64_t newest,
                              const float *S, const float *Y, const double *rho, double gamma,
                              const float *g, float *out, int negate, int nthreads)
    int fo_lbfgs_two_loop_f64(int64_t n, int64_t slots, int64_t count, int64_t newest,
                              const double *S, const double *Y, const double *rho,
                              double gamma, const double *g, double *out, int negate,
                              int nthreads)
    int fo_lbfgs_gram_f32(int64_t n, const float *S, const float *Y, const int64_t *rows,
                          int64_t k, const float *v, const float *w, double *out, int nthreads)
    int fo_lbfgs_gram_f64(int64_t n, const double *S, const double *Y, const int64_t *rows,
                          int64_t k, const double *v, const double *w, double *out,
                          int nthreads)
    int fo_lbfgs_vf_direction_step_f32(int64_t n, const float *S, const float *Y,
                                       const int64_t *rows, int64_t k, const double *rho,
                                       const double *SY, const double *YY, const double *Sp,
                                       const double *Yp, double gamma, const float *p,
                                       float *out, int negate, const float *x,
                                       float *x_unit, double *gd, int nthreads)
    int fo_lbfgs_vf_direction_step_f64(int64_t n, const double *S, const double *Y,
                                       const int64_t *rows, int64_t k, const double *rho,
                                       const double *SY, const double *YY, const double *Sp,
                                       const double *Yp, double gamma, const double *p,
                                       double *out, int negate, const double *x,
                                       double *x_unit, double *gd, int nthreads)
    int fo_symv_f32(int64_t n, const float *H, const float *v, float *out, int nthreads)
    int fo_symv_f64(int64_t n, const double *H, const double *v, double *out, int nthreads)
    int fo_syr2_f32(int64_t n, double a, const float *x, const float *y, float *H,
                    int nthreads)
    int fo_syr2_f64(int64_t n, double a, const double *x, const double *y, double *H,
                    int nthreads)
    int fo_syr2_symv_f32(int64_t n, double a, const float *x, const float *y, float *H,
                         const float *v, float *out, int nthreads)
    int fo_syr2_symv_f64(int64_t n, double a, const double *x, const double *y, double *H,
                         const double *v, double *out, int nthreads)


cdef cnp.ndarray _vec_in(object a, str name, cnp.ndarray ref):
    """A read-only vector argument: float32/float64 ndarray (dtype and size of `ref` when
    given), returned C-contiguous (copied if it is not)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    if ref is None:
        if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
            raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {arr.dtype}")
    else:
        if t != cnp.PyArray_TYPE(ref):
            raise TypeError(f"{name}: expected dtype {ref.dtype}, got {arr.dtype}")
        if cnp.PyArray_SIZE(arr) != cnp.PyArray_SIZE(ref):
            raise ValueError(f"{name}: expected {cnp.PyArray_SIZE(ref)} elements, got "
                             f"{cnp.PyArray_SIZE(arr)} (shape {(<object>arr).shape})")
    if _needs_copy(arr):
        arr = <cnp.ndarray>_contiguous_copy(arr)  # aligned too (ascontiguousarray is not)
    return arr


cdef cnp.ndarray _vec_out(object a, str name, cnp.ndarray ref):
    """A written vector argument: dtype and size of `ref`, writeable, C-contiguous."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != cnp.PyArray_TYPE(ref):
        raise TypeError(f"{name}: expected dtype {ref.dtype}, got {arr.dtype}")
    if cnp.PyArray_SIZE(arr) != cnp.PyArray_SIZE(ref):
        raise ValueError(f"{name}: expected {cnp.PyArray_SIZE(ref)} elements, got "
                         f"{cnp.PyArray_SIZE(arr)} (shape {(<object>arr).shape})")
    if not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name}: expected a writeable array, got a read-only one")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)
            and arr.dtype.isnative):
        raise ValueError(f"{name}: expected a C-contiguous, aligned, native-order array")
    return arr


cdef inline bint _overlap(cnp.ndarray a, cnp.ndarray b) noexcept:
    cdef uintptr_t a0 = <uintptr_t>cnp.PyArray_DATA(a), b0 = <uintptr_t>cnp.PyArray_DATA(b)
    cdef uintptr_t a1 = a0 + <uintptr_t>cnp.PyArray_NBYTES(a)
    cdef uintptr_t b1 = b0 + <uintptr_t>cnp.PyArray_NBYTES(b)
    return a0 < b1 and b0 < a1 and cnp.PyArray_NBYTES(a) > 0 and cnp.PyArray_NBYTES(b) > 0


def dot(x, y):
    """``sum_i x_i * y_i`` over all elements, accumulated in float64.

    The sum is formed over fixed blocks of elements whose partial sums are added in block
    order, so the result is the same bits for any thread count. `x` and `y` must have the
    same dtype (float32 or float64) and size; non-contiguous inputs are copied.
    """
    global _last_threads_used
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    cdef cnp.ndarray ya = _vec_in(y, "y", xa)
    cdef int64_t n = cnp.PyArray_SIZE(xa)
    cdef double r = 0.0
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_dot_f32(n, <const float *>cnp.PyArray_DATA(xa),
                                <const float *>cnp.PyArray_DATA(ya), &r, nthreads)
        else:
            status = fo_dot_f64(n, <const double *>cnp.PyArray_DATA(xa),
                                <const double *>cnp.PyArray_DATA(ya), &r, nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "dot")
    return r


def axpy(a, x, y, out=None):
    """``out = y + a * x`` element-wise (in the arrays' dtype; `a` rounded to it once).

    `out` defaults to `y` (updated in place); it may also be `x`, but must not partially
    overlap either. Returns `out`.
    """
    global _last_threads_used
    cdef double av = check_real(a, "a")
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    cdef cnp.ndarray ya
    cdef cnp.ndarray oa
    if out is None:
        ya = _vec_out(y, "y", xa)
        oa = ya
    else:
        ya = _vec_in(y, "y", xa)
        oa = _vec_out(out, "out", xa)
    if (oa is not xa and _overlap(oa, xa)
            and cnp.PyArray_DATA(oa) != cnp.PyArray_DATA(xa)) or (
            oa is not ya and _overlap(oa, ya) and cnp.PyArray_DATA(oa) != cnp.PyArray_DATA(ya)):
        raise ValueError(f"{'y' if out is None else 'out'}: overlaps "
                         f"{'x' if _overlap(oa, xa) else 'y'} without being the same array")
    cdef int64_t n = cnp.PyArray_SIZE(xa)
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_axpy_f32(n, av, <const float *>cnp.PyArray_DATA(xa),
                                 <const float *>cnp.PyArray_DATA(ya),
                                 <float *>cnp.PyArray_DATA(oa), nthreads)
        else:
            status = fo_axpy_f64(n, av, <const double *>cnp.PyArray_DATA(xa),
                                 <const double *>cnp.PyArray_DATA(ya),
                                 <double *>cnp.PyArray_DATA(oa), nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "axpy")
    return out if out is not None else y


def scal(a, x):
    """``x *= a`` in place (in x's dtype; `a` rounded to it once). Returns `x`."""
    global _last_threads_used
    cdef double av = check_real(a, "a")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x: expected a numpy array, got {type(x).__name__}")
    cdef cnp.ndarray xa = _vec_in(x, "x", None)
    xa = _vec_out(x, "x", xa)
    cdef int64_t n = cnp.PyArray_SIZE(xa)
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_scal_f32(n, av, <float *>cnp.PyArray_DATA(xa), nthreads)
        else:
            status = fo_scal_f64(n, av, <double *>cnp.PyArray_DATA(xa), nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "scal")
    return x


cdef tuple _pair_operands(x1, x0, g1, g0, s, y, d=None):
    """The checked arrays of lbfgs_pair (and lbfgs_trial, with its `d`): inputs of x1's
    dtype and size, outputs s and y that share memory with nothing else; returns
    (x1, x0, g1, g0, s, y) and then d where given."""
    cdef cnp.ndarray x1a = _vec_in(x1, "x1", None)
    inputs = [x1a, _vec_in(x0, "x0", x1a), _vec_in(g1, "g1", x1a), _vec_in(g0, "g0", x1a)]
    if d is not None:
        inputs.append(_vec_in(d, "d", x1a))
    cdef cnp.ndarray sa = _vec_out(s, "s", x1a)
    cdef cnp.ndarray ya = _vec_out(y, "y", x1a)
    if _overlap(sa, ya):
        raise ValueError("s: shares memory with y")
    names = "x1, x0, g1, g0 or d" if d is not None else "x1, x0, g1 or g0"
    for name, out in (("s", sa), ("y", ya)):
        for other in inputs:
            if _overlap(out, other):
                raise ValueError(f"{name}: shares memory with {names}")
    return (*inputs[:4], sa, ya, *inputs[4:])


def lbfgs_pair(x1, x0, g1, g0, s, y):
    """A new L-BFGS correction pair in one pass over memory.

    Writes ``s = x1 - x0`` and ``y = g1 - g0`` (element-wise, in the arrays' dtype) and
    returns ``(s . y, y . y)`` accumulated in float64 over fixed blocks (the same bits
    for any thread count): what the curvature test ``s . y > eps * y . y`` and the
    scaling ``gamma = s . y / y . y`` need, without reading ``s`` and ``y`` again.

    Parameters
    ----------
    x1, x0, g1, g0 : ndarray
        float32 or float64, all of the dtype and size of `x1`; non-contiguous inputs are
        copied.
    s, y : ndarray
        Outputs: dtype and size of `x1`, writeable, C-contiguous; they must not share
        memory with each other or with any input.

    Returns
    -------
    (sy, yy) : tuple of float
    """
    global _last_threads_used
    cdef cnp.ndarray x1a, x0a, g1a, g0a, sa, ya
    x1a, x0a, g1a, g0a, sa, ya = _pair_operands(x1, x0, g1, g0, s, y)
    cdef int64_t n = cnp.PyArray_SIZE(x1a)
    cdef double sy = 0.0, yy = 0.0
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(x1a) == cnp.NPY_FLOAT:
            status = fo_lbfgs_pair_f32(
                n, <const float *>cnp.PyArray_DATA(x1a), <const float *>cnp.PyArray_DATA(x0a),
                <const float *>cnp.PyArray_DATA(g1a), <const float *>cnp.PyArray_DATA(g0a),
                <float *>cnp.PyArray_DATA(sa), <float *>cnp.PyArray_DATA(ya), &sy, &yy,
                nthreads)
        else:
            status = fo_lbfgs_pair_f64(
                n, <const double *>cnp.PyArray_DATA(x1a),
                <const double *>cnp.PyArray_DATA(x0a), <const double *>cnp.PyArray_DATA(g1a),
                <const double *>cnp.PyArray_DATA(g0a), <double *>cnp.PyArray_DATA(sa),
                <double *>cnp.PyArray_DATA(ya), &sy, &yy, nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "lbfgs_pair")
    return sy, yy


def lbfgs_trial(x1, x0, g1, g0, d, s, y):
    """A trial point of the L-BFGS line search in one pass over memory.

    Writes the candidate pair ``s = x1 - x0``, ``y = g1 - g0`` as :func:`lbfgs_pair`
    does and returns ``(g1 . d, s . y, y . y, max |g1|)``: the slope the line search
    tests, what the curvature test and the scaling need, and the gradient test's norm
    (NaN if any element of ``g1`` is NaN). The products are the bits of :func:`dot` and
    :func:`lbfgs_pair` (the same fixed blocks, summed in block order), for any thread
    count: one pass instead of three.

    Parameters
    ----------
    x1, x0, g1, g0, d : ndarray
        float32 or float64, all of the dtype and size of `x1`; non-contiguous inputs are
        copied.
    s, y : ndarray
        Outputs: dtype and size of `x1`, writeable, C-contiguous; they must not share
        memory with each other or with any input.

    Returns
    -------
    (gd, sy, yy, gmax) : tuple of float
    """
    global _last_threads_used
    cdef cnp.ndarray x1a, x0a, g1a, g0a, sa, ya, da
    x1a, x0a, g1a, g0a, sa, ya, da = _pair_operands(x1, x0, g1, g0, s, y, d)
    cdef int64_t n = cnp.PyArray_SIZE(x1a)
    cdef double res[4]
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(x1a) == cnp.NPY_FLOAT:
            status = fo_lbfgs_trial_f32(
                n, <const float *>cnp.PyArray_DATA(x1a), <const float *>cnp.PyArray_DATA(x0a),
                <const float *>cnp.PyArray_DATA(g1a), <const float *>cnp.PyArray_DATA(g0a),
                <const float *>cnp.PyArray_DATA(da), <float *>cnp.PyArray_DATA(sa),
                <float *>cnp.PyArray_DATA(ya), res, nthreads)
        else:
            status = fo_lbfgs_trial_f64(
                n, <const double *>cnp.PyArray_DATA(x1a),
                <const double *>cnp.PyArray_DATA(x0a), <const double *>cnp.PyArray_DATA(g1a),
                <const double *>cnp.PyArray_DATA(g0a), <const double *>cnp.PyArray_DATA(da),
                <double *>cnp.PyArray_DATA(sa), <double *>cnp.PyArray_DATA(ya), res, nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "lbfgs_trial")
    return res[0], res[1], res[2], res[3]


def lbfgs_two_loop(g, S, Y, rho, gamma, count, newest, out=None, negate=False, x=None,
                   x_unit=None):
    """L-BFGS two-loop recursion: ``out = (-1 if negate else 1) * H @ g``.

    ``H`` is the L-BFGS inverse-Hessian approximation built on ``H0 = gamma * I`` from
    the `count` newest correction pairs of a ring buffer: pair k (k = 0 the newest) is
    row ``(newest - k) % slots`` of `S` (the s vectors) and `Y` (the y vectors), and
    ``rho[row] = 1 / (s_row . y_row)``.

    Parameters
    ----------
    g : ndarray, shape (n,)
        float32 or float64.
    S, Y : ndarray, shape (slots, n)
        C-contiguous, dtype of `g`.
    rho : ndarray of float64, shape (slots,)
    gamma : float
        Initial scaling (> 0, finite).
    count, newest : int
        ``0 <= count <= slots``; ``0 <= newest < slots`` when ``count > 0``.
    out : ndarray, shape (n,), optional
        Written with the result (allocated when omitted); must not overlap `g`, `S`, `Y`.
    negate : bool
        Return ``-H g`` (the L-BFGS search direction).
    x, x_unit : ndarray, shape (n,), optional
        With `x`, the last pass also writes the line search's first trial point
        ``x_unit = x + out`` and returns ``g . out`` (the bits of :func:`dot`) while
        ``out`` is in cache; `x_unit` (dtype of `g`) must not overlap the other arrays.

    Returns
    -------
    out : ndarray, or (out, g . out) when `x` is given
        Computed in 2 * count + 1 passes over memory, with dot products accumulated in
        float64 over fixed blocks (the same bits for any thread count).
    """
    global _last_threads_used
    cdef cnp.ndarray ga = _vec_in(g, "g", None)
    cdef int64_t n = cnp.PyArray_SIZE(ga)
    cdef double gm = check_real(gamma, "gamma", 0.0, np.inf, True, True)
    cdef bint neg = check_bool(negate, "negate")
    for name, v in (("count", count), ("newest", newest)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name}: expected an integer, got {type(v).__name__}")
    for name, a in (("S", S), ("Y", Y)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: expected a numpy array, got {type(a).__name__}")
        if a.dtype != ga.dtype:
            raise TypeError(f"{name}: expected dtype {ga.dtype} (the dtype of g), got {a.dtype}")
        if a.ndim != 2 or a.shape[1] != n:
            raise ValueError(f"{name}: expected shape (slots, {n}), got {a.shape}")
        if not (a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative):
            raise ValueError(f"{name}: expected a C-contiguous, aligned, native-order array")
    cdef cnp.ndarray Sa = <cnp.ndarray>S
    cdef cnp.ndarray Ya = <cnp.ndarray>Y
    cdef int64_t slots = Sa.shape[0]
    if Ya.shape[0] != slots:
        raise ValueError(f"Y: expected shape {S.shape} (the shape of S), got {Y.shape}")
    cdef cnp.ndarray ra = <cnp.ndarray>_f64(rho, "rho", (slots,))
    if _needs_copy(ra):
        ra = <cnp.ndarray>_contiguous_copy(ra)
    # compared as Python ints first: a huge count is a ValueError, not an OverflowError
    if not 0 <= count <= slots:
        raise ValueError(f"count: expected 0 <= count <= {slots}, got {count}")
    if count > 0 and not 0 <= newest < slots:
        raise ValueError(f"newest: expected 0 <= newest < {slots}, got {newest}")
    cdef int64_t cnt = count, nw = newest if count > 0 else 0
    cdef cnp.ndarray oa
    if out is None:
        oa = np.empty(n, dtype=ga.dtype)
    else:
        oa = _vec_out(out, "out", ga)
        if _overlap(oa, ga) or _overlap(oa, Sa) or _overlap(oa, Ya) or _overlap(oa, ra):
            raise ValueError("out: shares memory with g, S, Y or rho")
    xa, xua = _trial_arrays(x, x_unit, ga, oa, (ga, Sa, Ya), "g, S, Y, out")
    cdef void *xp = NULL if xa is None else cnp.PyArray_DATA(<cnp.ndarray>xa)
    cdef void *xup = NULL if xa is None else cnp.PyArray_DATA(<cnp.ndarray>xua)
    cdef double gd = 0.0
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(ga) == cnp.NPY_FLOAT:
            status = fo_lbfgs_two_loop_step_f32(
                n, slots, cnt, nw, <const float *>cnp.PyArray_DATA(Sa),
                <const float *>cnp.PyArray_DATA(Ya), <const double *>cnp.PyArray_DATA(ra), gm,
                <const float *>cnp.PyArray_DATA(ga), <float *>cnp.PyArray_DATA(oa), neg,
                <const float *>xp, <float *>xup, &gd if xp != NULL else NULL, nthreads)
        else:
            status = fo_lbfgs_two_loop_step_f64(
                n, slots, cnt, nw, <const double *>cnp.PyArray_DATA(Sa),
                <const double *>cnp.PyArray_DATA(Ya), <const double *>cnp.PyArray_DATA(ra), gm,
                <const double *>cnp.PyArray_DATA(ga), <double *>cnp.PyArray_DATA(oa), neg,
                <const double *>xp, <double *>xup, &gd if xp != NULL else NULL, nthreads)
    _last_threads_used = fo_team_size(n, nthreads)
    check_status(status, "lbfgs_two_loop")
    result = out if out is not None else oa
    return (result, gd) if x is not None else result


cdef tuple _trial_arrays(object x, object x_unit, cnp.ndarray ref, cnp.ndarray out,
                         tuple others, str names):
    """(x, x_unit) of a direction kernel's fused first trial point ``x_unit = x + out``
    ((None, None) without one): `x` read like `ref` and apart from `out` (written before
    the last pass reads x), `x_unit` written, apart from `out`, `others` (named, with out,
    in `names`) and `x`."""
    if x is None:
        if x_unit is not None:
            raise ValueError("x: expected the point x_unit = x + out starts from, got None")
        return None, None
    cdef cnp.ndarray xa = _vec_in(x, "x", ref)
    if _overlap(xa, out):
        raise ValueError("x: shares memory with out")
    if x_unit is None:
        raise ValueError("x_unit: expected an array for the trial point, got None")
    cdef cnp.ndarray xua = _vec_out(x_unit, "x_unit", ref)
    for other in others + (out, xa):
        if _overlap(xua, other):
            raise ValueError(f"x_unit: shares memory with {names} or x")
    return xa, xua


cdef tuple _ring(object S, object Y, cnp.ndarray ref):
    """Check the (slots, n) ring buffers S and Y against vector `ref`."""
    cdef int64_t n = cnp.PyArray_SIZE(ref)
    for name, a in (("S", S), ("Y", Y)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: expected a numpy array, got {type(a).__name__}")
        if a.dtype != ref.dtype:
            raise TypeError(f"{name}: expected dtype {ref.dtype}, got {a.dtype}")
        if a.ndim != 2 or a.shape[1] != n:
            raise ValueError(f"{name}: expected shape (slots, {n}), got {a.shape}")
        if not (a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative):
            raise ValueError(f"{name}: expected a C-contiguous, aligned, native-order array")
    if Y.shape != S.shape:
        raise ValueError(f"Y: expected shape {S.shape} (the shape of S), got {Y.shape}")
    return <cnp.ndarray>S, <cnp.ndarray>Y


cdef cnp.ndarray _rows(object rows, int64_t slots):
    raw = np.asarray(rows)
    if raw.ndim != 1:
        raise ValueError(
            f"rows: expected a 1-D array of row indices, got shape {raw.shape}")
    if raw.size and raw.dtype.kind not in "iu":  # no silent truncation of 0.5 or "1"
        raise TypeError(f"rows: expected integer row indices, got dtype {raw.dtype}")
    if raw.size and (raw.min() < 0 or raw.max() >= slots):
        raise ValueError(f"rows: expected indices in [0, {slots}), got {rows!r}")
    cdef cnp.ndarray r = np.asarray(raw, dtype=np.int64)
    if _needs_copy(r):
        r = <cnp.ndarray>_contiguous_copy(r)
    return r


cdef cnp.ndarray _f64(object a, str name, tuple shape):
    if not isinstance(a, np.ndarray) or a.dtype != np.float64:
        raise TypeError(f"{name}: expected a float64 array of shape {shape}, got "
                        f"{_dtype_name(a)}")
    if a.shape != shape:
        raise ValueError(f"{name}: expected a float64 array of shape {shape}, got shape "
                         f"{a.shape}")
    return _contiguous_copy(a) if _needs_copy(<cnp.ndarray>a) else a


def lbfgs_gram(S, Y, rows, v, w):
    """Dot products of the rows ``rows`` of `S` and `Y` with `v` and `w`, in one pass.

    Returns a float64 array ``out`` of length ``4 k + 1`` (k = len(rows)):
    ``out[4i] = S[rows[i]] . v``, ``out[4i+1] = Y[rows[i]] . v`` (0 when `v` is None),
    ``out[4i+2] = S[rows[i]] . w``, ``out[4i+3] = Y[rows[i]] . w`` and ``out[4k] = w . w``,
    accumulated in float64 over fixed blocks (the same bits for any thread count).
    """
    global _last_threads_used
    cdef cnp.ndarray wa = _vec_in(w, "w", None)
    cdef cnp.ndarray va = None if v is None else _vec_in(v, "v", wa)
    Sa, Ya = _ring(S, Y, wa)
    cdef cnp.ndarray Sc = <cnp.ndarray>Sa, Yc = <cnp.ndarray>Ya
    cdef cnp.ndarray ra = _rows(rows, Sc.shape[0])
    cdef int64_t n = cnp.PyArray_SIZE(wa), k = cnp.PyArray_SIZE(ra)
    cdef cnp.ndarray out = np.empty(4 * k + 1)
    cdef const void *vp = NULL if va is None else cnp.PyArray_DATA(va)
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(wa) == cnp.NPY_FLOAT:
            status = fo_lbfgs_gram_f32(n, <const float *>cnp.PyArray_DATA(Sc),
                                       <const float *>cnp.PyArray_DATA(Yc),
                                       <const int64_t *>cnp.PyArray_DATA(ra), k,
                                       <const float *>vp, <const float *>cnp.PyArray_DATA(wa),
                                       <double *>cnp.PyArray_DATA(out), nthreads)
        else:
            status = fo_lbfgs_gram_f64(n, <const double *>cnp.PyArray_DATA(Sc),
                                       <const double *>cnp.PyArray_DATA(Yc),
                                       <const int64_t *>cnp.PyArray_DATA(ra), k,
                                       <const double *>vp,
                                       <const double *>cnp.PyArray_DATA(wa),
                                       <double *>cnp.PyArray_DATA(out), nthreads)
    _last_threads_used = fo_team_size(n * (2 * k + 1), nthreads)
    check_status(status, "lbfgs_gram")
    return out


def lbfgs_vf_direction(p, S, Y, rows, rho, SY, YY, Sp, Yp, gamma, out=None, negate=False,
                       x=None, x_unit=None):
    """Vector-free L-BFGS product ``out = (-1 if negate else 1) * H @ p``.

    The two-loop recursion of :func:`lbfgs_two_loop`, run on the coefficients of the
    work vector in the basis ``{p, s_i, y_i}`` from inner products (Chen et al., NIPS
    2014), then one pass over memory forms the result. The pairs are the rows ``rows``
    (oldest first) of `S` and `Y`; in that order ``rho[i] = 1/(s_i . y_i)``,
    ``SY[i, j] = s_i . y_j`` (read for i <= j), ``YY[i, j] = y_i . y_j``,
    ``Sp[i] = s_i . p``, ``Yp[i] = y_i . p`` (all float64; see :func:`lbfgs_gram`).

    With `x` (and `x_unit`, as in :func:`lbfgs_two_loop`) the same pass also writes the line
    search's first trial point ``x_unit = x + out`` and returns ``(out, p . out)`` (the bits
    of :func:`dot`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import _kernels
    >>> S, Y = np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]])   # curvature 2 along e0
    >>> g = np.array([4.0, 1.0])
    >>> G = _kernels.lbfgs_gram(S, Y, [0], None, g)
    >>> _kernels.lbfgs_vf_direction(g, S, Y, [0], np.array([0.5]), np.array([[2.0]]),
    ...                             np.array([[4.0]]), G[2:3], G[3:4], 0.5, negate=True)
    array([-2. , -0.5])
    """
    global _last_threads_used
    cdef cnp.ndarray pa = _vec_in(p, "p", None)
    Sa, Ya = _ring(S, Y, pa)
    cdef cnp.ndarray Sc = <cnp.ndarray>Sa, Yc = <cnp.ndarray>Ya
    cdef cnp.ndarray ra = _rows(rows, Sc.shape[0])
    cdef int64_t n = cnp.PyArray_SIZE(pa), k = cnp.PyArray_SIZE(ra)
    cdef cnp.ndarray rh = _f64(rho, "rho", (k,))
    cdef cnp.ndarray sy = _f64(SY, "SY", (k, k)), yy = _f64(YY, "YY", (k, k))
    cdef cnp.ndarray sp = _f64(Sp, "Sp", (k,)), yp = _f64(Yp, "Yp", (k,))
    cdef double gm = check_real(gamma, "gamma", 0.0, np.inf, True, True)
    cdef bint neg = check_bool(negate, "negate")
    cdef cnp.ndarray oa
    if out is None:
        oa = np.empty(n, dtype=pa.dtype)
    else:
        oa = _vec_out(out, "out", pa)
        if _overlap(oa, pa) or _overlap(oa, Sc) or _overlap(oa, Yc):
            raise ValueError("out: shares memory with p, S or Y")
        # rows is re-read while out is written; the tables are not, but refuse them alike
        for name, t in (("rows", ra), ("rho", rh), ("SY", sy), ("YY", yy), ("Sp", sp),
                        ("Yp", yp)):
            if _overlap(oa, t):
                raise ValueError(f"out: shares memory with {name}")
    xa, xua = _trial_arrays(x, x_unit, pa, oa, (pa, Sc, Yc), "p, S, Y, out")
    cdef void *xp = NULL if xa is None else cnp.PyArray_DATA(<cnp.ndarray>xa)
    cdef void *xup = NULL if xa is None else cnp.PyArray_DATA(<cnp.ndarray>xua)
    cdef double gd = 0.0
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(pa) == cnp.NPY_FLOAT:
            status = fo_lbfgs_vf_direction_step_f32(
                n, <const float *>cnp.PyArray_DATA(Sc), <const float *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, <const double *>cnp.PyArray_DATA(rh),
                <const double *>cnp.PyArray_DATA(sy), <const double *>cnp.PyArray_DATA(yy),
                <const double *>cnp.PyArray_DATA(sp), <const double *>cnp.PyArray_DATA(yp),
                gm, <const float *>cnp.PyArray_DATA(pa), <float *>cnp.PyArray_DATA(oa), neg,
                <const float *>xp, <float *>xup, &gd if xp != NULL else NULL, nthreads)
        else:
            status = fo_lbfgs_vf_direction_step_f64(
                n, <const double *>cnp.PyArray_DATA(Sc), <const double *>cnp.PyArray_DATA(Yc),
                <const int64_t *>cnp.PyArray_DATA(ra), k, <const double *>cnp.PyArray_DATA(rh),
                <const double *>cnp.PyArray_DATA(sy), <const double *>cnp.PyArray_DATA(yy),
                <const double *>cnp.PyArray_DATA(sp), <const double *>cnp.PyArray_DATA(yp),
                gm, <const double *>cnp.PyArray_DATA(pa), <double *>cnp.PyArray_DATA(oa), neg,
                <const double *>xp, <double *>xup, &gd if xp != NULL else NULL, nthreads)
    _last_threads_used = fo_team_size(n * (2 * k + 1), nthreads)
    check_status(status, "lbfgs_vf_direction")
    result = out if out is not None else oa
    return (result, gd) if x is not None else result


# cimportable nogil entry points (declared in _kernels.pxd); nthreads <= 0: current setting
cdef cnp.ndarray _square(object H, str name, bint writeable):
    """The (n, n) matrix of symv/syr2: float32/float64, C-contiguous, aligned, native
    (writeable when it is written)."""
    if not isinstance(H, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(H).__name__}")
    if H.dtype != np.float32 and H.dtype != np.float64:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {H.dtype}")
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"{name}: expected a square (n, n) array, got shape {H.shape}")
    if not (H.flags.c_contiguous and H.flags.aligned and H.dtype.isnative):
        raise ValueError(f"{name}: expected a C-contiguous, aligned, native-order array")
    if writeable and not H.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array, got a read-only one")
    return <cnp.ndarray>H


cdef cnp.ndarray _side_vector(object v, str name, cnp.ndarray H):
    """A vector of symv/syr2: dtype of `H`, H.shape[0] elements, contiguous (copied)."""
    if not isinstance(v, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(v).__name__}")
    cdef cnp.ndarray va = <cnp.ndarray>v
    if cnp.PyArray_TYPE(va) != cnp.PyArray_TYPE(H):
        raise TypeError(f"{name}: expected dtype {H.dtype} (the dtype of H), got {va.dtype}")
    if cnp.PyArray_SIZE(va) != H.shape[0]:
        raise ValueError(f"{name}: expected {H.shape[0]} elements (the order of H), got "
                         f"{cnp.PyArray_SIZE(va)} (shape {(<object>va).shape})")
    if _needs_copy(va):
        va = <cnp.ndarray>_contiguous_copy(va)
    return va


def symv(H, v, out=None):
    """``out = H @ v`` for a symmetric ``H`` stored whole (both triangles): the product of
    the dense BFGS inverse Hessian.

    Each element is a row's dot product summed in float64 over fixed blocks in block order
    (the bits of :func:`dot` of that row), rows split between threads: the same bits for
    any thread count and any CPU, unlike a BLAS ``dsymv``.

    Parameters
    ----------
    H : ndarray, shape (n, n)
        float32 or float64, C-contiguous (only read).
    v : ndarray, shape (n,)
        dtype of `H`; copied if not contiguous.
    out : ndarray, shape (n,), optional
        Written with the result (allocated when omitted); must not overlap `H` or `v`.

    Returns
    -------
    out : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import _kernels
    >>> H = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> _kernels.symv(H, np.array([1.0, 1.0]))
    array([3., 4.])
    """
    global _last_threads_used
    cdef cnp.ndarray Ha = _square(H, "H", False)
    cdef cnp.ndarray va = _side_vector(v, "v", Ha)
    cdef int64_t n = cnp.PyArray_SIZE(va)
    cdef cnp.ndarray oa
    if out is None:
        oa = np.empty(n, dtype=va.dtype)
    else:
        oa = _vec_out(out, "out", va)
        if _overlap(oa, va) or _overlap(oa, Ha):
            raise ValueError("out: shares memory with H or v")
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(va) == cnp.NPY_FLOAT:
            status = fo_symv_f32(n, <const float *>cnp.PyArray_DATA(Ha),
                                 <const float *>cnp.PyArray_DATA(va),
                                 <float *>cnp.PyArray_DATA(oa), nthreads)
        else:
            status = fo_symv_f64(n, <const double *>cnp.PyArray_DATA(Ha),
                                 <const double *>cnp.PyArray_DATA(va),
                                 <double *>cnp.PyArray_DATA(oa), nthreads)
    _last_threads_used = fo_team_size(n * n, nthreads)
    check_status(status, "symv")
    return out if out is not None else oa


def syr2(a, x, y, H):
    """``H += a * (x y' + y x')`` in place, for a symmetric ``H`` stored whole: the
    BFGS rank-2 update of the dense inverse Hessian.

    Each element is computed in float64 and rounded to the dtype once; ``x_i y_j + y_i
    x_j`` is the same number for ``(i, j)`` and ``(j, i)``, so a symmetric ``H`` stays
    exactly symmetric. Element-wise, so the same bits for any thread count and CPU.

    Parameters
    ----------
    a : float
    x, y : ndarray, shape (n,)
        dtype of `H`; copied if not contiguous; must not overlap `H`.
    H : ndarray, shape (n, n)
        float32 or float64, C-contiguous, writeable: updated in place.

    Returns
    -------
    H : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import _kernels
    >>> H = np.eye(2)
    >>> _kernels.syr2(0.5, np.array([1.0, 0.0]), np.array([0.0, 2.0]), H)
    array([[1., 1.],
           [1., 1.]])
    """
    global _last_threads_used
    cdef double av = check_real(a, "a")
    cdef cnp.ndarray Ha = _square(H, "H", True)
    cdef cnp.ndarray xa = _side_vector(x, "x", Ha)
    cdef cnp.ndarray ya = _side_vector(y, "y", Ha)
    if _overlap(Ha, xa) or _overlap(Ha, ya):
        raise ValueError("H: shares memory with x or y")
    cdef int64_t n = cnp.PyArray_SIZE(xa)
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT:
            status = fo_syr2_f32(n, av, <const float *>cnp.PyArray_DATA(xa),
                                 <const float *>cnp.PyArray_DATA(ya),
                                 <float *>cnp.PyArray_DATA(Ha), nthreads)
        else:
            status = fo_syr2_f64(n, av, <const double *>cnp.PyArray_DATA(xa),
                                 <const double *>cnp.PyArray_DATA(ya),
                                 <double *>cnp.PyArray_DATA(Ha), nthreads)
    _last_threads_used = fo_team_size(n * n, nthreads)
    check_status(status, "syr2")
    return H


def syr2_symv(a, x, y, H, v, out=None):
    """:func:`syr2` and then :func:`symv` with the updated matrix, in one pass over ``H``:
    ``H += a * (x y' + y x')``, then ``out = H @ v`` -- the BFGS update and the next
    search direction's product, reading ``H`` once instead of twice. The same bits as the
    two calls, for any thread count.

    Parameters
    ----------
    a : float
    x, y, v : ndarray, shape (n,)
        dtype of `H`; copied if not contiguous; must not overlap `H`.
    H : ndarray, shape (n, n)
        float32 or float64, C-contiguous, writeable: updated in place.
    out : ndarray, shape (n,), optional
        Written with ``H @ v`` (allocated when omitted); must not overlap `H`, `x`, `y`
        or `v`.

    Returns
    -------
    out : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import _kernels
    >>> H = np.eye(2)
    >>> _kernels.syr2_symv(0.5, np.array([1.0, 0.0]), np.array([0.0, 2.0]), H,
    ...                    np.array([1.0, 1.0]))
    array([2., 2.])
    """
    global _last_threads_used
    cdef double av = check_real(a, "a")
    cdef cnp.ndarray Ha = _square(H, "H", True)
    cdef cnp.ndarray xa = _side_vector(x, "x", Ha)
    cdef cnp.ndarray ya = _side_vector(y, "y", Ha)
    cdef cnp.ndarray va = _side_vector(v, "v", Ha)
    if _overlap(Ha, xa) or _overlap(Ha, ya) or _overlap(Ha, va):
        raise ValueError("H: shares memory with x, y or v")
    cdef int64_t n = cnp.PyArray_SIZE(va)
    cdef cnp.ndarray oa
    if out is None:
        oa = np.empty(n, dtype=va.dtype)
    else:
        oa = _vec_out(out, "out", va)
        if (_overlap(oa, Ha) or _overlap(oa, xa) or _overlap(oa, ya)
                or _overlap(oa, va)):
            raise ValueError("out: shares memory with H, x, y or v")
    cdef int status, nthreads = current_threads()
    with nogil:
        if cnp.PyArray_TYPE(va) == cnp.NPY_FLOAT:
            status = fo_syr2_symv_f32(n, av, <const float *>cnp.PyArray_DATA(xa),
                                      <const float *>cnp.PyArray_DATA(ya),
                                      <float *>cnp.PyArray_DATA(Ha),
                                      <const float *>cnp.PyArray_DATA(va),
                                      <float *>cnp.PyArray_DATA(oa), nthreads)
        else:
            status = fo_syr2_symv_f64(n, av, <const double *>cnp.PyArray_DATA(xa),
                                      <const double *>cnp.PyArray_DATA(ya),
                                      <double *>cnp.PyArray_DATA(Ha),
                                      <const double *>cnp.PyArray_DATA(va),
                                      <double *>cnp.PyArray_DATA(oa), nthreads)
    _last_threads_used = fo_team_size(n * n, nthreads)
    check_status(status, "syr2_symv")
    return out if out is not None else oa


cdef int dot_f32(const float *x, const float *y, Py_ssize_t n, double *result,
                 int nthreads) noexcept nogil:
    return fo_dot_f32(n, x, y, result, nthreads if nthreads > 0 else current_threads())


cdef int dot_f64(const double *x, const double *y, Py_ssize_t n, double *result,
                 int nthreads) noexcept nogil:
    return fo_dot_f64(n, x, y, result, nthreads if nthreads > 0 else current_threads())


cdef int axpy_f32(double a, const float *x, const float *y, float *out, Py_ssize_t n,
                  int nthreads) noexcept nogil:
    return fo_axpy_f32(n, a, x, y, out, nthreads if nthreads > 0 else current_threads())


cdef int axpy_f64(double a, const double *x, const double *y, double *out, Py_ssize_t n,
                  int nthreads) noexcept nogil:
    return fo_axpy_f64(n, a, x, y, out, nthreads if nthreads > 0 else current_threads())


cdef int lbfgs_two_loop_f32(const float *S, const float *Y, const double *rho,
                            Py_ssize_t slots, Py_ssize_t count, Py_ssize_t newest,
                            double gamma, const float *g, float *out, Py_ssize_t n,
                            bint negate, int nthreads) noexcept nogil:
    return fo_lbfgs_two_loop_f32(n, slots, count, newest, S, Y, rho, gamma, g, out, negate,
                                 nthreads if nthreads > 0 else current_threads())


cdef int lbfgs_two_loop_f64(const double *S, const double *Y, const double *rho,
                            Py_ssize_t slots, Py_ssize_t count, Py_ssize_t newest,
                            double gamma, const double *g, double *out, Py_ssize_t n,
                            bint negate, int nthreads) noexcept nogil:
    return fo_lbfgs_two_loop_f64(n, slots, count, newest, S, Y, rho, gamma, g, out, negate,
                                 nthreads if nthreads > 0 else current_threads())


cdef int lbfgs_pair_f32(const float *x1, const float *x0, const float *g1, const float *g0,
                        float *s, float *y, Py_ssize_t n, double *sy, double *yy,
                        int nthreads) noexcept nogil:
    return fo_lbfgs_pair_f32(n, x1, x0, g1, g0, s, y, sy, yy,
                             nthreads if nthreads > 0 else current_threads())


cdef int lbfgs_pair_f64(const double *x1, const double *x0, const double *g1,
                        const double *g0, double *s, double *y, Py_ssize_t n, double *sy,
                        double *yy, int nthreads) noexcept nogil:
    return fo_lbfgs_pair_f64(n, x1, x0, g1, g0, s, y, sy, yy,
                             nthreads if nthreads > 0 else current_threads())
