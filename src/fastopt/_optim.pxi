# _optim.pxi — what every optimizer family's boundary shares (the families themselves are
# generated from fastopt/optim/families.py into _families.pxi, which comes after this file).
#
# Uses: _boundary.pxi (prepare, Batch, _as_list, check_status, _last_threads_used) and
# _threads.pxi (current_threads).
#
#   * KernelOptions: the validated hyperparameters of one kernel call. Each family's
#     subclass (generated) holds its C options struct and runs its kernel on a Batch.
#   * _run_batches: the functional kernels' one C call per dtype.
#   * StepPlan: the pointer tables of an optimizer's params and state, validated once and
#     cached by fastopt.optim.Optimizer between steps, so that a step only checks and binds
#     the gradients (the short Python path of step()).
#   * all_finite, and the single-tensor layout of the .pxd entry points.

from cpython.object cimport PyObject
from cpython.pycapsule cimport PyCapsule_CheckExact
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from libc.stdlib cimport calloc
from libc.string cimport memset
from libc.stdint cimport uint16_t, uint64_t

cdef extern from *:
    """
    /* Whether array `a` still has the buffer a StepPlan recorded (no refcounting: the plan
     * holds a reference to `a`). */
    static int fo_same_buffer(PyObject *a, void *data, Py_ssize_t nbytes)
    {
        PyArrayObject *arr = (PyArrayObject *)a;
        return PyArray_DATA(arr) == data && PyArray_NBYTES(arr) == nbytes
               && PyArray_ISWRITEABLE(arr) && PyArray_IS_C_CONTIGUOUS(arr);
    }
    """
    bint fo_same_buffer(PyObject *a, void *data, Py_ssize_t nbytes) noexcept nogil

cdef extern from "optim.h" nogil:
    ctypedef struct fo_lowprec_states:
        const int *format
        void **state[3]
        float **absmax[3]
        const uint64_t *streams
        uint64_t seed
        unsigned nonnegative
    enum:
        FO_STATE_FULL
        FO_STATE_BFLOAT16
        FO_STATE_INT8
    ctypedef struct fo_bf16_params:
        uint16_t **param
        const void **grad
        const unsigned char *grad_bf16
        const uint64_t *streams
        uint64_t seed
        int rounding
        uint16_t **compensation
    enum:
        FO_ROUND_STOCHASTIC
        FO_ROUND_NEAREST
        FO_ROUND_KAHAN
    int fo_all_finite_f32(fo_layout *layout, const float **x, int *all_finite, int nthreads)
    int fo_all_finite_f64(fo_layout *layout, const double **x, int *all_finite, int nthreads)


# ---------------------------------------------------------------------------------------
# Validated options
# ---------------------------------------------------------------------------------------

cdef class KernelOptions:
    """The validated hyperparameters of one optimizer kernel call.

    Built by :func:`adam_options` and its siblings (one per family of
    fastopt.optim.families); ``state_names`` lists the state arrays the family's kernel
    takes (in argument order) and ``used`` says which of them this call reads and writes
    (e.g. ``max_exp_avg_sq`` only with amsgrad).
    """
    cdef int nstates
    cdef int used_mask
    cdef readonly str kernel
    cdef readonly tuple state_names

    @property
    def used(self):
        return tuple(bool(self.used_mask & (1 << k)) for k in range(self.nstates))

    cdef int run(self, Batch b, const int64_t *steps, const double *reals,
                 int nthreads) noexcept nogil:
        """Run the family's kernel on batch b (columns: param, grad, states...); steps and
        reals: per-tensor t and real scalars (NULL: the call's own). The C status."""
        return FO_ERR_ARGUMENT

    cdef int run_lowprec(self, Batch b, const fo_lowprec_states *st, const int64_t *steps,
                         const double *reals, int nthreads) noexcept nogil:
        """The same update with the state of each tensor in the format st.format[t]
        (_lowprec.pxi)."""
        return FO_ERR_ARGUMENT

    cdef int run_bf16param(self, Batch b, const fo_bf16_params *bp,
                           const fo_lowprec_states *st, const int64_t *steps,
                           const double *reals, int nthreads) noexcept nogil:
        """The same update of bfloat16 params (bp) in float32, b's layout and st's states
        (_bf16param.pxi)."""
        return FO_ERR_ARGUMENT

    cdef void advance_reals(self, const int64_t *t, double **previous, double *out,
                            Py_ssize_t count) noexcept:
        """The real scalars of this update from their previous values (scalar-major, count
        tensors each), for a family that keeps any."""
        pass


cdef inline void _init_options(KernelOptions o, str kernel, tuple state_names, int used_mask):
    o.kernel = kernel
    o.state_names = state_names
    o.nstates = len(state_names)
    o.used_mask = used_mask


cdef int64_t check_step(object step, str name="step") except -1:
    """The 1-based number of an update (an int in [1, 2**62]; fastopt._validation's rules)."""
    if type(step) is int and 1 <= <object>step <= (1 << 62):
        return <int64_t>step
    return <int64_t>_validation.check_int(step, name, 1, 1 << 62)


cdef void _run_batches(KernelOptions o, list batches) except *:
    """Run o's kernel on prepare()'s [float32, float64] batches, GIL released."""
    global _last_threads_used
    cdef Batch b
    cdef int status
    cdef int nthreads = current_threads()
    cdef int which
    for which in range(2):
        if batches[which] is None:
            continue
        b = <Batch>batches[which]
        with nogil:
            status = o.run(b, NULL, NULL, nthreads)
        _last_threads_used = b.layout.threads_used
        check_status(status, o.kernel)


cdef tuple _state_list(object x, str name, bint used, str why):
    """(list or None, single) for a state argument of a functional kernel: an array or a
    list of arrays (one per parameter). Required when `used`; when given but unused it is
    still checked (and the kernel leaves it alone)."""
    if x is None:
        if used:
            raise ValueError(f"{name}: expected an array or a list of arrays ({why}), "
                             "got None")
        return None, True
    return _as_list(x, name)


cdef inline int _one_tensor_layout(fo_layout *layout, int64_t *offsets, Py_ssize_t n,
                                   int nthreads) noexcept nogil:
    """The layout of one tensor of n elements (the .pxd entry points), and the thread
    count to use (nthreads <= 0: fastopt's current setting)."""
    offsets[0] = 0
    offsets[1] = n
    layout.count = 1
    layout.offsets = offsets
    layout.threads_used = 0
    return nthreads if nthreads > 0 else current_threads()


# ---------------------------------------------------------------------------------------
# the stale-array check of fastopt.optim.rebinding
# ---------------------------------------------------------------------------------------

def same_prefix(object container, list snapshot):
    """Whether `container` (a list, or any iterable such as a dict's values view) yields the
    very objects of `snapshot`, in order, over their common length: what
    ``all(map(operator.is_, container, snapshot))`` says, at one pointer comparison per
    entry for a list (the optimizers run it at every step, once per parameter).

    Examples
    --------
    >>> from fastopt._kernels import same_prefix
    >>> a, b = object(), object()
    >>> same_prefix([a, b], [a, b]), same_prefix([a, b, a], [a, b]), same_prefix([b], [a])
    (True, True, False)
    """
    cdef Py_ssize_t i, n = PyList_GET_SIZE(snapshot)
    if type(container) is list:
        if PyList_GET_SIZE(container) < n:
            n = PyList_GET_SIZE(container)
        for i in range(n):
            if PyList_GET_ITEM(container, i) != PyList_GET_ITEM(snapshot, i):
                return False
        return True
    i = 0
    for item in container:
        if i >= n:
            break
        if <void *>item != PyList_GET_ITEM(snapshot, i):
            return False
        i += 1
    return True


# ---------------------------------------------------------------------------------------
# all_finite
# ---------------------------------------------------------------------------------------

cdef bint _finite_batch(Batch b, int column) except -1:
    global _last_threads_used
    cdef int ok = 1, status
    cdef int nthreads = current_threads()
    with nogil:
        if b.typenum == cnp.NPY_FLOAT:
            status = fo_all_finite_f32(&b.layout, <const float **>b.column(column), &ok,
                                       nthreads)
        else:
            status = fo_all_finite_f64(&b.layout, <const double **>b.column(column), &ok,
                                       nthreads)
    _last_threads_used = b.layout.threads_used
    check_status(status, "all_finite")
    return ok != 0


def all_finite(x):
    """Whether every element of `x` (an array or a list of arrays) is finite.

    A parallel scan that stops early at the first NaN/Inf; float32/float64 arrays of any
    layout (non-contiguous ones are copied first). ``Optimizer.step(grads,
    skip_if_nonfinite=True)`` runs it on the gradients before updating anything.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.kernels import all_finite
    >>> all_finite([np.zeros(3, np.float32), np.array([1.0, np.inf])])
    False
    >>> all_finite(np.arange(4.0)[::2])
    True
    """
    xs, single = _as_list(x, "x")
    cdef list cols = [[], []]
    cdef cnp.ndarray a
    cdef Py_ssize_t i
    for i in range(len(xs)):
        obj = xs[i]
        if not _array_ok(obj, GRAD, None):
            _check_array(obj, _label("x", i, single), GRAD, None, None)
        a = <cnp.ndarray>obj
        if _needs_copy(a):
            a = <cnp.ndarray>_contiguous_copy(a)  # aligned, 0-d stays 0-d
        cols[0 if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT else 1].append(a)
    cdef int which
    cdef Batch b
    for which in range(2):
        if not cols[which]:
            continue
        b = _new_batch(cnp.NPY_FLOAT if which == 0 else cnp.NPY_DOUBLE, len(cols[which]), 1)
        for i in range(len(cols[which])):
            a = <cnp.ndarray>cols[which][i]
            b.offsets[i + 1] = b.offsets[i] + cnp.PyArray_SIZE(a)
            b.ptrs[i] = cnp.PyArray_DATA(a)
        b.keep = cols[which]
        if not _finite_batch(b, 0):
            return False
    return True


cdef int all_finite_f32(const float *x, Py_ssize_t n, int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef int ok = 0
    if n < 0:
        return -1
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    if fo_all_finite_f32(&layout, &x, &ok, nthreads) != FO_OK:
        return -1
    return ok


cdef int all_finite_f64(const double *x, Py_ssize_t n, int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef int ok = 0
    if n < 0:
        return -1
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    if fo_all_finite_f64(&layout, &x, &ok, nthreads) != FO_OK:
        return -1
    return ok


# ---------------------------------------------------------------------------------------
# StepPlan: cached pointer tables of an optimizer's params and state
# ---------------------------------------------------------------------------------------

cdef class _Scalars:
    """Per-tensor scalar state of one batch: pointers into the 0-d arrays of the optimizer's
    state (int64 step counters; float64 values such as NAdam's mu_product) and the values of
    this update passed to C (t = counter + 1, and each real scalar advanced by the family's
    rule), written back by StepPlan.advance once every unit has run."""
    cdef int64_t **steps
    cdef int64_t *values
    cdef double **reals        # nreals x count, scalar-major
    cdef double *real_values
    cdef Py_ssize_t count
    cdef int nreals

    def __dealloc__(self):
        free(self.steps)
        free(self.values)
        free(self.reals)
        free(self.real_values)


cdef _Scalars _new_scalars(Py_ssize_t count, int nreals):
    cdef _Scalars st = _Scalars.__new__(_Scalars)
    st.count, st.nreals = count, nreals
    st.steps = <int64_t **>malloc((count + 1) * sizeof(int64_t *))
    st.values = <int64_t *>malloc((count + 1) * sizeof(int64_t))
    st.reals = <double **>malloc((nreals * count + 1) * sizeof(double *))
    st.real_values = <double *>malloc((nreals * count + 1) * sizeof(double))
    if st.steps == NULL or st.values == NULL or st.reals == NULL or st.real_values == NULL:
        raise MemoryError()
    return st


# Every bind of every StepPlan gets a new serial (unique across plans): see StepPlan.step_again.
cdef Py_ssize_t _bind_serial = 0


cdef class StepPlan:
    """Validated pointer tables for the params and state of an optimizer, by unit.

    A unit is one kernel call's worth of tensors (a param group, or part of one): its
    params, its state columns (a list of arrays, or None for a column the call does not
    use) and optionally its scalar state: per-tensor step counters (0-d int64 arrays) and
    real scalars (lists of 0-d float64 arrays, e.g. NAdam's mu_product). Building a plan checks
    every array (dtype, shape, writeable, contiguous) and that no two written arrays of the
    whole optimizer overlap. A step then only needs :meth:`bind` (check the gradients and
    put their pointers in the tables), :meth:`all_finite` (optional), :meth:`run` per unit
    and :meth:`advance` (add 1 to the step counters of every tensor and store the real
    scalars the run computed). A caller that knows its gradients are the very arrays of
    the last bind may skip it: :meth:`step_again`.
    """
    cdef list units          # per unit: list [b32 or None, b64 or None]
    cdef list unit_steps     # per unit: [_Scalars or None, _Scalars or None]
    cdef list unit_masks     # per unit: int bit mask of the state columns present
    cdef list unit_params    # per unit: the params list (copied)
    cdef list unit_ncols     # per unit: number of state columns
    cdef list keep           # references that keep every pointer valid
    cdef list grad_keep      # contiguous copies of grads bound for the current step
    cdef readonly Py_ssize_t total   # number of params (= gradients bind() expects)
    cdef Py_ssize_t nwritten
    # per gradient slot (length total):
    cdef PyObject **slot_param   # borrowed: the param this gradient belongs to
    cdef void ***slot_ptr        # where in a batch table its pointer goes
    cdef void **slot_data        # the param's data pointer and size when the plan was built
    cdef Py_ssize_t *slot_size
    cdef Py_ssize_t *slot_hint    # its grad's place among the written spans at the last bind
    # every written array (params, states): data and size, for the overlap checks
    cdef void **w_data
    cdef Py_ssize_t *w_size
    # written spans sorted by start, for the gradient overlap check:
    cdef uintptr_t *s_start
    cdef uintptr_t *s_end
    cdef Py_ssize_t nspans
    cdef bint bound
    #: the serial of the last bind (0: none yet); unique across plans
    cdef readonly Py_ssize_t serial
    cdef bint reusable   # the last bind succeeded with numpy arrays only, none copied

    def __dealloc__(self):
        free(self.slot_param)
        free(self.slot_ptr)
        free(self.slot_data)
        free(self.slot_size)
        free(self.slot_hint)
        free(self.w_data)
        free(self.w_size)
        free(self.s_start)
        free(self.s_end)

    def __init__(self, list units, list names=None):
        """units: list of (params, state_columns, steps, reals); names: state names per
        unit (for messages). steps: None or one 0-d int64 counter per param; reals: None or
        a list of such lists of 0-d float64 arrays, one list per real scalar."""
        cdef Py_ssize_t total = 0, nwritten = 0, i, k, j, u
        cdef int which, c, ncols
        cdef cnp.ndarray p, a
        cdef Batch b
        cdef _Scalars st
        cdef int r, nreals
        if self.slot_param != NULL:
            raise RuntimeError("StepPlan: already initialised")
        self.units, self.unit_steps, self.unit_masks, self.unit_params = [], [], [], []
        self.unit_ncols = []
        self.keep, self.grad_keep = [], []
        for unit in units:
            params, columns = unit[0], unit[1]
            total += len(params)
            nwritten += len(params) + sum(len(params) for col in columns if col is not None)
        self.total = total
        self.nwritten = nwritten
        self.slot_param = <PyObject **>malloc((total + 1) * sizeof(PyObject *))
        self.slot_ptr = <void ***>malloc((total + 1) * sizeof(void **))
        self.slot_data = <void **>malloc((total + 1) * sizeof(void *))
        self.slot_size = <Py_ssize_t *>malloc((total + 1) * sizeof(Py_ssize_t))
        self.slot_hint = <Py_ssize_t *>calloc(total + 1, sizeof(Py_ssize_t))
        self.w_data = <void **>malloc((nwritten + 1) * sizeof(void *))
        self.w_size = <Py_ssize_t *>malloc((nwritten + 1) * sizeof(Py_ssize_t))
        if (self.slot_param == NULL or self.slot_ptr == NULL or self.slot_data == NULL
                or self.slot_size == NULL or self.slot_hint == NULL or self.w_data == NULL
                or self.w_size == NULL):
            raise MemoryError()
        cdef Py_ssize_t slot = 0, w = 0
        cdef int mask
        for u in range(len(units)):
            params, columns, steps, reals = units[u]
            params = list(params)
            reals = [] if reals is None else [list(col) for col in reals]
            nreals = len(reals)
            columns = [None if col is None else list(col) for col in columns]
            ncols = 2 + len(columns)
            unit_names = (names[u] if names is not None
                          else tuple(f"state{c}" for c in range(len(columns))))
            # Validate (dtype, shape, flags, overlap inside the unit) and build the tables.
            batches = prepare([params, None] + columns,
                              ("params", "grads") + tuple(unit_names),
                              (PARAM, GRAD) + (STATE,) * len(columns),
                              (False,) * ncols)
            mask = 0
            for c in range(len(columns)):
                if columns[c] is not None:
                    mask |= 1 << c
            # Map each param of the unit to its batch slot, and its scalar state.
            stepobjs = [None, None]
            counters = [0, 0]
            if steps is not None:
                steps = list(steps)
                if len(steps) != len(params) or any(len(col) != len(params) for col in reals):
                    raise ValueError("steps: expected one counter per parameter")
                for which in range(2):
                    if batches[which] is not None:
                        stepobjs[which] = _new_scalars((<Batch>batches[which]).count, nreals)
            elif nreals:
                raise ValueError("steps: real scalar state needs step counters")
            for i in range(len(params)):
                p = <cnp.ndarray>params[i]
                which = 0 if cnp.PyArray_TYPE(p) == cnp.NPY_FLOAT else 1
                b = <Batch>batches[which]
                j = counters[which]
                counters[which] += 1
                self.slot_param[slot] = <PyObject *>p
                self.slot_ptr[slot] = b.ptrs + 1 * b.count + j
                self.slot_data[slot] = cnp.PyArray_DATA(p)
                self.slot_size[slot] = cnp.PyArray_NBYTES(p)
                slot += 1
                if steps is not None:
                    st = <_Scalars>stepobjs[which]
                    a = _check_scalar(steps[i], i, cnp.NPY_INT64)
                    st.steps[j] = <int64_t *>cnp.PyArray_DATA(a)
                    for r in range(nreals):
                        a = _check_scalar(reals[r][i], i, cnp.NPY_DOUBLE)
                        st.reals[r * st.count + j] = <double *>cnp.PyArray_DATA(a)
                # written arrays of this param
                self._add_written(w, p)
                w += 1
                for c in range(len(columns)):
                    if columns[c] is not None:
                        self._add_written(w, <cnp.ndarray>columns[c][i])
                        w += 1
            self.units.append(batches)
            self.unit_steps.append(stepobjs)
            self.unit_masks.append(mask)
            self.unit_params.append(params)
            self.unit_ncols.append(len(columns))
            self.keep.append((params, columns, steps, reals))
        self._index_written_spans()
        self.bound = False

    cdef void _add_written(self, Py_ssize_t w, cnp.ndarray a):
        self.w_data[w] = cnp.PyArray_DATA(a)
        self.w_size[w] = cnp.PyArray_NBYTES(a)

    cdef void _index_written_spans(self) except *:
        cdef Py_ssize_t i, m = 0
        cdef Span *spans = <Span *>malloc((2 * self.nwritten + 1) * sizeof(Span))
        if spans == NULL:
            raise MemoryError()
        try:
            for i in range(self.nwritten):
                if self.w_size[i] == 0:
                    continue
                spans[m].start = <uintptr_t>self.w_data[i]
                spans[m].end = spans[m].start + <uintptr_t>self.w_size[i]
                spans[m].written = 1
                spans[m].column = 0
                spans[m].index = i
                m += 1
            _sort_spans(spans, spans + self.nwritten, m)
            for i in range(1, m):
                if spans[i].start < spans[i - 1].end:
                    raise ValueError("params: two parameters or state arrays of this optimizer "
                                     "share memory; pass separate arrays")
            self.s_start = <uintptr_t *>malloc((m + 1) * sizeof(uintptr_t))
            self.s_end = <uintptr_t *>malloc((m + 1) * sizeof(uintptr_t))
            if self.s_start == NULL or self.s_end == NULL:
                raise MemoryError()
            for i in range(m):
                self.s_start[i] = spans[i].start
                self.s_end[i] = spans[i].end
            self.nspans = m
        finally:
            free(spans)

    cdef bint _overlaps_written(self, Py_ssize_t slot, uintptr_t start,
                                uintptr_t end) noexcept nogil:
        """Whether [start, end) overlaps any written span. The place found (the first span
        whose end exceeds start) is kept per gradient slot and tried first at the next bind:
        a gradient at the same address (retained between steps) costs two loads. Else a
        binary search on the sorted spans, with branches, not branchless: grads usually
        come in address order, which the branch predictor follows, and a branchless search
        waits on each of its loads (measured with 500 tiny tensors: its share of a step
        doubled)."""
        cdef Py_ssize_t lo = self.slot_hint[slot], hi = self.nspans, mid
        if start >= end:
            return False
        if not (lo <= hi and (lo == 0 or self.s_end[lo - 1] <= start)
                and (lo == hi or self.s_end[lo] > start)):
            lo = 0
            while lo < hi:
                mid = (lo + hi) // 2
                if self.s_end[mid] <= start:
                    lo = mid + 1
                else:
                    hi = mid
            self.slot_hint[slot] = lo
        return lo < self.nspans and self.s_start[lo] < end

    def matches(self, list groups, list options):
        """Whether this plan still describes `groups` (one unit per group, same param objects
        in the same order, with unchanged buffers and flags) with the state columns that
        `options` (one KernelOptions per group) use."""
        cdef Py_ssize_t k, i, n
        cdef list params, mine
        if len(groups) != len(self.units) or len(options) != len(self.units):
            return False
        for k in range(len(groups)):
            params = groups[k]["params"]
            mine = <list>self.unit_params[k]
            n = PyList_GET_SIZE(mine)
            if type(params) is not list or PyList_GET_SIZE(params) != n:
                return False
            for i in range(n):
                if PyList_GET_ITEM(params, i) != PyList_GET_ITEM(mine, i):
                    return False
            if (<KernelOptions>options[k]).used_mask != <int>self.unit_masks[k]:
                return False
        # Params: still the same buffers, writeable and contiguous. (State arrays belong to
        # the optimizer, whose tracked dicts bump its version when one is replaced; their
        # objects are not touched here, which would cost a cache miss each.)
        for i in range(self.total):
            if not fo_same_buffer(self.slot_param[i], self.slot_data[i], self.slot_size[i]):
                return False
        return True

    cpdef bint bind(self, list grads, list indices=None) except -1:
        """Check the gradients (one per param, in unit order) and put their pointers in the
        tables. Returns False, binding nothing, if an entry is None. Raises TypeError /
        ValueError naming ``grads[i]`` (i from `indices` when given) for a bad one. An entry
        may also be a DLPack capsule of a CPU tensor, or a torch tensor once
        use_torch_exchange_api was called (fastopt.torch): it is checked as an array that is
        not copied and DLPackUnfit is raised if it does not fit."""
        cdef Py_ssize_t i, n = self.total
        cdef char *data
        cdef object g
        cdef cnp.ndarray a, p
        cdef uintptr_t start
        cdef bint plain = True  # numpy arrays only, none copied (step_again may reuse)
        global _bind_serial
        _bind_serial += 1
        self.serial = _bind_serial
        self.reusable = False
        if PyList_GET_SIZE(grads) != n:
            raise ValueError(f"grads: expected {n} gradients (one per parameter), "
                             f"got {len(grads)}")
        self.grad_keep = []
        for i in range(n):
            g = <object>PyList_GET_ITEM(grads, i)
            if g is None:
                return False
        for i in range(n):
            g = <object>PyList_GET_ITEM(grads, i)
            p = <cnp.ndarray>self.slot_param[i]
            if PyCapsule_CheckExact(g) or (not cnp.PyArray_Check(g) and _is_torch_tensor(g)):
                # fastopt.torch's new gradients, capsules or tensors (_dlpack.pxi)
                data = (_dlpack_data(g, p, i, i if indices is None else indices[i])
                        if PyCapsule_CheckExact(g) else
                        _torch_data(g, p, i, i if indices is None else indices[i]))
                start = <uintptr_t>data
                if self._overlaps_written(i, start, start + <uintptr_t>cnp.PyArray_NBYTES(p)):
                    raise ValueError(
                        f"grads[{i if indices is None else indices[i]}]: shares memory with a "
                        "parameter or state array of this optimizer, which the step updates "
                        "in place; pass a separate tensor (e.g. g.clone())")
                self.slot_ptr[i][0] = data
                plain = False
                continue
            if (not cnp.PyArray_Check(g) or cnp.PyArray_TYPE(<cnp.ndarray>g) != cnp.PyArray_TYPE(p)
                    or not _same_shape(<cnp.ndarray>g, p)):
                _check_array(g, f"grads[{i if indices is None else indices[i]}]", GRAD, p,
                             f"params[{i if indices is None else indices[i]}]")
            a = <cnp.ndarray>g
            if _needs_copy(a):
                a = <cnp.ndarray>_contiguous_copy(a)  # aligned, 0-d stays 0-d
                self.grad_keep.append(a)
                plain = False
            start = <uintptr_t>cnp.PyArray_DATA(a)
            if self._overlaps_written(i, start, start + <uintptr_t>cnp.PyArray_NBYTES(a)):
                raise ValueError(
                    f"grads[{i if indices is None else indices[i]}]: shares memory with a "
                    "parameter or state array of this optimizer, which the step updates in "
                    "place; pass a separate array (e.g. g.copy())")
            self.slot_ptr[i][0] = cnp.PyArray_DATA(a)
        self.grad_keep.append(grads)
        self.bound = True
        self.reusable = plain
        return True

    def all_finite(self):
        """Whether every bound gradient is finite (one parallel scan per unit and dtype)."""
        if not self.bound:
            raise RuntimeError("StepPlan.all_finite: no gradients bound")
        cdef Py_ssize_t u
        cdef int which
        for u in range(len(self.units)):
            for which in range(2):
                b = (<list>self.units[u])[which]
                if b is not None and not _finite_batch(<Batch>b, 1):
                    return False
        return True

    cpdef run(self, Py_ssize_t u, KernelOptions o):
        """Run o's kernel over unit u with the bound gradients (GIL released). Each tensor
        with scalar state gets t = counter + 1 and its real scalars advanced by o's rule;
        the stored values change only in :meth:`advance`."""
        global _last_threads_used
        if not self.bound:
            raise RuntimeError("StepPlan.run: no gradients bound")
        if o.used_mask != <int>self.unit_masks[u] or o.nstates != <int>self.unit_ncols[u]:
            raise ValueError(f"{o.kernel}: the options use other state arrays than this "
                             "plan holds")
        cdef int which, status
        cdef Py_ssize_t j
        cdef Batch b
        cdef _Scalars st
        cdef const int64_t *steps
        cdef const double *reals
        cdef int nthreads = current_threads()
        cdef list batches = <list>self.units[u]
        cdef list stepobjs = <list>self.unit_steps[u]
        for which in range(2):
            if batches[which] is None:
                continue
            b = <Batch>batches[which]
            steps, reals = NULL, NULL
            if stepobjs[which] is not None:
                st = <_Scalars>stepobjs[which]
                for j in range(st.count):
                    st.values[j] = st.steps[j][0] + 1
                steps = st.values
                if st.nreals:
                    o.advance_reals(st.values, st.reals, st.real_values, st.count)
                    reals = st.real_values
            with nogil:
                status = o.run(b, steps, reals, nthreads)
            _last_threads_used = b.layout.threads_used
            check_status(status, o.kernel)

    cpdef advance(self):
        """Add 1 to the step counter of every tensor of the plan, store the real scalars
        the last run computed, and drop the bound grads."""
        cdef Py_ssize_t u, j
        cdef int which
        cdef _Scalars st
        for u in range(len(self.unit_steps)):
            for which in range(2):
                obj = (<list>self.unit_steps[u])[which]
                if obj is not None:
                    st = <_Scalars>obj
                    for j in range(st.count):
                        st.steps[j][0] += 1
                    for j in range(st.nreals * st.count):
                        st.reals[j][0] = st.real_values[j]
        self.release()

    cpdef release(self):
        """Drop the references to this step's gradients."""
        self.grad_keep = []
        self.bound = False

    cpdef run_all(self, list unit_groups, list options):
        """:meth:`run` every unit u with ``options[unit_groups[u]]``, then :meth:`advance`;
        the grads are released whatever happens."""
        cdef Py_ssize_t u
        try:
            for u in range(PyList_GET_SIZE(unit_groups)):
                self.run(u, <KernelOptions?>options[<Py_ssize_t>unit_groups[u]])
            self.advance()
        finally:
            self.release()

    def step(self, list grads, list unit_groups, list options):
        """One whole step in one call: :meth:`bind` `grads`, then :meth:`run_all`. Returns
        False, running nothing, when bind does (an entry is None)."""
        if not self.bind(grads):
            return False
        self.run_all(unit_groups, options)
        return True

    cpdef bint step_again(self, list grads, Py_ssize_t serial, list unit_groups,
                          list options) except -1:
        """:meth:`run_all` with the pointers of the bind whose :attr:`serial` was `serial`,
        without binding again; `grads` (kept alive until the run ends) must be that bind's
        list or one holding the same arrays, unchanged since (their memory, shape and
        dtype) -- the caller's guarantee, as fastopt.torch's for the numpy views it retains.
        Returns False, running nothing, when another bind came since, or that bind failed,
        held an entry that was not a numpy array, or copied one (its copy is gone)."""
        if serial == 0 or serial != self.serial or not self.reusable \
                or PyList_GET_SIZE(grads) != self.total:
            return False
        self.grad_keep = [grads]
        self.bound = True
        self.run_all(unit_groups, options)
        return True


cdef cnp.ndarray _check_scalar(object a, Py_ssize_t i, int typenum):
    """A per-parameter scalar of the optimizer's state: a writeable 0-d array of `typenum`."""
    if (not isinstance(a, np.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray>a) != typenum
            or cnp.PyArray_SIZE(<cnp.ndarray>a) != 1 or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>a)
            or not cnp.PyArray_ISBEHAVED(<cnp.ndarray>a) or not a.dtype.isnative):
        kind = "int64" if typenum == cnp.NPY_INT64 else "float64"
        raise TypeError(f"state[{i}]: expected a writeable 0-d {kind} array, got "
                        f"{_validation.describe_value(a)}")
    return <cnp.ndarray>a
