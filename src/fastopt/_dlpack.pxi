# _dlpack.pxi — reading a gradient's memory from a DLPack capsule (fastopt.torch).
#
# Uses: _boundary.pxi (_label). Used by: _optim.pxi (StepPlan.bind), fastopt.torch
# (gather_torch_grads: its step's loop over p.grad).
#
# fastopt.torch meets a NEW gradient tensor for every parameter at every step (after
# zero_grad(set_to_none=True) and a backward pass). torch's Tensor.numpy() costs about
# 1.2 us per tensor; torch.utils.dlpack.to_dlpack about 0.3 us, and what it describes
# (device, dtype, shape, strides, data) is checked here in C. StepPlan.bind takes such a
# capsule wherever it takes a gradient array, applies the boundary's rules to it (dtype and
# shape of the param, CPU memory, C-contiguous, aligned, no overlap with a written array:
# checked in bind) and binds its data pointer; the capsule (holding the tensor) is kept
# until the step ends. A capsule that does not fit raises DLPackUnfit, on which the caller
# takes the numpy road for that gradient (which copies a strided one, and words the errors).
# Capsules are only peeked at, never consumed: the producer's capsule destructor releases
# the tensor.

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from cpython.weakref cimport PyWeakref_GetObject, PyWeakref_NewRef
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t

cdef extern from *:
    """
    #include <stdint.h>
    /* The DLPack structs (dlpack.h v0.8 / v1.x), under fastopt's names. */
    typedef struct { int32_t device_type; int32_t device_id; } fo_DLDevice;
    typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } fo_DLDataType;
    typedef struct {
        void *data;
        fo_DLDevice device;
        int32_t ndim;
        fo_DLDataType dtype;
        int64_t *shape;
        int64_t *strides;
        uint64_t byte_offset;
    } fo_DLTensor;
    typedef struct fo_DLManagedTensor {
        fo_DLTensor dl_tensor;
        void *manager_ctx;
        void (*deleter)(struct fo_DLManagedTensor *self);
    } fo_DLManagedTensor;
    typedef struct { uint32_t major; uint32_t minor; } fo_DLPackVersion;
    typedef struct fo_DLManagedTensorVersioned {
        fo_DLPackVersion version;
        void *manager_ctx;
        void (*deleter)(struct fo_DLManagedTensorVersioned *self);
        uint64_t flags;
        fo_DLTensor dl_tensor;
    } fo_DLManagedTensorVersioned;
    """
    ctypedef struct fo_DLDevice:
        int32_t device_type
    ctypedef struct fo_DLDataType:
        uint8_t code
        uint8_t bits
        uint16_t lanes
    ctypedef struct fo_DLTensor:
        void *data
        fo_DLDevice device
        int32_t ndim
        fo_DLDataType dtype
        int64_t *shape
        int64_t *strides
        uint64_t byte_offset
    ctypedef struct fo_DLManagedTensor:
        fo_DLTensor dl_tensor
    ctypedef struct fo_DLPackVersion:
        uint32_t major
    ctypedef struct fo_DLManagedTensorVersioned:
        fo_DLPackVersion version
        fo_DLTensor dl_tensor

cdef enum:
    _DL_CPU = 1
    _DL_FLOAT = 2


class DLPackUnfit(ValueError):
    """A DLPack capsule given to StepPlan.bind is not a C-contiguous, aligned CPU tensor of
    its parameter's dtype and shape (take the numpy road for it). ``position``: its place
    in the list given to bind."""

    def __init__(self, position, label, why):
        super().__init__(f"grads[{label}]: {why}")
        self.position = position


cdef fo_DLTensor *_dl_tensor(object capsule):
    """The DLTensor a capsule describes (legacy or versioned, major version 1), or NULL."""
    cdef fo_DLManagedTensorVersioned *v
    if PyCapsule_IsValid(capsule, b"dltensor"):
        return &(<fo_DLManagedTensor *>PyCapsule_GetPointer(capsule, b"dltensor")).dl_tensor
    if PyCapsule_IsValid(capsule, b"dltensor_versioned"):
        v = <fo_DLManagedTensorVersioned *>PyCapsule_GetPointer(capsule, b"dltensor_versioned")
        if v.version.major == 1:
            return &v.dl_tensor
    return NULL


cdef char *_dlpack_data(object capsule, cnp.ndarray p, Py_ssize_t position,
                        object label) except NULL:
    """The address of a capsule's first element, after checking it against param `p` (the
    boundary's rules for a gradient that is not copied); raises DLPackUnfit otherwise."""
    cdef fo_DLTensor *t = _dl_tensor(capsule)
    cdef int k, nd = cnp.PyArray_NDIM(p)
    cdef int64_t expected = 1
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(p)
    cdef uintptr_t addr
    if t == NULL:
        raise DLPackUnfit(position, label, "not a DLPack capsule (dltensor) fastopt can read")
    if t.device.device_type != _DL_CPU:
        raise DLPackUnfit(position, label, "not in CPU memory")
    if t.dtype.code != _DL_FLOAT or t.dtype.lanes != 1 or t.dtype.bits != 8 * itemsize:
        raise DLPackUnfit(position, label, "not of the parameter's dtype")
    if t.ndim != nd:
        raise DLPackUnfit(position, label, "not of the parameter's shape")
    for k in range(nd):
        if t.shape[k] != cnp.PyArray_DIMS(p)[k]:
            raise DLPackUnfit(position, label, "not of the parameter's shape")
    if cnp.PyArray_SIZE(p) == 0:
        return <char *>p.data  # nothing is read; any valid, aligned address will do
    if t.strides != NULL:  # NULL: compact row-major; else C order wherever a dim exceeds 1
        for k in range(nd - 1, -1, -1):
            if t.shape[k] != 1 and t.strides[k] != expected:
                raise DLPackUnfit(position, label, "not C-contiguous")
            expected *= t.shape[k]
    addr = <uintptr_t>t.data + <uintptr_t>t.byte_offset
    if t.data == NULL or addr % <uintptr_t>itemsize != 0:
        raise DLPackUnfit(position, label, "not aligned")
    return <char *>addr


# ---------------------------------------------------------------------------------------
# fastopt.torch's reading of every p.grad, in one C loop
# ---------------------------------------------------------------------------------------


def gather_torch_grads(list params, list ptrs, list srcs, list gptrs, list views, list weak,
                       object no_grad, object data_ptr, object is_neg, object to_dlpack,
                       object numpy_view):
    """Read ``p.grad`` of every param of fastopt.torch's cached layout: its step's loop over
    the params, in C (three torch calls per tensor and no bytecode). torch's own methods
    are passed in (``Tensor.data_ptr``, ``Tensor.is_neg``, ``to_dlpack``,
    ``Tensor.numpy``), so that this module never imports torch.

    Per slot i: ``ptrs[i]`` is the param's data pointer when the layout was built;
    ``srcs[i]`` the grad tensor whose numpy view ``views[i]`` is retained (``no_grad`` and
    None when none is) and ``gptrs[i]`` its data pointer; ``weak[i]`` a weak reference to
    the slot's grad of an earlier step. A grad that is still the retained one keeps its
    view; a new grad is read through a DLPack capsule, and is retained (a numpy view) when
    it is the grad ``weak[i]`` refers to (met two steps running), else read for this step
    only: a new grad tensor every step (``zero_grad(set_to_none=True)``) must not outlive
    its step through a reference of ours.

    Returns None when some param's data pointer is not ``ptrs[i]`` (its storage was
    swapped: the layout must be rebuilt), else ``(changed, grads, missing, slow)``: whether
    any slot changed (False: ``grads`` holds the retained views), the list to bind (per
    slot a view, a capsule, or None), the slots whose grad is None (None when every param
    has one), and the slots left to the caller (a negative view, or a grad ``to_dlpack``
    refused: the numpy road, which copies or explains)."""
    cdef Py_ssize_t i, n = PyList_GET_SIZE(params)
    cdef object p, g, w, cap
    cdef bint changed = False
    cdef list slow = [], grads
    cdef object missing = None
    if (PyList_GET_SIZE(ptrs) != n or PyList_GET_SIZE(srcs) != n or PyList_GET_SIZE(gptrs) != n
            or PyList_GET_SIZE(views) != n or PyList_GET_SIZE(weak) != n):
        raise ValueError("gather_torch_grads: expected one entry per param in every list")
    grads = list(views)
    for i in range(n):
        p = <object>PyList_GET_ITEM(params, i)
        if data_ptr(p) != <object>PyList_GET_ITEM(ptrs, i):
            return None
        g = p.grad
        if (g is <object>PyList_GET_ITEM(srcs, i)
                and data_ptr(g) == <object>PyList_GET_ITEM(gptrs, i)):
            continue
        changed = True
        srcs[i] = no_grad
        views[i] = None
        grads[i] = None
        if g is None:
            if missing is None:
                missing = []
            missing.append(i)
            continue
        if is_neg(g):  # DLPack would drop the negative bit
            slow.append(i)
            continue
        try:
            cap = to_dlpack(g)
        except (TypeError, RuntimeError):
            slow.append(i)
            continue
        grads[i] = cap
        w = <object>PyList_GET_ITEM(weak, i)
        if w is not None and <object>PyWeakref_GetObject(w) is g:
            srcs[i] = g
            gptrs[i] = data_ptr(g)
            try:  # retained: a numpy view binds faster than a capsule (parsed every step)
                cap = numpy_view(g)
                grads[i] = cap
            except (TypeError, RuntimeError):
                pass
            views[i] = cap
        else:
            weak[i] = PyWeakref_NewRef(g, None)
    return changed, grads, missing, slow
