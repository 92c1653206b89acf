# _norm.pxi — boundary for the global-norm and scaling kernels (csrc/norm.c).

from libc.math cimport isinf

cdef extern from "norm.h" nogil:
    enum:
        FO_NORM_MAX_ABS
        FO_NORM_SUM_ABS
        FO_NORM_SUM_SQ
        FO_NORM_SUM_POW
    int fo_norm_f32(fo_layout *layout, const float **x, int kind, double p, double *result,
                    int nthreads)
    int fo_norm_f64(fo_layout *layout, const double **x, int kind, double p, double *result,
                    int nthreads)
    int fo_scale_f32(fo_layout *layout, float **x, double factor, int nthreads)
    int fo_scale_f64(fo_layout *layout, double **x, double factor, int nthreads)


def norm_reduce(x, norm_type=2.0):
    """The reduction behind a global p-norm of one array or a list of arrays, in float64.

    Returns ``max |x|`` for ``norm_type=inf`` and ``sum |x|**p`` otherwise (take the p-th
    root yourself), over every element of every array, summed in fixed blocks so the
    result is the same for any thread count. Arrays may be read-only or strided (copied).
    """
    global _last_threads_used
    cdef double p = check_real(norm_type, "norm_type", 0.0, np.inf, True, False)
    cdef int kind = (FO_NORM_MAX_ABS if isinf(p) else FO_NORM_SUM_ABS if p == 1.0
                     else FO_NORM_SUM_SQ if p == 2.0 else FO_NORM_SUM_POW)
    xs, single = _as_list(x, "x")
    if not xs:
        return 0.0
    batches = prepare([xs], ("x",), (GRAD,), (single,))
    cdef double part, total = 0.0
    cdef int status = FO_OK, nthreads = current_threads()
    cdef Batch b
    for which in range(2):
        if batches[which] is None:
            continue
        b = <Batch>batches[which]
        with nogil:
            if which == 0:
                status = fo_norm_f32(&b.layout, <const float **>b.column(0), kind, p, &part,
                                     nthreads)
            else:
                status = fo_norm_f64(&b.layout, <const double **>b.column(0), kind, p, &part,
                                     nthreads)
        _last_threads_used = b.layout.threads_used
        check_status(status, "norm_reduce")
        if kind == FO_NORM_MAX_ABS:  # NaN-sticky max across the two dtypes
            total = total if total != total else (part if part != part or part > total
                                                  else total)
        else:
            total += part
    return total


def scale_(x, factor):
    """Multiply one array or a list of arrays in place by `factor` (in each array's dtype)."""
    global _last_threads_used
    cdef double f = to_double(factor, "factor")  # NaN and inf allowed: they propagate
    xs, single = _as_list(x, "x")
    if not xs:
        return
    batches = prepare([xs], ("x",), (PARAM,), (single,))
    cdef int status = FO_OK, nthreads = current_threads()
    cdef Batch b
    for which in range(2):
        if batches[which] is None:
            continue
        b = <Batch>batches[which]
        with nogil:
            if which == 0:
                status = fo_scale_f32(&b.layout, <float **>b.column(0), f, nthreads)
            else:
                status = fo_scale_f64(&b.layout, <double **>b.column(0), f, nthreads)
        _last_threads_used = b.layout.threads_used
        check_status(status, "scale_")
