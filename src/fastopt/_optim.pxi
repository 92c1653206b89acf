# _optim.pxi — boundary for the first-order optimizer kernels (csrc/adam.c, adagrad.c,
# rmsprop.c, adadelta.c, finite.c, and sgd.c through _sgd.pxi).
#
# Three layers, top to bottom:
#   * functional wrappers (adam_step, ...): validate, build pointer tables with prepare(),
#     release the GIL, call C. One C call per dtype for a whole list of arrays.
#   * KernelOptions: the validated hyperparameters of one call (built by *_options()).
#   * StepPlan: the pointer tables of an optimizer's params and state, validated once and
#     cached by fastopt.optim.Optimizer between steps, so that a step only checks and binds
#     the gradients (the short Python path of step()).

from cpython.object cimport PyObject
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE

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
    ctypedef struct fo_adam_options:
        double lr, beta1, beta2, eps, weight_decay, l1
        int64_t step
        const int64_t *steps
        int amsgrad, decoupled, maximize
    ctypedef struct fo_adagrad_options:
        double lr, lr_decay, weight_decay, eps, l1
        int64_t step
        const int64_t *steps
        int maximize
    ctypedef struct fo_rmsprop_options:
        double lr, alpha, eps, weight_decay, momentum, l1
        int centered, maximize, eps_in_sqrt
    ctypedef struct fo_adadelta_options:
        double lr, rho, eps, weight_decay, l1
        int maximize
    int fo_adam_step_f32(fo_layout *layout, float **param, const float **grad,
                         float **exp_avg, float **exp_avg_sq, float **max_exp_avg_sq,
                         const fo_adam_options *o, int nthreads)
    int fo_adam_step_f64(fo_layout *layout, double **param, const double **grad,
                         double **exp_avg, double **exp_avg_sq, double **max_exp_avg_sq,
                         const fo_adam_options *o, int nthreads)
    int fo_adagrad_step_f32(fo_layout *layout, float **param, const float **grad,
                            float **sum, const fo_adagrad_options *o, int nthreads)
    int fo_adagrad_step_f64(fo_layout *layout, double **param, const double **grad,
                            double **sum, const fo_adagrad_options *o, int nthreads)
    int fo_rmsprop_step_f32(fo_layout *layout, float **param, const float **grad,
                            float **square_avg, float **grad_avg, float **momentum_buffer,
                            const fo_rmsprop_options *o, int nthreads)
    int fo_rmsprop_step_f64(fo_layout *layout, double **param, const double **grad,
                            double **square_avg, double **grad_avg, double **momentum_buffer,
                            const fo_rmsprop_options *o, int nthreads)
    int fo_adadelta_step_f32(fo_layout *layout, float **param, const float **grad,
                             float **square_avg, float **acc_delta,
                             const fo_adadelta_options *o, int nthreads)
    int fo_adadelta_step_f64(fo_layout *layout, double **param, const double **grad,
                             double **square_avg, double **acc_delta,
                             const fo_adadelta_options *o, int nthreads)
    int fo_all_finite_f32(fo_layout *layout, const float **x, int *all_finite, int nthreads)
    int fo_all_finite_f64(fo_layout *layout, const double **x, int *all_finite, int nthreads)


# ---------------------------------------------------------------------------------------
# Validated options
# ---------------------------------------------------------------------------------------

cdef enum Family:
    FAMILY_SGD = 0
    FAMILY_ADAM = 1
    FAMILY_ADAGRAD = 2
    FAMILY_RMSPROP = 3
    FAMILY_ADADELTA = 4

# The state arrays each family's kernel takes, in its argument order (columns 2.. of a call).
cdef tuple _STATE_NAMES = (
    ("momentum_buffer",),
    ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    ("sum",),
    ("square_avg", "grad_avg", "momentum_buffer"),
    ("square_avg", "acc_delta"),
)
cdef tuple _FAMILY_NAMES = ("sgd_step", "adam_step", "adagrad_step", "rmsprop_step",
                            "adadelta_step")

cdef class KernelOptions:
    """The validated hyperparameters of one optimizer kernel call.

    Built by :func:`adam_options` and its siblings; ``state_names`` lists the state arrays the
    family's kernel takes (in argument order) and ``used`` says which of them this call
    reads and writes (e.g. ``max_exp_avg_sq`` only with amsgrad).
    """
    cdef int family
    cdef int nstates
    cdef int used_mask
    cdef fo_sgd_options sgd
    cdef fo_adam_options adam
    cdef fo_adagrad_options adagrad
    cdef fo_rmsprop_options rmsprop
    cdef fo_adadelta_options adadelta

    @property
    def state_names(self):
        return _STATE_NAMES[self.family]

    @property
    def used(self):
        return tuple(bool(self.used_mask & (1 << k)) for k in range(self.nstates))

    @property
    def kernel(self):
        return _FAMILY_NAMES[self.family]


cdef inline KernelOptions _new_options(int family, int used_mask):
    cdef KernelOptions o = KernelOptions.__new__(KernelOptions)
    o.family = family
    o.nstates = len(<tuple>_STATE_NAMES[family])
    o.used_mask = used_mask
    return o


cdef inline double _finite(object value, str name, double low, double high, bint low_open,
                           bint high_open) except? -1.0:
    """check_real that also refuses infinities (every optimizer coefficient is finite)."""
    cdef double v = check_real(value, name, low, high, low_open, high_open)
    if not isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return v


cdef inline double _nonneg(object value, str name) except? -1.0:      # [0, inf)
    return _finite(value, name, 0.0, np.inf, False, False)


cdef inline double _positive(object value, str name) except? -1.0:    # (0, inf)
    return _finite(value, name, 0.0, np.inf, True, False)


cdef inline double _fraction(object value, str name) except? -1.0:    # [0, 1]
    return _finite(value, name, 0.0, 1.0, False, False)


cdef inline double _decay_rate(object value, str name) except? -1.0:  # [0, 1)
    return _finite(value, name, 0.0, 1.0, False, True)


cdef int64_t _check_step(object step, str name="step") except -1:
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"{name}: expected an int (the 1-based number of this update), "
                        f"got {type(step).__name__}")
    if step < 1 or step > (1 << 62):
        raise ValueError(f"{name}: expected an int >= 1 (the 1-based number of this update), "
                         f"got {step!r}")
    return <int64_t>step


def sgd_options(lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, l1=0.0,
                maximize=False, first_step=False):
    """Validated options of an SGD call (see :func:`sgd_step`)."""
    cdef KernelOptions o = _new_options(FAMILY_SGD, 0)
    o.sgd = _sgd_options(lr, momentum, dampening, nesterov, weight_decay, l1, maximize,
                         first_step)
    o.used_mask = 1 if o.sgd.momentum != 0.0 else 0
    return o


def adam_options(lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, l1=0.0,
                 amsgrad=False, decoupled=False, maximize=False, step=1):
    """Validated options of an Adam/AdamW call (see :func:`adam_step`)."""
    cdef KernelOptions o = _new_options(FAMILY_ADAM, 0)
    o.adam.lr = _nonneg(lr, "lr")
    o.adam.beta1 = _decay_rate(beta1, "beta1")
    o.adam.beta2 = _decay_rate(beta2, "beta2")
    o.adam.eps = _positive(eps, "eps")
    o.adam.weight_decay = _nonneg(weight_decay, "weight_decay")
    o.adam.l1 = _nonneg(l1, "l1")
    o.adam.amsgrad = check_bool(amsgrad, "amsgrad")
    o.adam.decoupled = check_bool(decoupled, "decoupled")
    o.adam.maximize = check_bool(maximize, "maximize")
    o.adam.step = _check_step(step)
    o.adam.steps = NULL
    o.used_mask = 3 | (4 if o.adam.amsgrad else 0)
    return o


def adagrad_options(lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10, l1=0.0, maximize=False,
                    step=1):
    """Validated options of an Adagrad call (see :func:`adagrad_step`)."""
    cdef KernelOptions o = _new_options(FAMILY_ADAGRAD, 1)
    o.adagrad.lr = _nonneg(lr, "lr")
    o.adagrad.lr_decay = _nonneg(lr_decay, "lr_decay")
    o.adagrad.weight_decay = _nonneg(weight_decay, "weight_decay")
    o.adagrad.eps = _positive(eps, "eps")
    o.adagrad.l1 = _nonneg(l1, "l1")
    o.adagrad.maximize = check_bool(maximize, "maximize")
    o.adagrad.step = _check_step(step)
    o.adagrad.steps = NULL
    return o


def rmsprop_options(lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                    l1=0.0, maximize=False, eps_in_sqrt=False):
    """Validated options of an RMSprop call (see :func:`rmsprop_step`)."""
    cdef KernelOptions o = _new_options(FAMILY_RMSPROP, 1)
    o.rmsprop.lr = _nonneg(lr, "lr")
    o.rmsprop.alpha = _fraction(alpha, "alpha")
    o.rmsprop.eps = _positive(eps, "eps")
    o.rmsprop.weight_decay = _nonneg(weight_decay, "weight_decay")
    o.rmsprop.momentum = _nonneg(momentum, "momentum")
    o.rmsprop.l1 = _nonneg(l1, "l1")
    o.rmsprop.centered = check_bool(centered, "centered")
    o.rmsprop.maximize = check_bool(maximize, "maximize")
    o.rmsprop.eps_in_sqrt = check_bool(eps_in_sqrt, "eps_in_sqrt")
    o.used_mask = 1 | (2 if o.rmsprop.centered else 0) | (4 if o.rmsprop.momentum != 0.0 else 0)
    return o


def adadelta_options(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, l1=0.0, maximize=False):
    """Validated options of an Adadelta call (see :func:`adadelta_step`)."""
    cdef KernelOptions o = _new_options(FAMILY_ADADELTA, 3)
    o.adadelta.lr = _nonneg(lr, "lr")
    o.adadelta.rho = _fraction(rho, "rho")
    o.adadelta.eps = _positive(eps, "eps")
    o.adadelta.weight_decay = _nonneg(weight_decay, "weight_decay")
    o.adadelta.l1 = _nonneg(l1, "l1")
    o.adadelta.maximize = check_bool(maximize, "maximize")
    return o


# ---------------------------------------------------------------------------------------
# Dispatch: one C call for one Batch (one dtype)
# ---------------------------------------------------------------------------------------

cdef int _dispatch(KernelOptions o, Batch b, const int64_t *steps, int nthreads) noexcept nogil:
    """Run o's kernel on batch b (columns: param, grad, states...). Returns the C status."""
    cdef fo_adam_options adam
    cdef fo_adagrad_options adagrad
    cdef bint f32 = b.typenum == cnp.NPY_FLOAT
    if o.family == FAMILY_SGD:
        if f32:
            return fo_sgd_step_f32(&b.layout, <float **>b.column(0), <const float **>b.column(1),
                                   <float **>b.column(2), &o.sgd, nthreads)
        return fo_sgd_step_f64(&b.layout, <double **>b.column(0), <const double **>b.column(1),
                               <double **>b.column(2), &o.sgd, nthreads)
    if o.family == FAMILY_ADAM:
        adam = o.adam
        adam.steps = steps
        if f32:
            return fo_adam_step_f32(&b.layout, <float **>b.column(0),
                                    <const float **>b.column(1), <float **>b.column(2),
                                    <float **>b.column(3), <float **>b.column(4), &adam,
                                    nthreads)
        return fo_adam_step_f64(&b.layout, <double **>b.column(0),
                                <const double **>b.column(1), <double **>b.column(2),
                                <double **>b.column(3), <double **>b.column(4), &adam,
                                nthreads)
    if o.family == FAMILY_ADAGRAD:
        adagrad = o.adagrad
        adagrad.steps = steps
        if f32:
            return fo_adagrad_step_f32(&b.layout, <float **>b.column(0),
                                       <const float **>b.column(1), <float **>b.column(2),
                                       &adagrad, nthreads)
        return fo_adagrad_step_f64(&b.layout, <double **>b.column(0),
                                   <const double **>b.column(1), <double **>b.column(2),
                                   &adagrad, nthreads)
    if o.family == FAMILY_RMSPROP:
        if f32:
            return fo_rmsprop_step_f32(&b.layout, <float **>b.column(0),
                                       <const float **>b.column(1), <float **>b.column(2),
                                       <float **>b.column(3), <float **>b.column(4),
                                       &o.rmsprop, nthreads)
        return fo_rmsprop_step_f64(&b.layout, <double **>b.column(0),
                                   <const double **>b.column(1), <double **>b.column(2),
                                   <double **>b.column(3), <double **>b.column(4),
                                   &o.rmsprop, nthreads)
    if o.family == FAMILY_ADADELTA:
        if f32:
            return fo_adadelta_step_f32(&b.layout, <float **>b.column(0),
                                        <const float **>b.column(1), <float **>b.column(2),
                                        <float **>b.column(3), &o.adadelta, nthreads)
        return fo_adadelta_step_f64(&b.layout, <double **>b.column(0),
                                    <const double **>b.column(1), <double **>b.column(2),
                                    <double **>b.column(3), &o.adadelta, nthreads)
    return FO_ERR_ARGUMENT


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
            status = _dispatch(o, b, NULL, nthreads)
        _last_threads_used = b.layout.threads_used
        check_status(status, _FAMILY_NAMES[o.family])


cdef list _optional(object x, str name, bint single, bint wanted, str why):
    """The list for an optional state argument: required when `wanted`, ignored otherwise."""
    if not wanted:
        return None
    if x is None:
        raise ValueError(f"{name}: required {why}")
    xs, xsingle = _as_list(x, name)
    if xsingle != single:
        raise TypeError(f"{name}: expected {'one array' if single else 'a list of arrays'}, "
                        f"like p")
    return xs


# ---------------------------------------------------------------------------------------
# Functional kernels
# ---------------------------------------------------------------------------------------

def adam_step(p, g, m, v, *, step, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
              decoupled=False, vmax=None, maximize=False, l1=0.0):
    r"""One Adam (or AdamW) step in place, torch.optim.Adam/AdamW's update.

    With :math:`t` = ``step`` (1 for the first update)::

        d    = (-g if maximize else g) + weight_decay * p * (not decoupled) + l1 * sign(p)
        p    = p * (1 - lr * weight_decay)                     if decoupled   (AdamW)
        m    = beta1 * m + (1 - beta1) * d
        v    = beta2 * v + (1 - beta2) * d * d
        vmax = max(vmax, v)                                    if vmax is given (AMSGrad)
        p   -= lr / (1 - beta1**t) * m / (sqrt(vmax or v) / sqrt(1 - beta2**t) + eps)

    Scalars (lr / (1 - beta1**t), sqrt(1 - beta2**t), 1 - lr*weight_decay) are computed once
    in double; the element-wise work runs in the arrays' precision, one pass over memory.

    Parameters
    ----------
    p : ndarray or list of ndarray
        Parameters (float32/float64, C-contiguous, writeable), updated in place. A list is
        updated in ONE C call per dtype whose work is split by total elements.
    g : ndarray or list of ndarray
        Gradients (same dtype and shape; non-contiguous ones are copied).
    m, v : ndarray or list of ndarray
        First and second moment estimates, updated in place (start from zeros).
    step : int
        1-based number of this update (bias corrections use it).
    lr : float
        Learning rate >= 0.
    beta1, beta2 : float
        Decay rates in [0, 1).
    eps : float
        > 0, added to the bias-corrected sqrt(v) (outside the square root, as torch).
    weight_decay : float
        >= 0; L2 added to the gradient (Adam) or, with ``decoupled=True``, the decoupled
        decay ``p *= 1 - lr*weight_decay`` (AdamW).
    decoupled : bool
        AdamW's decoupled weight decay.
    vmax : ndarray or list of ndarray, optional
        Running maximum of v (AMSGrad) when given, updated in place.
    maximize : bool
        Ascend instead of descend.
    l1 : float
        >= 0; subgradient ``l1*sign(p)`` added to the gradient (sign(0) = 0).

    Raises
    ------
    TypeError, ValueError
        For a bad argument, naming it; nothing is modified then.
    """
    cdef KernelOptions o = adam_options(lr, beta1, beta2, eps, weight_decay, l1,
                                        vmax is not None, decoupled, maximize, step)
    ps, single = _as_list(p, "p")
    gs, gsingle = _as_list(g, "g")
    ms, msingle = _as_list(m, "m")
    vs, vsingle = _as_list(v, "v")
    xs = _optional(vmax, "vmax", single, vmax is not None, "")
    batches = prepare([ps, gs, ms, vs, xs], ("p", "g", "m", "v", "vmax"),
                      (PARAM, GRAD, STATE, STATE, STATE),
                      (single, gsingle, msingle, vsingle, single))
    _run_batches(o, batches)


def adagrad_step(p, g, state_sum, *, step, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10,
                 maximize=False, l1=0.0):
    r"""One Adagrad step in place, torch.optim.Adagrad's update.

    With :math:`t` = ``step`` (1 for the first update)::

        d    = (-g if maximize else g) + weight_decay * p + l1 * sign(p)
        sum += d * d
        p   -= lr / (1 + (t - 1) * lr_decay) * d / (sqrt(sum) + eps)

    Parameters
    ----------
    p, g : ndarray or list of ndarray
        Parameters (updated in place) and gradients, as for :func:`adam_step`.
    state_sum : ndarray or list of ndarray
        Sum of squared gradients, updated in place (start from
        ``initial_accumulator_value``, default 0).
    step : int
        1-based number of this update (the lr decay uses it).
    lr, lr_decay, weight_decay, l1 : float
        All >= 0. weight_decay is L2 added to the gradient, l1 adds ``l1*sign(p)``.
    eps : float
        > 0, added outside the square root (torch's placement).
    maximize : bool
        Ascend instead of descend.
    """
    cdef KernelOptions o = adagrad_options(lr, lr_decay, weight_decay, eps, l1, maximize, step)
    ps, single = _as_list(p, "p")
    gs, gsingle = _as_list(g, "g")
    ss, ssingle = _as_list(state_sum, "state_sum")
    batches = prepare([ps, gs, ss], ("p", "g", "state_sum"), (PARAM, GRAD, STATE),
                      (single, gsingle, ssingle))
    _run_batches(o, batches)


def rmsprop_step(p, g, square_avg, *, lr, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, grad_avg=None, momentum_buffer=None,
                 maximize=False, l1=0.0, eps_in_sqrt=False):
    r"""One RMSprop step in place, torch.optim.RMSprop's update (plus ``eps_in_sqrt``).

    ::

        d   = (-g if maximize else g) + weight_decay * p + l1 * sign(p)
        sq  = alpha * sq + (1 - alpha) * d * d
        ga  = alpha * ga + (1 - alpha) * d                       if centered
        w   = sq - ga * ga if centered else sq
        den = sqrt(w + eps) if eps_in_sqrt else sqrt(w) + eps
        buf = momentum * buf + d / den;  p -= lr * buf           if momentum > 0
        p  -= lr * d / den                                       otherwise

    ``eps_in_sqrt=False`` is torch's placement (and cs231n's); True is optax's and keras'
    ``sqrt(v + eps)``.

    Parameters
    ----------
    p, g : ndarray or list of ndarray
        Parameters (updated in place) and gradients, as for :func:`adam_step`.
    square_avg : ndarray or list of ndarray
        Running average of squared gradients, updated in place (start from zeros).
    grad_avg : ndarray or list of ndarray
        Running average of gradients (required when centered), updated in place.
    momentum_buffer : ndarray or list of ndarray
        Required when momentum > 0 (start from zeros), updated in place.
    lr, weight_decay, momentum, l1 : float
        All >= 0.
    alpha : float
        Smoothing constant in [0, 1].
    eps : float
        > 0.
    centered, maximize, eps_in_sqrt : bool
    """
    cdef KernelOptions o = rmsprop_options(lr, alpha, eps, weight_decay, momentum, centered, l1,
                                           maximize, eps_in_sqrt)
    ps, single = _as_list(p, "p")
    gs, gsingle = _as_list(g, "g")
    ss, ssingle = _as_list(square_avg, "square_avg")
    gas = _optional(grad_avg, "grad_avg", single, o.rmsprop.centered, "when centered=True")
    bs = _optional(momentum_buffer, "momentum_buffer", single, o.rmsprop.momentum != 0.0,
                   "when momentum > 0")
    batches = prepare([ps, gs, ss, gas, bs],
                      ("p", "g", "square_avg", "grad_avg", "momentum_buffer"),
                      (PARAM, GRAD, STATE, STATE, STATE),
                      (single, gsingle, ssingle, single, single))
    _run_batches(o, batches)


def adadelta_step(p, g, square_avg, acc_delta, *, lr=1.0, rho=0.9, eps=1e-6,
                  weight_decay=0.0, maximize=False, l1=0.0):
    r"""One Adadelta step in place, torch.optim.Adadelta's update.

    ::

        d     = (-g if maximize else g) + weight_decay * p + l1 * sign(p)
        sq    = rho * sq + (1 - rho) * d * d
        delta = sqrt(acc + eps) / sqrt(sq + eps) * d
        acc   = rho * acc + (1 - rho) * delta * delta
        p    -= lr * delta

    Parameters
    ----------
    p, g : ndarray or list of ndarray
        Parameters (updated in place) and gradients, as for :func:`adam_step`.
    square_avg, acc_delta : ndarray or list of ndarray
        Running averages of squared gradients and squared updates, updated in place (start
        from zeros).
    lr, weight_decay, l1 : float
        All >= 0.
    rho : float
        In [0, 1].
    eps : float
        > 0 (inside both square roots, as torch).
    maximize : bool
    """
    cdef KernelOptions o = adadelta_options(lr, rho, eps, weight_decay, l1, maximize)
    ps, single = _as_list(p, "p")
    gs, gsingle = _as_list(g, "g")
    ss, ssingle = _as_list(square_avg, "square_avg")
    acs, asingle = _as_list(acc_delta, "acc_delta")
    batches = prepare([ps, gs, ss, acs], ("p", "g", "square_avg", "acc_delta"),
                      (PARAM, GRAD, STATE, STATE), (single, gsingle, ssingle, asingle))
    _run_batches(o, batches)


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


# ---------------------------------------------------------------------------------------
# StepPlan: cached pointer tables of an optimizer's params and state
# ---------------------------------------------------------------------------------------

cdef class _Steps:
    """Per-tensor step counters of one batch: pointers into 0-d int64 arrays (the `step`
    entries of the optimizer's state) and the values t = counter + 1 passed to C."""
    cdef int64_t **ptrs
    cdef int64_t *values
    cdef Py_ssize_t count

    def __dealloc__(self):
        free(self.ptrs)
        free(self.values)


cdef class StepPlan:
    """Validated pointer tables for the params and state of an optimizer, by unit.

    A unit is one kernel call's worth of tensors (a param group, or part of one): its
    params, its state columns (a list of arrays, or None for a column the call does not
    use) and optionally per-tensor step counters (0-d int64 arrays). Building a plan checks
    every array (dtype, shape, writeable, contiguous) and that no two written arrays of the
    whole optimizer overlap. A step then only needs :meth:`bind` (check the gradients and
    put their pointers in the tables), :meth:`all_finite` (optional), :meth:`run` per unit
    and :meth:`advance` (add 1 to the step counters of every tensor).
    """
    cdef list units          # per unit: list [b32 or None, b64 or None]
    cdef list unit_steps     # per unit: [_Steps or None, _Steps or None]
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
    # every written array (params, states): data and size, for the overlap checks
    cdef void **w_data
    cdef Py_ssize_t *w_size
    # written spans sorted by start, for the gradient overlap check:
    cdef uintptr_t *s_start
    cdef uintptr_t *s_end
    cdef Py_ssize_t nspans
    cdef bint bound

    def __dealloc__(self):
        free(self.slot_param)
        free(self.slot_ptr)
        free(self.slot_data)
        free(self.slot_size)
        free(self.w_data)
        free(self.w_size)
        free(self.s_start)
        free(self.s_end)

    def __init__(self, list units, list names=None):
        """units: list of (params, state_columns, steps); names: state names per unit (for
        messages)."""
        cdef Py_ssize_t total = 0, nwritten = 0, i, k, j, u
        cdef int which, c, ncols
        cdef cnp.ndarray p, a
        cdef Batch b
        cdef _Steps st
        if self.slot_param != NULL:
            raise RuntimeError("StepPlan: already initialised")
        self.units, self.unit_steps, self.unit_masks, self.unit_params = [], [], [], []
        self.unit_ncols = []
        self.keep, self.grad_keep = [], []
        for unit in units:
            params, columns, steps = unit
            total += len(params)
            nwritten += len(params) + sum(len(params) for col in columns if col is not None)
        self.total = total
        self.nwritten = nwritten
        self.slot_param = <PyObject **>malloc((total + 1) * sizeof(PyObject *))
        self.slot_ptr = <void ***>malloc((total + 1) * sizeof(void **))
        self.slot_data = <void **>malloc((total + 1) * sizeof(void *))
        self.slot_size = <Py_ssize_t *>malloc((total + 1) * sizeof(Py_ssize_t))
        self.w_data = <void **>malloc((nwritten + 1) * sizeof(void *))
        self.w_size = <Py_ssize_t *>malloc((nwritten + 1) * sizeof(Py_ssize_t))
        if (self.slot_param == NULL or self.slot_ptr == NULL or self.slot_data == NULL
                or self.slot_size == NULL or self.w_data == NULL or self.w_size == NULL):
            raise MemoryError()
        cdef Py_ssize_t slot = 0, w = 0
        cdef int mask
        for u in range(len(units)):
            params, columns, steps = units[u]
            params = list(params)
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
            # Map each param of the unit to its batch slot, and its step counter.
            stepobjs = [None, None]
            counters = [0, 0]
            if steps is not None:
                steps = list(steps)
                if len(steps) != len(params):
                    raise ValueError("steps: expected one counter per parameter")
                for which in range(2):
                    if batches[which] is not None:
                        st = _Steps.__new__(_Steps)
                        st.count = (<Batch>batches[which]).count
                        st.ptrs = <int64_t **>malloc((st.count + 1) * sizeof(int64_t *))
                        st.values = <int64_t *>malloc((st.count + 1) * sizeof(int64_t))
                        if st.ptrs == NULL or st.values == NULL:
                            raise MemoryError()
                        stepobjs[which] = st
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
                    a = _check_counter(steps[i], i)
                    (<_Steps>stepobjs[which]).ptrs[j] = <int64_t *>cnp.PyArray_DATA(a)
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
            self.keep.append((params, columns, steps))
        self._sort_spans()
        self.bound = False

    cdef void _add_written(self, Py_ssize_t w, cnp.ndarray a):
        self.w_data[w] = cnp.PyArray_DATA(a)
        self.w_size[w] = cnp.PyArray_NBYTES(a)

    cdef void _sort_spans(self) except *:
        cdef Py_ssize_t i, m = 0
        cdef Span *spans = <Span *>malloc((self.nwritten + 1) * sizeof(Span))
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
            qsort(spans, m, sizeof(Span), _span_cmp)
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

    cdef bint _overlaps_written(self, uintptr_t start, uintptr_t end) noexcept nogil:
        """Whether [start, end) overlaps any written span (binary search on sorted spans)."""
        cdef Py_ssize_t lo = 0, hi = self.nspans, mid
        if start >= end:
            return False
        # first span whose end > start
        while lo < hi:
            mid = (lo + hi) // 2
            if self.s_end[mid] <= start:
                lo = mid + 1
            else:
                hi = mid
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

    def bind(self, list grads, list indices=None):
        """Check the gradients (one per param, in unit order) and put their pointers in the
        tables. Returns False, binding nothing, if an entry is None. Raises TypeError /
        ValueError naming ``grads[i]`` (i from `indices` when given) for a bad one."""
        cdef Py_ssize_t i, n = self.total
        cdef object g
        cdef cnp.ndarray a, p
        cdef uintptr_t start
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
            if (not cnp.PyArray_Check(g) or cnp.PyArray_TYPE(<cnp.ndarray>g) != cnp.PyArray_TYPE(p)
                    or not _same_shape(<cnp.ndarray>g, p)):
                _check_array(g, f"grads[{i if indices is None else indices[i]}]", GRAD, p,
                             f"params[{i if indices is None else indices[i]}]")
            a = <cnp.ndarray>g
            if _needs_copy(a):
                a = <cnp.ndarray>_contiguous_copy(a)  # aligned, 0-d stays 0-d
                self.grad_keep.append(a)
            start = <uintptr_t>cnp.PyArray_DATA(a)
            if self._overlaps_written(start, start + <uintptr_t>cnp.PyArray_NBYTES(a)):
                raise ValueError(
                    f"grads[{i if indices is None else indices[i]}]: shares memory with a "
                    "parameter or state array of this optimizer, which the step updates in "
                    "place; pass a separate array (e.g. g.copy())")
            self.slot_ptr[i][0] = cnp.PyArray_DATA(a)
        self.grad_keep.append(grads)
        self.bound = True
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

    def run(self, Py_ssize_t u, KernelOptions o):
        """Run o's kernel over unit u with the bound gradients (GIL released). Each tensor
        with a step counter gets t = counter + 1; the counters are not changed here."""
        global _last_threads_used
        if not self.bound:
            raise RuntimeError("StepPlan.run: no gradients bound")
        if o.used_mask != <int>self.unit_masks[u] or o.nstates != <int>self.unit_ncols[u]:
            raise ValueError(f"{_FAMILY_NAMES[o.family]}: the options use other state arrays "
                             "than this plan holds")
        cdef int which, status
        cdef Py_ssize_t j
        cdef Batch b
        cdef _Steps st
        cdef const int64_t *steps
        cdef int nthreads = current_threads()
        cdef list batches = <list>self.units[u]
        cdef list stepobjs = <list>self.unit_steps[u]
        for which in range(2):
            if batches[which] is None:
                continue
            b = <Batch>batches[which]
            steps = NULL
            if stepobjs[which] is not None:
                st = <_Steps>stepobjs[which]
                for j in range(st.count):
                    st.values[j] = st.ptrs[j][0] + 1
                steps = st.values
            with nogil:
                status = _dispatch(o, b, steps, nthreads)
            _last_threads_used = b.layout.threads_used
            check_status(status, _FAMILY_NAMES[o.family])

    def advance(self):
        """Add 1 to the step counter of every tensor of the plan and drop the bound grads."""
        cdef Py_ssize_t u, j
        cdef int which
        cdef _Steps st
        for u in range(len(self.unit_steps)):
            for which in range(2):
                obj = (<list>self.unit_steps[u])[which]
                if obj is not None:
                    st = <_Steps>obj
                    for j in range(st.count):
                        st.ptrs[j][0] += 1
        self.release()

    def release(self):
        """Drop the references to this step's gradients."""
        self.grad_keep = []
        self.bound = False


cdef cnp.ndarray _check_counter(object a, Py_ssize_t i):
    if (not isinstance(a, np.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray>a) != cnp.NPY_INT64
            or cnp.PyArray_SIZE(<cnp.ndarray>a) != 1 or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>a)
            or not cnp.PyArray_ISBEHAVED(<cnp.ndarray>a) or not a.dtype.isnative):
        raise TypeError(f"steps[{i}]: expected a writeable 0-d int64 array")
    return <cnp.ndarray>a


# ---------------------------------------------------------------------------------------
# Public single-tensor entry points (declared in _kernels.pxd)
# ---------------------------------------------------------------------------------------

cdef int adam_step_f32(float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                       float *max_exp_avg_sq, Py_ssize_t n, int64_t step, double lr,
                       double beta1, double beta2, double eps, double weight_decay, double l1,
                       bint decoupled, bint maximize, int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef fo_adam_options o
    if n < 0 or step < 1:
        return FO_ERR_ARGUMENT
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.l1 = lr, beta1, beta2, eps, weight_decay, l1
    o.step, o.steps = step, NULL
    o.amsgrad, o.decoupled, o.maximize = max_exp_avg_sq != NULL, decoupled, maximize
    return fo_adam_step_f32(&layout, &param, &grad, &exp_avg, &exp_avg_sq, &max_exp_avg_sq,
                            &o, nthreads)


cdef int adam_step_f64(double *param, const double *grad, double *exp_avg, double *exp_avg_sq,
                       double *max_exp_avg_sq, Py_ssize_t n, int64_t step, double lr,
                       double beta1, double beta2, double eps, double weight_decay, double l1,
                       bint decoupled, bint maximize, int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef fo_adam_options o
    if n < 0 or step < 1:
        return FO_ERR_ARGUMENT
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.l1 = lr, beta1, beta2, eps, weight_decay, l1
    o.step, o.steps = step, NULL
    o.amsgrad, o.decoupled, o.maximize = max_exp_avg_sq != NULL, decoupled, maximize
    return fo_adam_step_f64(&layout, &param, &grad, &exp_avg, &exp_avg_sq, &max_exp_avg_sq,
                            &o, nthreads)


cdef int adagrad_step_f32(float *param, const float *grad, float *state_sum, Py_ssize_t n,
                          int64_t step, double lr, double lr_decay, double weight_decay,
                          double eps, double l1, bint maximize, int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef fo_adagrad_options o
    if n < 0 or step < 1:
        return FO_ERR_ARGUMENT
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    o.lr, o.lr_decay, o.weight_decay, o.eps, o.l1 = lr, lr_decay, weight_decay, eps, l1
    o.step, o.steps, o.maximize = step, NULL, maximize
    return fo_adagrad_step_f32(&layout, &param, &grad, &state_sum, &o, nthreads)


cdef int adagrad_step_f64(double *param, const double *grad, double *state_sum, Py_ssize_t n,
                          int64_t step, double lr, double lr_decay, double weight_decay,
                          double eps, double l1, bint maximize, int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef fo_adagrad_options o
    if n < 0 or step < 1:
        return FO_ERR_ARGUMENT
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    o.lr, o.lr_decay, o.weight_decay, o.eps, o.l1 = lr, lr_decay, weight_decay, eps, l1
    o.step, o.steps, o.maximize = step, NULL, maximize
    return fo_adagrad_step_f64(&layout, &param, &grad, &state_sum, &o, nthreads)


cdef int rmsprop_step_f32(float *param, const float *grad, float *square_avg, float *grad_avg,
                          float *momentum_buffer, Py_ssize_t n, double lr, double alpha,
                          double eps, double weight_decay, double momentum, double l1,
                          bint maximize, bint eps_in_sqrt, int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef fo_rmsprop_options o
    if n < 0 or (momentum != 0.0 and momentum_buffer == NULL):
        return FO_ERR_ARGUMENT
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    o.lr, o.alpha, o.eps, o.weight_decay, o.momentum, o.l1 = (lr, alpha, eps, weight_decay,
                                                              momentum, l1)
    o.centered, o.maximize, o.eps_in_sqrt = grad_avg != NULL, maximize, eps_in_sqrt
    return fo_rmsprop_step_f32(&layout, &param, &grad, &square_avg, &grad_avg,
                               &momentum_buffer, &o, nthreads)


cdef int rmsprop_step_f64(double *param, const double *grad, double *square_avg,
                          double *grad_avg, double *momentum_buffer, Py_ssize_t n, double lr,
                          double alpha, double eps, double weight_decay, double momentum,
                          double l1, bint maximize, bint eps_in_sqrt,
                          int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef fo_rmsprop_options o
    if n < 0 or (momentum != 0.0 and momentum_buffer == NULL):
        return FO_ERR_ARGUMENT
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    o.lr, o.alpha, o.eps, o.weight_decay, o.momentum, o.l1 = (lr, alpha, eps, weight_decay,
                                                              momentum, l1)
    o.centered, o.maximize, o.eps_in_sqrt = grad_avg != NULL, maximize, eps_in_sqrt
    return fo_rmsprop_step_f64(&layout, &param, &grad, &square_avg, &grad_avg,
                               &momentum_buffer, &o, nthreads)


cdef int adadelta_step_f32(float *param, const float *grad, float *square_avg,
                           float *acc_delta, Py_ssize_t n, double lr, double rho, double eps,
                           double weight_decay, double l1, bint maximize,
                           int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef fo_adadelta_options o
    if n < 0:
        return FO_ERR_ARGUMENT
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    o.lr, o.rho, o.eps, o.weight_decay, o.l1, o.maximize = (lr, rho, eps, weight_decay, l1,
                                                             maximize)
    return fo_adadelta_step_f32(&layout, &param, &grad, &square_avg, &acc_delta, &o, nthreads)


cdef int adadelta_step_f64(double *param, const double *grad, double *square_avg,
                           double *acc_delta, Py_ssize_t n, double lr, double rho, double eps,
                           double weight_decay, double l1, bint maximize,
                           int nthreads) noexcept nogil:
    cdef fo_layout layout
    cdef int64_t offsets[2]
    cdef fo_adadelta_options o
    if n < 0:
        return FO_ERR_ARGUMENT
    nthreads = _one_tensor_layout(&layout, offsets, n, nthreads)
    o.lr, o.rho, o.eps, o.weight_decay, o.l1, o.maximize = (lr, rho, eps, weight_decay, l1,
                                                             maximize)
    return fo_adadelta_step_f64(&layout, &param, &grad, &square_avg, &acc_delta, &o, nthreads)


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
