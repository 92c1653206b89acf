# _bandwidth.pxi — boundary for the memory-bandwidth reference kernels (csrc/bandwidth.c).
#
# stream_copy and stream_triad are the yardstick of `python -m fastopt bench`: the same
# process, flags, SIMD clones and thread policy as the optimizer kernels, one pass over
# memory. They are validated like every other kernel, except that an input that is not
# C-contiguous is an error rather than silently copied (a copy would corrupt the
# measurement).

cdef extern from "bandwidth.h" nogil:
    int fo_stream_copy_f32(float *dst, const float *src, int64_t n, int nthreads,
                           int *threads_used)
    int fo_stream_copy_f64(double *dst, const double *src, int64_t n, int nthreads,
                           int *threads_used)
    int fo_stream_triad_f32(float *a, const float *b, const float *c, double scalar,
                            int64_t n, int nthreads, int *threads_used)
    int fo_stream_triad_f64(double *a, const double *b, const double *c, double scalar,
                            int64_t n, int nthreads, int *threads_used)


cdef void _require_contiguous_input(object x, str name) except *:
    if isinstance(x, np.ndarray) and _needs_copy(<cnp.ndarray>x):
        raise ValueError(f"{name}: expected a C-contiguous, aligned, native-byte-order array "
                         "(a bandwidth kernel must not copy its input), got one that is not")


cdef Batch _stream_batch(list arrays, tuple names):
    """Validate one output and its inputs (same dtype/shape, disjoint) as a 1-tensor Batch."""
    for k in range(1, len(arrays)):
        _require_contiguous_input(arrays[k], names[k])
    cdef tuple roles = (PARAM,) + (GRAD,) * (len(arrays) - 1)
    cdef tuple singles = (True,) * len(arrays)
    batches = prepare([[a] for a in arrays], names, roles, singles)
    return <Batch>(batches[0] if batches[0] is not None else batches[1])


def stream_copy(dst, src):
    """Copy `src` into `dst` in one parallel pass: ``dst[...] = src``.

    The memory-bandwidth yardstick (with :func:`stream_triad`) that ``python -m fastopt
    bench`` compares every kernel against. It moves ``2 * src.nbytes`` bytes that a copy
    must move, plus ``dst.nbytes`` of write-allocate reads on CPUs whose ordinary stores
    first read the cache line (x86).

    Parameters
    ----------
    dst : ndarray
        float32 or float64, C-contiguous, writeable; overwritten.
    src : ndarray
        Same dtype and shape as `dst`, C-contiguous (not copied: an error otherwise),
        not overlapping `dst`.

    Raises
    ------
    TypeError, ValueError
        For a bad argument, naming it; nothing is modified then.
    """
    global _last_threads_used
    cdef Batch b = _stream_batch([dst, src], ("dst", "src"))
    cdef int status, used = 1
    cdef int nthreads = current_threads()
    cdef int64_t n = b.total()
    with nogil:
        if b.typenum == cnp.NPY_FLOAT:
            status = fo_stream_copy_f32(<float *>b.column(0)[0], <const float *>b.column(1)[0],
                                        n, nthreads, &used)
        else:
            status = fo_stream_copy_f64(<double *>b.column(0)[0],
                                        <const double *>b.column(1)[0], n, nthreads, &used)
    _last_threads_used = used
    check_status(status, "stream_copy")


def stream_triad(a, b, c, scalar):
    """STREAM triad in one parallel pass: ``a[...] = b + scalar * c``.

    Rounded once per operation in the arrays' precision (no fused multiply-add), so the
    result equals numpy's ``b + a.dtype.type(scalar) * c`` bit for bit, for any number of
    threads. Moves ``3 * a.nbytes`` bytes that a triad must move, plus ``a.nbytes`` of
    write-allocate reads on CPUs whose ordinary stores first read the cache line (x86).

    Parameters
    ----------
    a : ndarray
        float32 or float64, C-contiguous, writeable; overwritten.
    b, c : ndarray
        Same dtype and shape as `a`, C-contiguous (not copied: an error otherwise),
        not overlapping `a` (`b` and `c` may be the same array).
    scalar : float
        A finite real number, rounded to the arrays' dtype.

    Raises
    ------
    TypeError, ValueError
        For a bad argument, naming it; nothing is modified then.
    """
    global _last_threads_used
    cdef double s = check_real(scalar, "scalar")
    if not isfinite(s):
        raise ValueError(f"scalar: expected a finite number, got {scalar!r}")
    cdef Batch bt = _stream_batch([a, b, c], ("a", "b", "c"))
    cdef int status, used = 1
    cdef int nthreads = current_threads()
    cdef int64_t n = bt.total()
    with nogil:
        if bt.typenum == cnp.NPY_FLOAT:
            status = fo_stream_triad_f32(<float *>bt.column(0)[0], <const float *>bt.column(1)[0],
                                         <const float *>bt.column(2)[0], s, n, nthreads, &used)
        else:
            status = fo_stream_triad_f64(<double *>bt.column(0)[0],
                                         <const double *>bt.column(1)[0],
                                         <const double *>bt.column(2)[0], s, n, nthreads, &used)
    _last_threads_used = used
    check_status(status, "stream_triad")
