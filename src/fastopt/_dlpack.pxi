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
#
# Where torch has it (2.10 on), a torch tensor itself is read instead, through torch's DLPack
# C exchange API (``Tensor.__dlpack_c_exchange_api__``, dlpack.h's DLPackExchangeAPI): its
# ``dltensor_from_py_object_no_sync`` fills a DLTensor on our stack, with no capsule, no
# allocation and no Python call (about 50 ns, against 140 for to_dlpack plus the capsule's
# destruction). DLPack has no negative bit, so the tensor's is_neg() is asked first.

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.exc cimport PyErr_Clear
from cpython.long cimport PyLong_AsVoidPtr
from cpython.object cimport Py_TYPE, PyObject_TypeCheck, PyTypeObject
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from cpython.ref cimport PyObject
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
    /* DLPackExchangeAPI (dlpack.h 1.3): a header, then five function pointers; only
     * dltensor_from_py_object_no_sync is used (0, or -1 with a Python exception set). */
    typedef int (*fo_DLTensorFromPyObject)(void *py_object, fo_DLTensor *out);
    typedef struct fo_DLPackExchangeAPI {
        fo_DLPackVersion version;
        void *prev_api;
        void *managed_tensor_allocator;
        void *managed_tensor_from_py_object_no_sync;
        void *managed_tensor_to_py_object_no_sync;
        fo_DLTensorFromPyObject dltensor_from_py_object_no_sync;
        void *current_work_stream;
    } fo_DLPackExchangeAPI;
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
    ctypedef int (*fo_DLTensorFromPyObject)(void *py_object, fo_DLTensor *out)
    ctypedef struct fo_DLPackExchangeAPI:
        fo_DLPackVersion version
        fo_DLTensorFromPyObject dltensor_from_py_object_no_sync

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
    if t == NULL:
        raise DLPackUnfit(position, label, "not a DLPack capsule (dltensor) fastopt can read")
    return _dl_checked_data(t, p, position, label)


# torch's exchange API and what it reads (use_torch_exchange_api sets them, once)
cdef fo_DLTensorFromPyObject _torch_describe = NULL
cdef object _torch_tensor_type = None
cdef object _torch_is_neg = None
# Tensor.is_neg's C function where it is a METH_NOARGS method of a type torch tensors are
# instances of: called directly (what calling the method descriptor does after its type
# check, which _is_torch_tensor has made), ~8 ns less a new grad than the call
cdef extern from *:
    """
    #include <descrobject.h>
    typedef void *fo_cfunc;  /* a PyCFunction */
    static fo_cfunc fo_noargs_method(PyObject *d, PyObject *tensor_type)
    {
        PyMethodDef *m;
        if (!Py_IS_TYPE(d, &PyMethodDescr_Type) || !PyType_Check(tensor_type))
            return NULL;
        m = ((PyMethodDescrObject *)d)->d_method;
        if ((m->ml_flags & ~METH_COEXIST) != METH_NOARGS
                || !PyType_IsSubtype((PyTypeObject *)tensor_type,
                                     ((PyMethodDescrObject *)d)->d_common.d_type))
            return NULL;
        return (fo_cfunc)m->ml_meth;
    }
    static PyObject *fo_call_noargs(fo_cfunc f, PyObject *self)
    { return ((PyCFunction)f)(self, NULL); }
    """
    ctypedef void *fo_cfunc
    fo_cfunc fo_noargs_method(object d, object tensor_type)
    object fo_call_noargs(fo_cfunc f, PyObject *self)

cdef fo_cfunc _torch_is_neg_c = NULL


def use_torch_exchange_api(object capsule, object tensor_type, object is_neg):
    """Let StepPlan.bind read torch tensors of `tensor_type` (``torch.Tensor``) directly,
    through `capsule` (``Tensor.__dlpack_c_exchange_api__``); `is_neg` is
    ``Tensor.is_neg``. Returns whether the API is usable (DLPack major version 1, the
    function present); when not, nothing changes (fastopt.torch then makes capsules)."""
    global _torch_describe, _torch_tensor_type, _torch_is_neg, _torch_is_neg_c
    cdef fo_DLPackExchangeAPI *api
    if not isinstance(tensor_type, type):
        raise TypeError(f"tensor_type: expected a type, got {type(tensor_type).__name__}")
    if not PyCapsule_IsValid(capsule, b"dlpack_exchange_api"):
        return False
    api = <fo_DLPackExchangeAPI *>PyCapsule_GetPointer(capsule, b"dlpack_exchange_api")
    if api.version.major != 1 or api.dltensor_from_py_object_no_sync == NULL:
        return False
    _torch_tensor_type, _torch_is_neg = tensor_type, is_neg
    _torch_is_neg_c = fo_noargs_method(is_neg, tensor_type)
    _torch_describe = api.dltensor_from_py_object_no_sync
    return True


cdef inline bint _is_torch_tensor(object g):
    return _torch_describe != NULL and PyObject_TypeCheck(g, <PyTypeObject *>_torch_tensor_type)


cdef char *_torch_data(object tensor, cnp.ndarray p, Py_ssize_t position,
                       object label) except NULL:
    """The address of a torch tensor's first element, read through torch's exchange API and
    checked against param `p` as a capsule is; raises DLPackUnfit otherwise (a negative
    view, which DLPack cannot say, included)."""
    cdef fo_DLTensor t
    if (fo_call_noargs(_torch_is_neg_c, <PyObject *>tensor) if _torch_is_neg_c != NULL
            else _torch_is_neg(tensor)):
        raise DLPackUnfit(position, label, "a negative view")
    if _torch_describe(<void *>tensor, &t) != 0:  # e.g. a sparse or meta tensor
        PyErr_Clear()
        raise DLPackUnfit(position, label, "a tensor without memory fastopt can read")
    return _dl_checked_data(&t, p, position, label)


cdef char *_dl_checked_data(fo_DLTensor *t, cnp.ndarray p, Py_ssize_t position,
                            object label) except NULL:
    """The address of the first element `t` describes, after the boundary's checks of a
    gradient that is not copied against param `p`; raises DLPackUnfit otherwise."""
    cdef int k, nd = cnp.PyArray_NDIM(p)
    cdef int64_t expected = 1
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(p)
    cdef uintptr_t addr
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

# ``p.grad`` is a getset descriptor of torch's C tensor type. Where the lookup of "grad" on
# type(p) is known to end at that descriptor, its C getter is called directly (the very
# function ``p.grad`` calls, torch's own checks inside), saving the attribute lookup
# (~10 ns a tensor; measured 52 -> 42 ns). "Known": the type was checked once (generic
# attribute access, "grad" first found in its MRO on torch's descriptor) and its version
# tag is unchanged since -- CPython gives a type a new tag whenever it or a base class is
# modified, so a class that overrides ``grad`` or ``__getattribute__`` later is
# checked again. Any other type takes the ordinary ``p.grad``.

cdef extern from *:
    """
    #include <descrobject.h>
    typedef getter fo_getter;
    static int fo_is_getset(PyObject *d) { return Py_IS_TYPE(d, &PyGetSetDescr_Type); }
    static getter fo_getset_get(PyObject *d) { return ((PyGetSetDescrObject *)d)->d_getset->get; }
    static void *fo_getset_closure(PyObject *d)
    { return ((PyGetSetDescrObject *)d)->d_getset->closure; }
    static PyObject *fo_call_getter(getter get, PyObject *o, void *closure)
    { return get(o, closure); }
    static unsigned int fo_type_tag(PyTypeObject *t) { return t->tp_version_tag; }
    static int fo_generic_getattr(PyTypeObject *t)
    { return t->tp_getattro == PyObject_GenericGetAttr; }
    """
    ctypedef PyObject *(*fo_getter)(PyObject *, void *)
    bint fo_is_getset(object d)
    fo_getter fo_getset_get(object d)
    void *fo_getset_closure(object d)
    object fo_call_getter(fo_getter get, PyObject *o, void *closure)
    unsigned int fo_type_tag(PyTypeObject *t)
    bint fo_generic_getattr(PyTypeObject *t)

cdef fo_getter _grad_get = NULL
cdef void *_grad_closure = NULL
cdef object _grad_descr = None
# the types checked, with their version tags then (a few: Parameter, Tensor, subclasses)
cdef enum:
    _GRAD_TYPES = 4
cdef PyTypeObject *_grad_types[_GRAD_TYPES]
cdef unsigned int _grad_tags[_GRAD_TYPES]
cdef int _grad_ntypes = 0


def use_grad_getter(object descr):
    """Let gather_torch_grads read ``p.grad`` through `descr`'s C getter
    (``torch._C.TensorBase.__dict__["grad"]``) for the params whose type looks "grad" up
    there. Returns whether `descr` is a getset descriptor (when not, nothing changes)."""
    global _grad_get, _grad_closure, _grad_descr, _grad_ntypes
    if not fo_is_getset(descr) or fo_getset_get(descr) == NULL:
        return False
    _grad_descr = descr
    _grad_get, _grad_closure = fo_getset_get(descr), fo_getset_closure(descr)
    _grad_ntypes = 0
    return True


cdef bint _admit_grad_type(PyTypeObject *t) except -1:
    """Check type `t` (see above) and remember it with its version tag."""
    global _grad_ntypes
    cdef object cls = <object>t
    cdef unsigned int tag
    cdef int k
    if not fo_generic_getattr(t):
        return False
    for klass in cls.__mro__:
        found = (<object>klass).__dict__.get("grad")
        if found is not None:
            if found is not _grad_descr:
                return False
            break
    else:
        return False
    tag = fo_type_tag(t)
    if tag == 0:  # no valid tag (CPython ran out of them): not cached
        return True
    for k in range(_grad_ntypes):
        if _grad_types[k] == t:
            _grad_tags[k] = tag
            return True
    k = _grad_ntypes if _grad_ntypes < _GRAD_TYPES else _GRAD_TYPES - 1
    _grad_types[k], _grad_tags[k] = t, tag
    if _grad_ntypes < _GRAD_TYPES:
        _grad_ntypes += 1
    # (the type object stays alive: a param of it is in the optimizer, and a type freed and
    # another allocated at its address would have another tag)
    return True


cdef inline object _grad_of(object p):
    """``p.grad``, through the getter where type(p) was checked (see above)."""
    cdef PyTypeObject *t = Py_TYPE(p)
    cdef int k
    if _grad_get != NULL:
        for k in range(_grad_ntypes):
            if _grad_types[k] == t:
                if _grad_tags[k] == fo_type_tag(t) and _grad_tags[k] != 0:
                    return fo_call_getter(_grad_get, <PyObject *>p, _grad_closure)
                break
        if _admit_grad_type(t) and fo_type_tag(t) != 0:
            return fo_call_getter(_grad_get, <PyObject *>p, _grad_closure)
    return p.grad


cdef uintptr_t _tensor_address(object t, object data_ptr) except? 0:
    """``t.data_ptr()``, read through torch's exchange API where it is in use (no Python
    call, no int object made), else by calling `data_ptr` (``Tensor.data_ptr``)."""
    cdef fo_DLTensor d
    if _torch_describe != NULL:
        if _torch_describe(<void *>t, &d) == 0:
            return <uintptr_t>d.data + <uintptr_t>d.byte_offset
        PyErr_Clear()
    return <uintptr_t>PyLong_AsVoidPtr(data_ptr(t))


def tensor_addresses(list tensors, object data_ptr):
    """The data pointer of each tensor as gather_torch_grads reads it (a uintp array; the
    pointers it compares are read the same way)."""
    cdef Py_ssize_t i, n = PyList_GET_SIZE(tensors)
    cdef cnp.ndarray out = np.zeros(n, np.uintp)
    cdef uintptr_t *a = <uintptr_t *>cnp.PyArray_DATA(out)
    for i in range(n):
        a[i] = _tensor_address(<object>PyList_GET_ITEM(tensors, i), data_ptr)
    return out


cdef uintptr_t *_address_table(cnp.ndarray a, Py_ssize_t n, str name) except NULL:
    if (cnp.PyArray_TYPE(a) != cnp.NPY_UINTP or cnp.PyArray_SIZE(a) != n
            or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISWRITEABLE(a)):
        raise ValueError(f"gather_torch_grads: {name}: expected a writeable uintp array of "
                         f"{n} pointers")
    return <uintptr_t *>cnp.PyArray_DATA(a)


# After this many steps in a row with a new grad tensor, a slot stops making a weak
# reference to each (~50 ns, and an object for the garbage collector to track): it keeps
# the grad's address instead, and makes one again when a grad shows up at that address.
cdef enum:
    _WEAK_NEW_STEPS = 8


def gather_torch_grads(list params, cnp.ndarray ptrs, list srcs, cnp.ndarray gptrs,
                       list views, list weak, cnp.ndarray seen, object no_grad,
                       object data_ptr, object is_neg, object to_dlpack, object numpy_view):
    """Read ``p.grad`` of every param of fastopt.torch's cached layout: its step's loop over
    the params, in C (three torch calls per tensor and no bytecode). torch's own methods
    are passed in (``Tensor.data_ptr``, ``Tensor.is_neg``, ``to_dlpack``,
    ``Tensor.numpy``), so that this module never imports torch.

    Per slot i: ``ptrs[i]`` is the param's data pointer when the layout was built;
    ``srcs[i]`` the grad tensor whose numpy view ``views[i]`` is retained (``no_grad`` and
    None when none is) and ``gptrs[i]`` its data pointer (both uintp arrays, the pointers
    as tensor_addresses reads them); ``weak[i]`` a weak reference to the slot's grad of an
    earlier step, and ``seen[2 * i]`` how many steps in a row its grad was new and
    ``seen[2 * i + 1]`` that grad's address (a uintp array of 2 per slot). A grad that is
    still the retained one keeps its view; a new grad is
    handed to StepPlan.bind as the tensor itself when ``to_dlpack`` is None (bind reads it
    through torch's exchange API, see use_torch_exchange_api), else as a DLPack capsule; it
    is retained (a numpy view) when it is the grad ``weak[i]`` refers to (met two steps
    running), else read for this step only: a new grad tensor every step
    (``zero_grad(set_to_none=True)``) must not outlive its step through a reference of ours.
    A slot whose grad was new _WEAK_NEW_STEPS steps running makes a weak reference only to
    a grad at the address of the last one (maybe the same tensor): retention then starts
    one step later.

    Returns None when some param's data pointer is not ``ptrs[i]`` (its storage was
    swapped: the layout must be rebuilt), else ``(changed, grads, missing, slow)``: whether
    any slot changed (False: ``grads`` holds the retained views), the list to bind (per
    slot a view, a tensor or capsule, or None), the slots whose grad is None (None when
    every param has one), and the slots left to the caller (a negative view, or a grad
    ``to_dlpack`` refused: the numpy road, which copies or explains; with ``to_dlpack``
    None, bind finds these)."""
    cdef Py_ssize_t i, n = PyList_GET_SIZE(params)
    cdef object p, g, w, cap
    cdef bint changed = False
    cdef list slow = [], grads
    cdef object missing = None
    if PyList_GET_SIZE(srcs) != n or PyList_GET_SIZE(views) != n or PyList_GET_SIZE(weak) != n:
        raise ValueError("gather_torch_grads: expected one entry per param in every list")
    cdef uintptr_t *pp = _address_table(ptrs, n, "ptrs")
    cdef uintptr_t *gp = _address_table(gptrs, n, "gptrs")
    cdef uintptr_t *sn = _address_table(seen, 2 * n, "seen")
    grads = list(views)
    for i in range(n):
        p = <object>PyList_GET_ITEM(params, i)
        if _tensor_address(p, data_ptr) != pp[i]:
            return None
        g = _grad_of(p)
        if g is <object>PyList_GET_ITEM(srcs, i) and _tensor_address(g, data_ptr) == gp[i]:
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
        if to_dlpack is None:  # bind reads the tensor (and checks its negative bit)
            cap = g
        else:
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
            try:
                gp[i] = _tensor_address(g, data_ptr)
            except RuntimeError:  # no memory to read (sparse): bind finds it, and explains
                continue
            srcs[i] = g
            sn[2 * i] = 0
            try:  # retained: a numpy view binds faster than a capsule (parsed every step)
                cap = numpy_view(g)
                grads[i] = cap
            except (TypeError, RuntimeError):
                pass
            views[i] = cap
        elif sn[2 * i] < _WEAK_NEW_STEPS or sn[2 * i + 1] == <uintptr_t><PyObject *>g:
            weak[i] = PyWeakref_NewRef(g, None)
            sn[2 * i] = 1 if sn[2 * i] >= _WEAK_NEW_STEPS else sn[2 * i] + 1
        else:
            sn[2 * i + 1] = <uintptr_t><PyObject *>g
            if w is not None:  # or a grad met again steps later would be retained
                weak[i] = None
    return changed, grads, missing, slow
