# _lowprec.pxi — optimizer state in fewer bits (csrc/lowprec.h, csrc/quantize.c,
# csrc/optim_lowprec.inc): the standalone conversions (blockwise int8 quantization,
# bfloat16) and the step of an optimizer whose state arrays are stored that way.
#
# Uses: _boundary.pxi (prepare, Batch, checks), _threads.pxi (current_threads), _optim.pxi
# (KernelOptions, fo_lowprec_states) and the families' run_lowprec (_families.pxi).

from libc.stdint cimport uint8_t, uint16_t

cdef extern from "quantize.h" nogil:
    int fo_quantize_blockwise_f32(const float *x, int64_t n, int nonnegative, uint8_t *codes,
                                  float *absmax, int nthreads)
    int fo_quantize_blockwise_f64(const double *x, int64_t n, int nonnegative,
                                  uint8_t *codes, float *absmax, int nthreads)
    int fo_dequantize_blockwise_f32(const uint8_t *codes, const float *absmax, int64_t n,
                                    int nonnegative, float *out, int nthreads)
    int fo_dequantize_blockwise_f64(const uint8_t *codes, const float *absmax, int64_t n,
                                    int nonnegative, double *out, int nthreads)
    int fo_bf16_from_f32(const float *x, uint16_t *out, int64_t n, int nthreads)
    int fo_bf16_to_f32_array(const uint16_t *h, float *out, int64_t n, int nthreads)

#: Elements per quantization block (one float32 absmax each).
QBLOCK = 256

#: The format codes of csrc/optim.h's enum fo_state_format.
STATE_FULL, STATE_BFLOAT16, STATE_INT8 = FO_STATE_FULL, FO_STATE_BFLOAT16, FO_STATE_INT8


cdef cnp.ndarray _contiguous_input(object x, str name, tuple dtypes):
    """x as a C-contiguous, aligned, native array of one of `dtypes` (copied if needed)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got "
                        f"{_validation.describe_value(x)}")
    if x.dtype not in dtypes:
        raise TypeError(f"{name}: expected a {' or '.join(str(np.dtype(d)) for d in dtypes)} "
                        f"array, got dtype {x.dtype}")
    return <cnp.ndarray>np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))


def quantize_blockwise(x, bint nonnegative=False):
    """(codes, absmax) of `x` (float32/float64, any shape): blockwise 8-bit dynamic
    quantization, blocks of 256 elements of the flattened array.

    ``codes`` (uint8, x's shape) index the dynamic map of Dettmers et al. -- the signed
    one, or the unsigned one when `nonnegative` (then |x| is encoded) -- and ``absmax``
    (float32, one per block) is the block's largest magnitude (NaN when it holds a NaN).
    Each element gets the nearest code of x / absmax (ties to the smaller magnitude)."""
    cdef cnp.ndarray a = _contiguous_input(x, "x", (np.float32, np.float64))
    cdef int64_t n = cnp.PyArray_SIZE(a)
    cdef cnp.ndarray codes = np.empty(np.shape(a), dtype=np.uint8)
    cdef cnp.ndarray absmax = np.empty((n + QBLOCK - 1) // QBLOCK, dtype=np.float32)
    cdef int status, nthreads = current_threads()
    cdef bint f32 = cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT
    with nogil:
        if f32:
            status = fo_quantize_blockwise_f32(<const float *>cnp.PyArray_DATA(a), n,
                                               nonnegative, <uint8_t *>cnp.PyArray_DATA(codes),
                                               <float *>cnp.PyArray_DATA(absmax), nthreads)
        else:
            status = fo_quantize_blockwise_f64(<const double *>cnp.PyArray_DATA(a), n,
                                               nonnegative, <uint8_t *>cnp.PyArray_DATA(codes),
                                               <float *>cnp.PyArray_DATA(absmax), nthreads)
    check_status(status, "quantize_blockwise")
    return codes, absmax


def dequantize_blockwise(codes, absmax, bint nonnegative=False, dtype=np.float32):
    """The values ``map[codes] * absmax[block]`` (float32 or float64, codes' shape) of a
    :func:`quantize_blockwise` result."""
    cdef cnp.ndarray c = _contiguous_input(codes, "codes", (np.uint8,))
    cdef cnp.ndarray m = _contiguous_input(absmax, "absmax", (np.float32,))
    cdef int64_t n = cnp.PyArray_SIZE(c)
    if np.ndim(m) != 1 or np.shape(m)[0] != (n + QBLOCK - 1) // QBLOCK:
        raise ValueError(f"absmax: expected {(n + QBLOCK - 1) // QBLOCK} values (one per "
                         f"block of {QBLOCK} codes), got shape {np.shape(m)}")
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    cdef cnp.ndarray out = np.empty(np.shape(c), dtype=dt)
    cdef int status, nthreads = current_threads()
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = fo_dequantize_blockwise_f32(<const uint8_t *>cnp.PyArray_DATA(c),
                                                 <const float *>cnp.PyArray_DATA(m), n,
                                                 nonnegative, <float *>cnp.PyArray_DATA(out),
                                                 nthreads)
        else:
            status = fo_dequantize_blockwise_f64(<const uint8_t *>cnp.PyArray_DATA(c),
                                                 <const float *>cnp.PyArray_DATA(m), n,
                                                 nonnegative, <double *>cnp.PyArray_DATA(out),
                                                 nthreads)
    check_status(status, "dequantize_blockwise")
    return out


def bfloat16_from_float(x):
    """The bfloat16 bits (uint16, x's shape) of float32 `x`, rounded to nearest even (a
    float64 array is first rounded to float32)."""
    cdef cnp.ndarray a = _contiguous_input(x, "x", (np.float32, np.float64))
    if cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT:
        a = <cnp.ndarray>a.astype(np.float32)
    cdef cnp.ndarray out = np.empty(np.shape(a), dtype=np.uint16)
    cdef int status, nthreads = current_threads()
    with nogil:
        status = fo_bf16_from_f32(<const float *>cnp.PyArray_DATA(a),
                                  <uint16_t *>cnp.PyArray_DATA(out), cnp.PyArray_SIZE(a),
                                  nthreads)
    check_status(status, "bfloat16_from_float")
    return out


def bfloat16_to_float(bits):
    """The float32 values of bfloat16 `bits` (uint16), exactly."""
    cdef cnp.ndarray h = _contiguous_input(bits, "bits", (np.uint16,))
    cdef cnp.ndarray out = np.empty(np.shape(h), dtype=np.float32)
    cdef int status, nthreads = current_threads()
    with nogil:
        status = fo_bf16_to_f32_array(<const uint16_t *>cnp.PyArray_DATA(h),
                                      <float *>cnp.PyArray_DATA(out), cnp.PyArray_SIZE(h),
                                      nthreads)
    check_status(status, "bfloat16_to_float")
    return out


# ---------------------------------------------------------------------------------------
# The step with low-precision state
# ---------------------------------------------------------------------------------------

cdef inline bint _owned_array(object a, int typenum, cnp.ndarray p, bint same_shape) noexcept:
    """A state array the kernel may write: `typenum`, writeable, aligned, C-contiguous,
    native; p's shape when `same_shape`."""
    if not cnp.PyArray_Check(a):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    return (cnp.PyArray_TYPE(arr) == typenum and cnp.PyArray_ISWRITEABLE(arr)
            and cnp.PyArray_ISCARRAY(arr) and arr.dtype.isnative
            and (not same_shape or _same_shape(arr, p)))


cdef class LowprecCall:
    """One validated low-precision update (:func:`lowprec_prepare`): the C pointer tables
    of its params, gradients and state, ready to :meth:`run` once."""
    cdef KernelOptions o
    cdef Batch b
    cdef fo_lowprec_states st
    cdef int *format
    cdef void **states
    cdef float **absmax
    cdef uint64_t *streams
    cdef int64_t *steps
    cdef double **previous
    cdef double *reals
    cdef list counters       # the 0-d int64 step counters, or None
    cdef int nreal
    cdef bint done

    def __dealloc__(self):
        free(self.format)
        free(self.states)
        free(self.absmax)
        free(self.streams)
        free(self.steps)
        free(self.previous)
        free(self.reals)

    cdef int launch(self, const int64_t *steps, const double *reals,
                    int nthreads) noexcept nogil:
        """The kernel call (the C status)."""
        return self.o.run_lowprec(self.b, &self.st, steps, reals, nthreads)

    def run(self):
        """Run the update (GIL released), then advance the step counters and real scalars."""
        global _last_threads_used
        if self.done:
            raise RuntimeError("LowprecCall.run: this update already ran")
        cdef Py_ssize_t i, r, n = self.b.count
        cdef const int64_t *steps_ptr = NULL
        cdef const double *reals_ptr = NULL
        if self.counters is not None:
            steps_ptr = self.steps
            if self.nreal:
                self.o.advance_reals(self.steps, self.previous, self.reals, n)
                reals_ptr = self.reals
        cdef int status, nthreads = current_threads()
        with nogil:
            status = self.launch(steps_ptr, reals_ptr, nthreads)
        _last_threads_used = self.b.layout.threads_used
        self.done = True
        check_status(status, self.o.kernel)
        if self.counters is not None:
            for i in range(n):
                (<int64_t *>cnp.PyArray_DATA(<cnp.ndarray>self.counters[i]))[0] += 1
                for r in range(self.nreal):
                    self.previous[r * n + i][0] = self.reals[r * n + i]


def lowprec_prepare(KernelOptions o, list params, list grads, list formats, list states,
                    list absmax, list steps, list reals, streams, uint64_t seed,
                    unsigned nonnegative):
    """Validate one update of `o`'s family over `params` (one dtype) with `grads`, each
    tensor's state in its format (STATE_FULL, STATE_BFLOAT16, STATE_INT8); returns the
    :class:`LowprecCall` that runs it. Nothing is modified until it runs.

    states[j] / absmax[j]: per tensor, state j (an array of the param's dtype, uint16
    bfloat16 bits or uint8 codes) and, for int8, its float32 block maxima -- None for a
    state the options leave unused; steps: per tensor a 0-d int64 counter, or None for a
    family without (the kernel takes t = counter + 1; the counters advance after the run);
    reals: per real scalar a list of 0-d float64 arrays (advanced by the family's rule);
    streams: per-tensor Philox streams (uint64) of the bfloat16 rounding; nonnegative: bit
    j set if state j uses the unsigned map. The state arrays belong to the optimizer that
    passes them (their overlap with params and gradients is not checked)."""
    if len(params) == 0:
        raise ValueError("params: expected at least one array, got none")
    batches = prepare([params, grads], ("params", "grads"), (PARAM, GRAD), (False, False))
    if batches[0] is not None and batches[1] is not None:
        raise TypeError("params: lowprec_prepare takes params of one dtype")
    cdef LowprecCall call = LowprecCall.__new__(LowprecCall)
    cdef Batch b = <Batch>(batches[0] if batches[0] is not None else batches[1])
    _bind_states(call, o, b, b.typenum, params, formats, states, absmax, steps, reals,
                 streams, seed, nonnegative)
    return call


cdef void _bind_states(LowprecCall call, KernelOptions o, Batch b, int typenum, list params,
                       list formats, list states, list absmax, list steps, list reals,
                       streams, uint64_t seed, unsigned nonnegative) except *:
    """Fill `call` (its batch `b` of params and grads already validated) with the pointer
    tables of the states (a full state has dtype `typenum`), the step counters and real
    scalars: lowprec_prepare's arguments, checked the same way."""
    cdef Py_ssize_t n = len(params), i, r
    cdef int j, f, nreal = len(reals)
    cdef int nstates = o.nstates
    cdef cnp.ndarray p, a
    if len(formats) != n or len(states) != nstates or len(absmax) != nstates:
        raise ValueError("lowprec_prepare: expected one format per param and one column per "
                         "state")
    call.o = o
    call.b = b
    call.nreal = nreal
    call.format = <int *>malloc((n + 1) * sizeof(int))
    call.states = <void **>malloc((3 * n + 1) * sizeof(void *))
    call.absmax = <float **>malloc((3 * n + 1) * sizeof(float *))
    call.streams = <uint64_t *>malloc((n + 1) * sizeof(uint64_t))
    call.steps = <int64_t *>malloc((n + 1) * sizeof(int64_t))
    call.previous = <double **>malloc((nreal * n + 1) * sizeof(double *))
    call.reals = <double *>malloc((nreal * n + 1) * sizeof(double))
    if (call.format == NULL or call.states == NULL or call.absmax == NULL
            or call.streams == NULL or call.steps == NULL or call.previous == NULL
            or call.reals == NULL):
        raise MemoryError()
    memset(&call.st, 0, sizeof(call.st))
    call.st.format = call.format
    call.st.seed = seed
    call.st.nonnegative = nonnegative
    if streams is not None:
        stream_arr = np.ascontiguousarray(streams, dtype=np.uint64)
        if np.shape(stream_arr) != (n,):
            raise ValueError(f"streams: expected {n} values, got shape {np.shape(stream_arr)}")
        for i in range(n):
            call.streams[i] = <uint64_t>stream_arr[i]
        call.st.streams = call.streams
    cdef int want
    for i in range(n):
        f = formats[i]
        if f != FO_STATE_FULL and f != FO_STATE_BFLOAT16 and f != FO_STATE_INT8:
            raise ValueError(f"formats[{i}]: expected 0, 1 or 2, got {f!r}")
        if f == FO_STATE_BFLOAT16 and streams is None:
            raise ValueError("streams: bfloat16 state needs a Philox stream per tensor")
        call.format[i] = f
    for j in range(nstates):
        if not o.used_mask & (1 << j):
            continue
        col = states[j]
        mcol = absmax[j]
        if col is None or len(col) != n:
            raise ValueError(f"{o.state_names[j]}: expected {n} arrays, got "
                             f"{_validation.describe_value(col)}")
        call.st.state[j] = call.states + j * n
        call.st.absmax[j] = call.absmax + j * n
        for i in range(n):
            p = <cnp.ndarray>params[i]
            f = call.format[i]
            want = (typenum if f == FO_STATE_FULL else
                    cnp.NPY_UINT16 if f == FO_STATE_BFLOAT16 else cnp.NPY_UINT8)
            if not _owned_array(col[i], want, p, True):
                raise TypeError(f"{o.state_names[j]}[{i}]: expected a writeable C-contiguous "
                                f"{_TYPENAMES[want]} array of shape {np.shape(p)}, got "
                                f"{_validation.describe_value(col[i])}")
            call.states[j * n + i] = cnp.PyArray_DATA(<cnp.ndarray>col[i])
            call.absmax[j * n + i] = NULL
            if f == FO_STATE_INT8:
                if mcol is None or not _owned_array(mcol[i], cnp.NPY_FLOAT, p, False) \
                        or cnp.PyArray_SIZE(<cnp.ndarray>mcol[i]) \
                        != (cnp.PyArray_SIZE(p) + QBLOCK - 1) // QBLOCK:
                    raise TypeError(f"{o.state_names[j]}[{i}]: expected a writeable float32 "
                                    f"absmax array of {(np.size(p) + QBLOCK - 1) // QBLOCK} "
                                    "values")
                call.absmax[j * n + i] = <float *>cnp.PyArray_DATA(<cnp.ndarray>mcol[i])
    if steps is not None:
        if len(steps) != n or any(len(col) != n for col in reals):
            raise ValueError("steps: expected one counter per parameter")
        for i in range(n):
            a = _check_scalar(steps[i], i, cnp.NPY_INT64)
            call.steps[i] = (<int64_t *>cnp.PyArray_DATA(a))[0] + 1
            for r in range(nreal):
                a = _check_scalar(reals[r][i], i, cnp.NPY_DOUBLE)
                call.previous[r * n + i] = <double *>cnp.PyArray_DATA(a)
        call.counters = list(steps)
    elif nreal:
        raise ValueError("steps: real scalar state needs step counters")


_TYPENAMES = {cnp.NPY_FLOAT: "float32", cnp.NPY_DOUBLE: "float64", cnp.NPY_UINT16: "uint16",
              cnp.NPY_UINT8: "uint8"}
