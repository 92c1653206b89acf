# _sgd.pxi — boundary for the SGD kernel (csrc/sgd.c).

cdef extern from "optim.h" nogil:
    ctypedef struct fo_sgd_options:
        double lr, momentum, dampening, weight_decay, l1
        int nesterov, maximize, first_step
    int fo_sgd_step_f32(fo_layout *layout, float **param, const float **grad, float **buf,
                        const fo_sgd_options *options, int nthreads)
    int fo_sgd_step_f64(fo_layout *layout, double **param, const double **grad, double **buf,
                        const fo_sgd_options *options, int nthreads)


cdef fo_sgd_options _sgd_options(lr, momentum, dampening, nesterov, weight_decay, l1,
                                 maximize, first_step) except *:
    cdef fo_sgd_options o
    o.lr = check_real(lr, "lr", 0.0, np.inf, False, False, True)
    o.momentum = check_real(momentum, "momentum", 0.0, np.inf, False, False, True)
    o.dampening = check_real(dampening, "dampening", 0.0, 1.0)
    o.weight_decay = check_real(weight_decay, "weight_decay", 0.0, np.inf, False, False, True)
    o.l1 = check_real(l1, "l1", 0.0, np.inf, False, False, True)
    o.nesterov = check_bool(nesterov, "nesterov")
    o.maximize = check_bool(maximize, "maximize")
    o.first_step = check_bool(first_step, "first_step")
    if o.nesterov and (o.momentum == 0.0 or o.dampening != 0.0):
        raise ValueError("nesterov: Nesterov momentum requires momentum > 0 and dampening = 0")
    return o


def sgd_step(p, g, buf=None, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
             weight_decay=0.0, l1=0.0, maximize=False, first_step=False):
    """One SGD step in place, with torch.optim.SGD's semantics.

    ::

        d   = (-g if maximize else g) + weight_decay * p + l1 * sign(p)
        buf = d                                        if first_step   (momentum > 0)
              momentum * buf + (1 - dampening) * d     otherwise
        p  -= lr * (d + momentum * buf if nesterov else buf)     (momentum > 0)
        p  -= lr * d                                              (momentum == 0)

    Parameters
    ----------
    p : ndarray or list of ndarray
        Parameters (float32 or float64, C-contiguous, writeable), updated in place.
        A list is updated in ONE C call whose work is split by total elements.
    g : ndarray or list of ndarray
        Gradients, same dtype and shape as `p` (non-contiguous ones are copied).
    buf : ndarray or list of ndarray, optional
        Momentum buffers (required when momentum > 0; checked but unused when momentum
        is 0), updated in place. With
        ``first_step=True`` their old contents are ignored and overwritten by ``d``
        (torch initialises the buffer to the first gradient, without dampening).
    lr, momentum, dampening, weight_decay, l1 : float
        lr >= 0, momentum >= 0, 0 <= dampening <= 1, weight_decay >= 0 (L2 added to the
        gradient), l1 >= 0 (subgradient l1*sign(p) added to the gradient; sign(0) = 0).
    nesterov : bool
        Nesterov momentum (requires momentum > 0 and dampening == 0).
    maximize : bool
        Ascend instead of descend.
    first_step : bool
        Whether the momentum buffers are being initialised by this step.

    Raises
    ------
    TypeError, ValueError
        For a bad argument, naming it; nothing is modified then.
    """
    cdef fo_sgd_options o = _sgd_options(lr, momentum, dampening, nesterov, weight_decay, l1,
                                         maximize, first_step)
    ps, single = _as_list(p, "p")
    gs, gsingle = _as_list(g, "g")
    bs = None
    bsingle = single
    if buf is not None:  # checked even when momentum == 0 (and then left alone)
        bs, bsingle = _as_list(buf, "buf")
    elif o.momentum != 0.0:
        raise ValueError("buf: momentum buffers are required when momentum > 0")
    batches = prepare([ps, gs, bs], ("p", "g", "buf"), (PARAM, GRAD, STATE),
                      (single, gsingle, bsingle))
    _run_sgd(batches, &o)


cdef void _run_sgd(list batches, fo_sgd_options *o) except *:
    global _last_threads_used
    cdef Batch b
    cdef int status = FO_OK
    cdef int nthreads = current_threads()
    if batches[0] is not None:
        b = <Batch>batches[0]
        with nogil:
            status = fo_sgd_step_f32(&b.layout, <float **>b.column(0),
                                     <const float **>b.column(1), <float **>b.column(2),
                                     o, nthreads)
        _last_threads_used = b.layout.threads_used
        check_status(status, "sgd_step")
    if batches[1] is not None:
        b = <Batch>batches[1]
        with nogil:
            status = fo_sgd_step_f64(&b.layout, <double **>b.column(0),
                                     <const double **>b.column(1), <double **>b.column(2),
                                     o, nthreads)
        _last_threads_used = b.layout.threads_used
        check_status(status, "sgd_step")


cdef inline int _one_tensor_layout(fo_layout *layout, int64_t *offsets, Py_ssize_t n,
                                   int nthreads) noexcept nogil:
    offsets[0] = 0
    offsets[1] = n
    layout.count = 1
    layout.offsets = offsets
    layout.threads_used = 0
    return nthreads if nthreads > 0 else current_threads()


cdef int sgd_step_f32(float *param, const float *grad, float *momentum_buffer, Py_ssize_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      double l1, bint nesterov, bint maximize, bint first_step,
                      int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef fo_sgd_options o
    if n < 0:
        return FO_ERR_ARGUMENT
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    o.lr, o.momentum, o.dampening, o.weight_decay, o.l1 = lr, momentum, dampening, weight_decay, l1
    o.nesterov, o.maximize, o.first_step = nesterov, maximize, first_step
    return fo_sgd_step_f32(&layout, &param, &grad, &momentum_buffer, &o, nthreads)


cdef int sgd_step_f64(double *param, const double *grad, double *momentum_buffer, Py_ssize_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      double l1, bint nesterov, bint maximize, bint first_step,
                      int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef fo_sgd_options o
    if n < 0:
        return FO_ERR_ARGUMENT
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    o.lr, o.momentum, o.dampening, o.weight_decay, o.l1 = lr, momentum, dampening, weight_decay, l1
    o.nesterov, o.maximize, o.first_step = nesterov, maximize, first_step
    return fo_sgd_step_f64(&layout, &param, &grad, &momentum_buffer, &o, nthreads)
