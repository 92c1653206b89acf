# _boundary.pxi — argument checking shared by every wrapper, and the pointer tables that
# carry a list of arrays into one multi-tensor C call. The first include of _kernels.pyx:
# it uses nothing from the others.
#
# The rules (DEVELOPING.md, "The boundary"): float32/float64 numpy arrays; a param and its
# grad/state share dtype and shape; params and states are writeable, aligned, C-contiguous
# and in native byte order; a grad that is not is copied; no written array may share memory
# with any other array of the call; everything is checked before anything is modified.

from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from libc.math cimport isfinite
from cpython.float cimport PyFloat_AS_DOUBLE

cimport numpy as cnp
import numpy as np

cnp.import_array()

from fastopt import _validation  # the rules and messages of every scalar check

cdef extern from "fastopt.h" nogil:
    ctypedef struct fo_layout:
        int64_t count
        const int64_t *offsets
        int threads_used
    enum:
        FO_OK
        FO_ERR_ARGUMENT
        FO_ERR_NOMEM

# Roles of the arrays of one call.
cdef enum Role:
    PARAM = 0   # updated in place: writeable, contiguous; defines dtype and shape
    GRAD = 1    # read only: copied when not contiguous/aligned/native
    STATE = 2   # updated in place, like PARAM, must match its param

cdef int _last_threads_used = 0


def last_threads_used():
    """Size of the thread team the most recent kernel call ran with (a diagnostic).

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.kernels import all_finite, last_threads_used
    >>> all_finite(np.ones(8))
    True
    >>> last_threads_used()          # 8 elements are below the serial threshold
    1
    """
    return _last_threads_used


cdef inline str _dtype_name(object a):
    return str(a.dtype) if isinstance(a, np.ndarray) else type(a).__name__


cdef inline str _label(str name, Py_ssize_t i, bint single):
    return name if single else f"{name}[{i}]"


cdef object _as_list(object x, str name):
    """(list, was_single): a single ndarray becomes a one-element list."""
    if isinstance(x, np.ndarray):
        return [x], True
    if isinstance(x, (list, tuple)):
        return list(x), False
    raise TypeError(f"{name}: expected a numpy array or a list of numpy arrays, got "
                    f"{_validation.describe_value(x)}")


cdef void _check_array(object a, str label, int role, cnp.ndarray ref, str ref_label) except *:
    """Raise TypeError/ValueError if array `a` cannot play `role` next to param `ref`."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{label}: expected a numpy array, got {_validation.describe_value(a)}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    if ref is None:
        if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
            raise TypeError(f"{label}: expected a float32 or float64 array, got dtype {arr.dtype}")
    else:
        if t != cnp.PyArray_TYPE(ref):
            raise TypeError(f"{label}: expected dtype {ref.dtype} (the dtype of {ref_label}), "
                            f"got {arr.dtype}")
        if not _same_shape(arr, ref):
            raise ValueError(f"{label}: expected shape {(<object>ref).shape} (the shape of "
                             f"{ref_label}), got {(<object>arr).shape}")
    if role == GRAD:
        return
    if not cnp.PyArray_ISNOTSWAPPED(arr):
        raise TypeError(f"{label}: expected native byte order, got dtype {arr.dtype.str}")
    if not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{label}: expected a writeable array (it is updated in place), "
                         "got a read-only one")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr):
        raise ValueError(f"{label}: expected a C-contiguous, aligned array (it is updated in "
                         "place), got a non-contiguous one; pass np.ascontiguousarray(...) "
                         "and keep that copy")


cdef inline bint _array_ok(object a, int role, cnp.ndarray ref) noexcept:
    """Whether _check_array(a, ..., role, ref, ...) would pass (no labels built, no raise):
    the fast path; _check_array runs only to produce the message when this is False."""
    if not cnp.PyArray_Check(a):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    if ref is None:
        if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
            return False
    elif t != cnp.PyArray_TYPE(ref) or not _same_shape(arr, ref):
        return False
    if role == GRAD:
        return True
    return (cnp.PyArray_ISNOTSWAPPED(arr) and cnp.PyArray_ISWRITEABLE(arr)
            and cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr))


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b) noexcept:
    cdef int k, nd = cnp.PyArray_NDIM(a)
    if nd != cnp.PyArray_NDIM(b):
        return False
    for k in range(nd):
        if cnp.PyArray_DIMS(a)[k] != cnp.PyArray_DIMS(b)[k]:
            return False
    return True


cdef inline bint _needs_copy(cnp.ndarray arr):
    return not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)
                and cnp.PyArray_ISNOTSWAPPED(arr))


cdef inline object _contiguous_copy(cnp.ndarray arr):
    """A C-contiguous, aligned, native-order copy with the same shape (0-d stays 0-d, which
    np.ascontiguousarray would turn into shape (1,))."""
    return np.array(arr, dtype=arr.dtype.newbyteorder("="), order="C", copy=True)


ctypedef struct Span:
    uintptr_t start
    uintptr_t end
    int written
    int column
    Py_ssize_t index


cdef void _sort_spans(Span *spans, Span *spare, Py_ssize_t m) noexcept nogil:
    """Sort spans by start: a stable radix sort on the address bytes, skipping the bytes
    every start shares (the top two always, most others for a few MB of arrays). qsort took
    half the checking time of a 1,500-array call (500 tensors with grad and state), which
    is longer than the OpenMP team spins before it sleeps."""
    cdef Py_ssize_t counts[256]
    cdef Py_ssize_t i, j, total, here
    cdef int shift, digit, bits = <int>(8 * sizeof(uintptr_t))
    cdef uintptr_t any_set = 0, all_set = <uintptr_t>-1
    cdef Span *src = spans
    cdef Span *dst = spare
    cdef Span *swap
    cdef Span moving
    if m <= 32:  # a few arrays: an insertion sort, no 2 KB of counts to clear per byte
        for i in range(1, m):
            moving = spans[i]
            j = i
            while j > 0 and spans[j - 1].start > moving.start:
                spans[j] = spans[j - 1]
                j -= 1
            spans[j] = moving
        return
    for i in range(m):
        any_set |= spans[i].start
        all_set &= spans[i].start
    for shift in range(0, bits, 8):
        if ((any_set ^ all_set) >> shift) & 0xFF == 0:
            continue  # every start has this byte: the order does not depend on it
        memset(counts, 0, sizeof(counts))
        for i in range(m):
            counts[(src[i].start >> shift) & 0xFF] += 1
        total = 0
        for digit in range(256):
            here = counts[digit]
            counts[digit] = total
            total += here
        for i in range(m):
            digit = (src[i].start >> shift) & 0xFF
            dst[counts[digit]] = src[i]
            counts[digit] += 1
        swap = src
        src = dst
        dst = swap
    if src != spans:
        memcpy(spans, src, m * sizeof(Span))


cdef class Batch:
    """Validated arrays of one dtype for one multi-tensor C call.

    `column(k)` is a C array of `count` data pointers for argument k (NULL for an absent
    argument); `layout` describes the element counts. Holds references to every array
    (and to contiguous copies of grads) so the pointers stay valid during the call.
    """
    cdef fo_layout layout
    cdef int64_t *offsets
    cdef void **ptrs
    cdef readonly Py_ssize_t count
    cdef readonly int ncolumns
    cdef readonly int typenum
    cdef list keep

    def __dealloc__(self):
        free(self.offsets)
        free(self.ptrs)

    cdef inline void **column(self, int k) noexcept nogil:
        return self.ptrs + k * self.count

    cdef inline int64_t total(self) noexcept nogil:
        return self.offsets[self.count]


cdef Batch _new_batch(int typenum, Py_ssize_t count, int ncolumns):
    cdef Batch b = Batch.__new__(Batch)
    b.typenum = typenum
    b.count = count
    b.ncolumns = ncolumns
    b.keep = []
    b.offsets = <int64_t *>malloc((count + 1) * sizeof(int64_t))
    b.ptrs = <void **>malloc((count * ncolumns + 1) * sizeof(void *))
    if b.offsets == NULL or b.ptrs == NULL:
        raise MemoryError()
    b.offsets[0] = 0
    b.layout.count = count
    b.layout.offsets = b.offsets
    b.layout.threads_used = 0
    return b


cdef list prepare(list columns, tuple names, tuple roles, tuple singles):
    """Validate a multi-tensor call and build one Batch per dtype present.

    columns[k] is the list of arrays for argument k (columns[0] are the params) or None
    when the argument is absent; names/roles/singles describe each column. Returns
    [batch_float32 or None, batch_float64 or None]; raises before anything is modified.
    """
    cdef Py_ssize_t n = len(<list>columns[0])
    cdef int ncol = len(columns), k
    cdef Py_ssize_t i
    cdef cnp.ndarray p, a
    cdef list col
    for k in range(1, ncol):
        if columns[k] is not None and len(<list>columns[k]) != n:
            raise ValueError(f"{names[k]}: expected {n} arrays (one per entry of {names[0]}), "
                             f"got {len(<list>columns[k])}")
    # Check every array and replace grads that C cannot read directly by contiguous copies.
    if ncol > 8:
        raise ValueError("prepare: at most 8 columns")
    cdef int role[8]
    for k in range(ncol):
        role[k] = roles[k]
    cdef list cols = [None if c is None else list(c) for c in columns]
    cdef list first = <list>cols[0]
    cdef object item
    cdef Py_ssize_t n32 = 0, n64 = 0
    for i in range(n):
        item = <object>PyList_GET_ITEM(first, i)
        if not _array_ok(item, role[0], None):  # labels are built only for a message
            _check_array(item, _label(names[0], i, singles[0]), role[0], None, None)
        p = <cnp.ndarray>item
        if role[0] == GRAD and _needs_copy(p):  # a read-only first column (e.g. norms)
            p = <cnp.ndarray>_contiguous_copy(p)
            first[i] = p
        if cnp.PyArray_TYPE(p) == cnp.NPY_FLOAT:
            n32 += 1
        else:
            n64 += 1
        for k in range(1, ncol):
            if cols[k] is None:
                continue
            col = <list>cols[k]
            item = <object>PyList_GET_ITEM(col, i)
            if not _array_ok(item, role[k], p):
                _check_array(item, _label(names[k], i, singles[k]), role[k], p,
                             _label(names[0], i, singles[0]))
            if role[k] == GRAD and _needs_copy(<cnp.ndarray>item):
                col[i] = _contiguous_copy(<cnp.ndarray>item)
    _check_disjoint(cols, names, roles, singles, n)
    # Pointer tables, one per dtype.
    cdef list out = [None, None]
    cdef Batch b
    cdef Py_ssize_t j, cnt
    cdef int which, typenum
    for which in range(2):
        typenum = cnp.NPY_FLOAT if which == 0 else cnp.NPY_DOUBLE
        cnt = n32 if which == 0 else n64
        if cnt == 0:
            continue
        b = _new_batch(typenum, cnt, ncol)
        j = 0
        for i in range(n):
            p = <cnp.ndarray>PyList_GET_ITEM(first, i)
            if cnp.PyArray_TYPE(p) != typenum:
                continue
            b.offsets[j + 1] = b.offsets[j] + cnp.PyArray_SIZE(p)
            for k in range(ncol):
                if cols[k] is None:
                    b.ptrs[k * cnt + j] = NULL
                else:
                    b.ptrs[k * cnt + j] = cnp.PyArray_DATA(
                        <cnp.ndarray>PyList_GET_ITEM(<list>cols[k], i))
            j += 1
        b.keep = cols
        out[which] = b
    return out


cdef void _check_disjoint(list cols, tuple names, tuple roles, tuple singles,
                          Py_ssize_t n) except *:
    """Refuse any overlap between an array that is written and any other array.

    None entries (absent arrays) are skipped. The message names both arrays, starting with
    the one of the later argument (a grad or state clashing with its param names the grad
    or state: the param is the reference the others are checked against).
    """
    cdef int ncol = len(cols), k
    cdef Py_ssize_t i, m = 0, total = n * ncol
    cdef cnp.ndarray a
    cdef object item, col
    cdef bint written
    cdef Span *spans = <Span *>malloc((2 * total + 1) * sizeof(Span))  # and the sort's spare
    if spans == NULL:
        raise MemoryError()
    cdef uintptr_t reach_any = 0, reach_written = 0
    cdef Py_ssize_t any_at = -1, written_at = -1, partner = -1
    cdef Span s, o
    cdef int clash_col = -1, other_col = -1
    cdef Py_ssize_t clash_idx = -1, other_idx = -1
    try:
        for k in range(ncol):
            col = cols[k]
            if col is None:
                continue
            written = roles[k] != GRAD
            for i in range(n):
                item = <object>PyList_GET_ITEM(col, i)
                if item is None:
                    continue
                a = <cnp.ndarray>item
                if cnp.PyArray_NBYTES(a) == 0:
                    continue
                spans[m].start = <uintptr_t>cnp.PyArray_DATA(a)
                spans[m].end = spans[m].start + <uintptr_t>cnp.PyArray_NBYTES(a)
                spans[m].written = written
                spans[m].column = k
                spans[m].index = i
                m += 1
        _sort_spans(spans, spans + total, m)
        # Sorted by start: span i overlaps an earlier one iff start < the furthest earlier end
        # (and the span reaching that end is one it overlaps).
        for i in range(m):
            s = spans[i]
            if s.start < reach_written:
                partner = written_at
            elif s.written and s.start < reach_any:
                partner = any_at
            if partner >= 0:
                o = spans[partner]
                if (o.column, o.index) > (s.column, s.index):
                    s, o = o, s
                clash_col, clash_idx, other_col, other_idx = s.column, s.index, o.column, o.index
                break
            if s.end > reach_any:
                reach_any, any_at = s.end, i
            if s.written and s.end > reach_written:
                reach_written, written_at = s.end, i
    finally:
        free(spans)
    if clash_col >= 0:
        raise ValueError(
            f"{_label(names[clash_col], clash_idx, singles[clash_col])}: shares memory with "
            f"{_label(names[other_col], other_idx, singles[other_col])}, and one of them is "
            "updated in place; pass separate arrays (e.g. g.copy())")


cdef double to_double(object value, str name) except? -1.0:
    """Any real number (not a bool; NaN and +-inf included) as a double; ints beyond its
    range become +-inf. The rules are fastopt._validation's (0-d arrays count as their
    scalar)."""
    if type(value) is float:
        return PyFloat_AS_DOUBLE(value)
    return _validation.check_real(value, name, allow_inf=True, allow_nan=True)


cdef double check_real(object value, str name, double low=-np.inf, double high=np.inf,
                       bint low_open=False, bint high_open=False,
                       bint finite=False) except? -1.0:
    """Return `value` as a double, or raise TypeError/ValueError naming `name`.

    A float inside its range takes the fast path; everything else (other types, and every
    error) goes through fastopt._validation.check_real, the one statement of the rules and
    messages. With finite=True, +-inf is refused too (an int too large for a double counts
    as inf).
    """
    cdef double v
    if type(value) is float:  # the common case first: no isinstance chain
        v = PyFloat_AS_DOUBLE(value)
        if (v == v and (isfinite(v) or not finite) and low <= v <= high
                and not (low_open and v == low) and not (high_open and v == high)):
            return v
    if low_open and high_open:
        closed = "neither"
    elif low_open:
        closed = "right"
    elif high_open:
        closed = "left"
    else:
        closed = "both"
    return _validation.check_real(value, name, low, high, closed=closed, allow_inf=not finite)


cdef bint check_bool(object value, str name) except -1:
    if value is True or value is False:
        return value is True
    return _validation.check_bool(value, name)


cdef int check_status(int status, str where) except -1:
    """Turn a C status into an exception (the boundary should have prevented any)."""
    if status == FO_OK:
        return 0
    if status == FO_ERR_NOMEM:
        raise MemoryError(f"{where}: the kernel could not allocate scratch memory")
    raise RuntimeError(f"{where}: the kernel rejected its arguments (status {status}); "
                       "this is a bug in fastopt, please report it")


def check_params(params, str name="params"):
    """Validate a list of parameter arrays the way every kernel will (for early errors)."""
    ps, single = _as_list(params, name)
    if ps:
        prepare([ps], (name,), (PARAM,), (single,))
    return ps
