# _bf16param.pxi — parameters stored as bfloat16 (numpy arrays of ml_dtypes.bfloat16),
# updated with float32 math (csrc/optim_bf16param.inc): the checks of such arrays and the
# step of an optimizer that holds any.
#
# ml_dtypes is never imported here: its dtype is recognised by its name and size, so a
# build or a user without ml_dtypes pays nothing.
#
# Uses: _boundary.pxi (checks, Batch, _check_disjoint), _optim.pxi (KernelOptions,
# fo_bf16_params) and _lowprec.pxi (LowprecCall, _bind_states).

#: How bfloat16 params are rounded after their float32 update (csrc/optim.h).
ROUND_STOCHASTIC, ROUND_NEAREST, ROUND_KAHAN = (FO_ROUND_STOCHASTIC, FO_ROUND_NEAREST,
                                               FO_ROUND_KAHAN)


cdef object _bf16_scalar_type = None   # ml_dtypes.bfloat16, once an array of it was seen


cdef inline bint _is_bf16(object a) noexcept:
    """Whether `a` is an array of ml_dtypes' bfloat16 (a 2-byte void-kind dtype so named;
    numpy's dtype.name is slow, so the scalar type of the first one is remembered)."""
    global _bf16_scalar_type
    if not cnp.PyArray_Check(a):
        return False
    d = (<cnp.ndarray>a).dtype
    if d.type is _bf16_scalar_type:
        return True
    if d.kind == "V" and d.itemsize == 2 and d.name == "bfloat16":
        _bf16_scalar_type = d.type
        return True
    return False


def is_bfloat16(a):
    """Whether `a` is a numpy array of ``ml_dtypes.bfloat16`` (never imports ml_dtypes)."""
    return _is_bf16(a)


cdef void _check_bf16_param(object a, str label) except *:
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{label}: expected a writeable array (it is updated in place), "
                         "got a read-only one")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr):
        raise ValueError(f"{label}: expected a C-contiguous, aligned array (it is updated in "
                         "place), got a non-contiguous one; pass np.ascontiguousarray(...) "
                         "and keep that copy")


def check_mixed_params(params, str name="params"):
    """check_params for a list that may hold bfloat16 arrays besides float32/float64 ones:
    every array writeable and C-contiguous, no two sharing memory."""
    ps, single = _as_list(params, name)
    if not ps:
        return ps
    if not any(_is_bf16(p) for p in ps):
        prepare([ps], (name,), (PARAM,), (single,))
        return ps
    cdef Py_ssize_t i
    for i in range(len(ps)):
        if _is_bf16(ps[i]):
            _check_bf16_param(ps[i], _label(name, i, single))
        elif not _array_ok(ps[i], PARAM, None):
            _check_array(ps[i], _label(name, i, single), PARAM, None, None)
    _check_disjoint([ps], (name,), (PARAM,), (single,), len(ps))
    return ps


cdef class Bf16ParamCall(LowprecCall):
    """One validated update of bfloat16 params (:func:`bf16param_prepare`)."""
    cdef fo_bf16_params bp
    cdef unsigned char *grad_bf16
    cdef uint64_t *param_streams
    cdef uint16_t **compensation
    cdef list keep_compensation

    def __dealloc__(self):
        free(self.grad_bf16)
        free(self.param_streams)
        free(self.compensation)

    cdef int launch(self, const int64_t *steps, const double *reals,
                    int nthreads) noexcept nogil:
        return self.o.run_bf16param(self.b, &self.bp, &self.st, steps, reals, nthreads)


def bf16param_prepare(KernelOptions o, list params, list grads, list formats, list states,
                      list absmax, list steps, list reals, streams, param_streams,
                      uint64_t seed, unsigned nonnegative, int rounding,
                      list compensation=None):
    """Validate one update of `o`'s family over bfloat16 `params` with `grads` (each
    bfloat16 or float32, the param's shape; copied when not contiguous), the states as
    :func:`lowprec_prepare` takes them (a full state is float32); returns the call that
    runs it. Nothing is modified until it runs.

    param_streams: per tensor the Philox stream (uint64) of the params' stochastic
    rounding; rounding: ROUND_STOCHASTIC, ROUND_NEAREST or ROUND_KAHAN (then
    `compensation`: per tensor a writeable C-contiguous uint16 array of the param's shape,
    the bfloat16 bits of its compensation, owned by the optimizer); seed seeds both
    roundings."""
    cdef Py_ssize_t n = len(params), i
    cdef cnp.ndarray p, g
    if n == 0:
        raise ValueError("params: expected at least one array, got none")
    if len(grads) != n:
        raise ValueError(f"grads: expected {n} arrays (one per entry of params), got "
                         f"{len(grads)}")
    if rounding != FO_ROUND_STOCHASTIC and rounding != FO_ROUND_NEAREST \
            and rounding != FO_ROUND_KAHAN:
        raise ValueError(f"rounding: expected {FO_ROUND_STOCHASTIC}, {FO_ROUND_NEAREST} or "
                         f"{FO_ROUND_KAHAN}, got {rounding}")
    if rounding == FO_ROUND_KAHAN and (compensation is None or len(compensation) != n):
        raise ValueError(f"compensation: expected {n} arrays for Kahan rounding")
    cols = [list(params), list(grads)]
    for i in range(n):
        if not _is_bf16(params[i]):
            raise TypeError(f"params[{i}]: expected a bfloat16 array, got "
                            f"{_validation.describe_value(params[i])}")
        _check_bf16_param(params[i], f"params[{i}]")
        p = <cnp.ndarray>params[i]
        if not isinstance(grads[i], np.ndarray):
            raise TypeError(f"grads[{i}]: expected a numpy array, got "
                            f"{_validation.describe_value(grads[i])}")
        g = <cnp.ndarray>grads[i]
        if not _is_bf16(g) and cnp.PyArray_TYPE(g) != cnp.NPY_FLOAT:
            raise TypeError(f"grads[{i}]: expected a bfloat16 or float32 array (params[{i}] "
                            f"is bfloat16), got dtype {g.dtype}")
        if not _same_shape(g, p):
            raise ValueError(f"grads[{i}]: expected shape {(<object>p).shape} (the shape of "
                             f"params[{i}]), got {(<object>g).shape}")
        if _needs_copy(g):
            cols[1][i] = _contiguous_copy(g)
    _check_disjoint(cols, ("params", "grads"), (PARAM, GRAD), (False, False), n)
    cdef Batch b = _new_batch(cnp.NPY_UINT16, n, 2)
    cdef Bf16ParamCall call = Bf16ParamCall.__new__(Bf16ParamCall)
    call.grad_bf16 = <unsigned char *>malloc(n + 1)
    call.param_streams = <uint64_t *>malloc((n + 1) * sizeof(uint64_t))
    call.compensation = <uint16_t **>malloc((n + 1) * sizeof(uint16_t *))
    if call.grad_bf16 == NULL or call.param_streams == NULL or call.compensation == NULL:
        raise MemoryError()
    if rounding == FO_ROUND_KAHAN:
        for i in range(n):
            if not _owned_array(compensation[i], cnp.NPY_UINT16, <cnp.ndarray>params[i], True):
                raise TypeError(f"compensation[{i}]: expected a writeable C-contiguous uint16 "
                                f"array of shape {np.shape(params[i])}, got "
                                f"{_validation.describe_value(compensation[i])}")
            call.compensation[i] = <uint16_t *>cnp.PyArray_DATA(<cnp.ndarray>compensation[i])
        call.keep_compensation = list(compensation)
    for i in range(n):
        p = <cnp.ndarray>cols[0][i]
        g = <cnp.ndarray>cols[1][i]
        b.offsets[i + 1] = b.offsets[i] + cnp.PyArray_SIZE(p)
        b.ptrs[i] = cnp.PyArray_DATA(p)
        b.ptrs[n + i] = cnp.PyArray_DATA(g)
        call.grad_bf16[i] = _is_bf16(g)
    b.keep = cols
    if rounding == FO_ROUND_STOCHASTIC:
        pstream = np.ascontiguousarray(param_streams, dtype=np.uint64)
        if np.shape(pstream) != (n,):
            raise ValueError(f"param_streams: expected {n} values, got shape "
                             f"{np.shape(pstream)}")
        for i in range(n):
            call.param_streams[i] = <uint64_t>pstream[i]
    _bind_states(call, o, b, cnp.NPY_FLOAT, params, formats, states, absmax, steps, reals,
                 streams, seed, nonnegative)
    call.bp.param = <uint16_t **>b.column(0)
    call.bp.grad = <const void **>b.column(1)
    call.bp.grad_bf16 = call.grad_bf16
    call.bp.streams = call.param_streams
    call.bp.seed = seed
    call.bp.rounding = rounding
    call.bp.compensation = call.compensation
    return call


def bfloat16_all_finite(list grads):
    """Whether every element of the bfloat16 arrays `grads` is finite (exponent bits not
    all set)."""
    for g in grads:
        bits = np.ascontiguousarray(g).view(np.uint16)
        if np.any((bits & 0x7f80) == 0x7f80):
            return False
    return True
