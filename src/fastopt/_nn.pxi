# _nn.pxi — boundary for the layer kernels: dropout (csrc/dropout.c), batch normalization
# (csrc/batchnorm.c) and the Philox generator behind dropout (csrc/philox.h).
#
# These functions check everything (dtypes, shapes, contiguity, writeability, overlap,
# hyperparameter ranges) and allocate missing outputs; fastopt.nn adds the friendly API
# (seeds, mask and cache objects, layer classes) on top of them.

from libc.stdint cimport uint32_t, uint64_t

cdef extern from "philox.h" nogil:
    void fo_philox4x32_10(const uint32_t *ctr, const uint32_t *key, uint32_t *out)

cdef extern from "nn.h" nogil:
    int fo_dropout_forward_f32(const float *x, float *y, uint64_t *bits, int64_t n, double p,
                               uint64_t seed, uint64_t stream, int nthreads)
    int fo_dropout_forward_f64(const double *x, double *y, uint64_t *bits, int64_t n, double p,
                               uint64_t seed, uint64_t stream, int nthreads)
    int fo_dropout_backward_f32(const float *dy, float *dx, const uint64_t *bits, int64_t n,
                                double p, uint64_t seed, uint64_t stream, int nthreads)
    int fo_dropout_backward_f64(const double *dy, double *dx, const uint64_t *bits, int64_t n,
                                double p, uint64_t seed, uint64_t stream, int nthreads)
    int fo_philox_fill(uint32_t *out, int64_t n, uint64_t seed, uint64_t stream, int nthreads)

    ctypedef struct fo_batch_norm_options:
        double eps
        double momentum
        int training
        int unbiased
    int fo_batch_norm_forward_f32(const float *x, float *y, int64_t n, int64_t c, int64_t s,
                                  const float *gamma, const float *beta, float *running_mean,
                                  float *running_var, double *mean, double *invstd,
                                  const fo_batch_norm_options *options, int nthreads)
    int fo_batch_norm_forward_f64(const double *x, double *y, int64_t n, int64_t c, int64_t s,
                                  const double *gamma, const double *beta,
                                  double *running_mean, double *running_var, double *mean,
                                  double *invstd, const fo_batch_norm_options *options,
                                  int nthreads)
    int fo_batch_norm_backward_f32(const float *dy, const float *x, float *dx, int64_t n,
                                   int64_t c, int64_t s, const float *gamma, const double *mean,
                                   const double *invstd, int training, float *dgamma,
                                   float *dbeta, int nthreads)
    int fo_batch_norm_backward_f64(const double *dy, const double *x, double *dx, int64_t n,
                                   int64_t c, int64_t s, const double *gamma,
                                   const double *mean, const double *invstd, int training,
                                   double *dgamma, double *dbeta, int nthreads)


# -- helpers for calls on single arrays ------------------------------------------------------

cdef inline void *_data(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef object _readable(object a, str name, cnp.ndarray ref=None, str ref_name=None):
    """`a` checked as a float32/float64 input (same dtype/shape as `ref` when given); a
    contiguous native copy when C cannot read it directly."""
    _check_array(a, name, GRAD, ref, ref_name)
    if _needs_copy(<cnp.ndarray>a):
        return _contiguous_copy(<cnp.ndarray>a)  # aligned, and 0-d stays 0-d
    return a


cdef inline bint _readable_plain(cnp.ndarray a):
    return cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a) and a.dtype.isnative


cdef object _writable(object out, str name, cnp.ndarray ref, str ref_name):
    """A new array like `ref`, or `out` checked as a writeable C-contiguous array like it."""
    if out is None:
        return _new_output_like(ref)  # _memory.pxi: large ones on whole huge pages
    _check_array(out, name, STATE, ref, ref_name)
    return out


cdef object _vector(object a, str name, cnp.ndarray x, Py_ssize_t c, bint written):
    """A per-channel vector of x's dtype and shape (c,), or None."""
    if a is None:
        return None
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array or None, got {type(a).__name__}")
    if a.dtype.type is not x.dtype.type:  # byte order aside: read-only ones are converted
        raise TypeError(f"{name}: expected dtype {x.dtype} (the dtype of x), got {a.dtype}")
    if a.shape != (c,):
        raise ValueError(f"{name}: expected shape ({c},) (x.shape[1] channels), got {a.shape}")
    if written:
        _check_array(a, name, STATE, None, None)
        return a
    return _readable(a, name)


cdef void _refuse_overlap(list arrays, tuple names, tuple written) except *:
    """ValueError if an array that is written shares memory with another one (None skipped)."""
    cdef list cols = [None if a is None else [a] for a in arrays]
    cdef tuple roles = tuple(STATE if w else GRAD for w in written)
    _check_disjoint(cols, names, roles, (True,) * len(arrays), 1)


cdef uint64_t _check_u64(object value, str name) except? 0:
    """An int in [0, 2**64): a Python int in range takes the fast path, everything else (and
    every error) goes through fastopt._validation, the one statement of the rules."""
    if type(value) is int and 0 <= value < 2 ** 64:
        return <uint64_t>value
    return <uint64_t>_validation.check_uint64(value, name)


cdef uint32_t _check_u32(object value, str name) except? 0:
    if type(value) is int and 0 <= value < 2 ** 32:
        return <uint32_t>value
    return <uint32_t>_validation.check_int(value, name, 0, 2 ** 32, closed="left")


cdef double _check_drop_p(object p) except? -1.0:
    return check_real(p, "p", 0.0, 1.0, False, True)


cdef inline Py_ssize_t _tiles(Py_ssize_t n) noexcept:
    """Number of 64-bit words of packed keep bits for n elements."""
    return (n + 63) // 64


# -- Philox ----------------------------------------------------------------------------------

def philox4x32_10(ctr, key):
    """Philox4x32-10 of one 128-bit counter (4 words) under a 64-bit key (2 words).

    The reference function behind fastopt's dropout, exposed to check it against Random123's
    known-answer vectors. Returns a tuple of 4 ints.
    """
    cdef uint32_t c[4]
    cdef uint32_t k[2]
    cdef uint32_t o[4]
    cdef int i
    for name, words in (("ctr", ctr), ("key", key)):
        if isinstance(words, (str, bytes)) or not hasattr(words, "__iter__"):
            raise TypeError(f"{name}: expected a sequence of 32-bit words, got "
                            f"{type(words).__name__}")
    ctr, key = list(ctr), list(key)
    if len(ctr) != 4 or len(key) != 2:
        raise ValueError(f"ctr, key: expected 4 and 2 words, got {len(ctr)} and {len(key)}")
    for i in range(4):
        c[i] = _check_u32(ctr[i], "ctr")
    for i in range(2):
        k[i] = _check_u32(key[i], "key")
    fo_philox4x32_10(c, k, o)
    return (o[0], o[1], o[2], o[3])


def philox_stream(n, seed, stream=0):
    """The first `n` 32-bit words of stream (seed, stream), in dropout's element order.

    Element i of a dropout call with this seed and stream is kept iff word i >= the integer
    threshold of p (``floor(p * 2**32)``).
    """
    cdef uint64_t s = _check_u64(seed, "seed"), st = _check_u64(stream, "stream")
    cdef uint64_t n64 = _check_u64(n, "n")
    limit = np.iinfo(np.intp).max // 4           # the words' bytes must stay addressable
    if n64 > limit:
        raise ValueError(f"n: expected at most {limit} words, got {n}")
    cdef Py_ssize_t m = <Py_ssize_t>n64
    cdef cnp.ndarray out = np.empty(m, np.uint32)
    cdef int status, nthreads = current_threads()
    with nogil:
        status = fo_philox_fill(<uint32_t *>cnp.PyArray_DATA(out), m, s, st, nthreads)
    check_status(status, "philox_stream")
    return out


# -- dropout ---------------------------------------------------------------------------------

def check_dropout_p(p):
    """p as a float, or TypeError/ValueError unless 0 <= p < 1."""
    return _check_drop_p(p)


cdef object _identity(object a, object out, str name):
    """a itself (no copy), or a copied into out (checked like a kernel output)."""
    if out is None:
        return a
    _check_array(out, "out", STATE, <cnp.ndarray>a, name)
    if _data(out) != _data(a):  # exactly in place is fine, partly overlapping is not
        _refuse_overlap([a, out], (name, "out"), (False, True))
    np.copyto(out, a)
    return out


cdef tuple _dropout_apply(object a, str name, object out, double p, object seed, object stream,
                          object bits, bint make_bits):
    """(out, new bits): out = a * keep / (1 - p), keep read from `bits` when given, else from
    Philox stream (seed, stream) (then packed into new bits when make_bits)."""
    cdef uint64_t s = _check_u64(seed, "seed"), st = _check_u64(stream, "stream")
    aa = _readable(a, name)
    y = _writable(out, "out", <cnp.ndarray>aa, name)
    if _data(y) != _data(aa):  # exactly in place is fine, partly overlapping is not
        _refuse_overlap([aa, bits, y], (name, "mask", "out"), (False, False, True))
    elif bits is not None:
        _refuse_overlap([bits, y], ("mask", "out"), (False, True))
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>aa)
    new_bits = np.empty(_tiles(n), np.uint64) if make_bits else None
    cdef int status, nthreads = current_threads()
    cdef bint f32 = cnp.PyArray_TYPE(<cnp.ndarray>aa) == cnp.NPY_FLOAT
    cdef void *ap = _data(aa)
    cdef void *yp = _data(y)
    cdef uint64_t *nb = <uint64_t *>_data(new_bits)
    cdef const uint64_t *ob = <const uint64_t *>_data(bits)
    with nogil:
        if ob != NULL and f32:
            status = fo_dropout_backward_f32(<const float *>ap, <float *>yp, ob, n, p, s, st,
                                             nthreads)
        elif ob != NULL:
            status = fo_dropout_backward_f64(<const double *>ap, <double *>yp, ob, n, p, s, st,
                                             nthreads)
        elif f32:
            status = fo_dropout_forward_f32(<const float *>ap, <float *>yp, nb, n, p, s, st,
                                            nthreads)
        else:
            status = fo_dropout_forward_f64(<const double *>ap, <double *>yp, nb, n, p, s, st,
                                            nthreads)
    check_status(status, "dropout")
    return y, new_bits


def dropout_forward(x, p, seed, stream, out=None, pack=True, training=True):
    """y = x * keep / (1 - p) with keep decisions from Philox stream (seed, stream).

    Returns (y, bits): bits is the uint64 array of packed keep decisions when `pack` is true
    (bit i % 64 of word i // 64), else None. `out` may be x itself (in place). With
    training=False or p == 0 nothing is dropped: y is x itself, or x copied into `out`, and
    bits is None (seed and stream are not looked at).
    """
    cdef double pp = _check_drop_p(p)
    cdef bint train = check_bool(training, "training")
    cdef bint want_bits = check_bool(pack, "pack")
    _check_array(x, "x", GRAD, None, None)
    if not train or pp == 0.0:
        return _identity(x, out, "x"), None
    return _dropout_apply(x, "x", out, pp, seed, stream, None, want_bits)


def dropout_backward(dy, shape, p, seed, stream, bits=None, out=None):
    """dx = dy * keep / (1 - p): keep from packed `bits`, or regenerated from (seed, stream).
    With p == 0 (a mask that keeps everything) dx is dy itself, or dy copied into `out`."""
    cdef double pp = _check_drop_p(p)
    _check_array(dy, "dy", GRAD, None, None)
    if tuple(dy.shape) != tuple(shape):
        raise ValueError(f"dy: expected shape {tuple(shape)} (the shape of the mask), "
                         f"got {dy.shape}")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>dy)
    if bits is not None:
        if not isinstance(bits, np.ndarray) or bits.dtype != np.uint64 or bits.ndim != 1 \
                or bits.shape[0] != _tiles(n) or not _readable_plain(bits):
            raise ValueError(f"mask: expected {_tiles(n)} packed uint64 words for {n} elements")
    if pp == 0.0:
        return _identity(dy, out, "dy")
    return _dropout_apply(dy, "dy", out, pp, seed, stream, bits, False)[0]


# -- batch normalization ---------------------------------------------------------------------

cdef tuple _bn_view(cnp.ndarray x):
    """(n, c, s) of x viewed as (N, C, prod(spatial))."""
    if x.ndim < 2:
        raise ValueError(f"x: expected shape (N, C) or (N, C, *spatial), got {(<object>x).shape}")
    cdef Py_ssize_t s = 1, k
    for k in range(2, x.ndim):
        s *= x.shape[k]
    return x.shape[0], x.shape[1], s


cdef double _bn_momentum(object momentum, object convention, object num_batches_tracked) except? -1.0:
    """The weight of this batch in the running averages, from the user's conventions."""
    _validation.check_choice(convention, "convention", ("torch", "cs231n"))
    if momentum is None:
        if convention != "torch":
            raise ValueError("momentum: expected a number with convention='cs231n' (None, the "
                             "cumulative average, needs convention='torch'), got None")
        if num_batches_tracked is None:
            raise TypeError("num_batches_tracked: expected the number of batches already "
                            "tracked, an int >= 0 (momentum=None, the cumulative average, "
                            "needs it), got None")
        count = _validation.check_int(num_batches_tracked, "num_batches_tracked", 0)
        return 1.0 / (float(count) + 1.0)
    cdef double m = check_real(momentum, "momentum", 0.0, 1.0)
    return m if convention == "torch" else 1.0 - m


def batch_norm_options(momentum, eps, convention="torch", num_batches_tracked=0):
    """Validate batch-norm hyperparameters early (the layer's constructor); returns
    (weight of the new batch in the running averages, eps)."""
    w = _bn_momentum(momentum, convention, num_batches_tracked)
    return w, check_real(eps, "eps", 0.0, np.inf, True, True)


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                       convention="torch", num_batches_tracked=None, out=None):
    """Batch normalization forward; returns (y, x_read, mean, invstd).

    x_read is x or the contiguous copy the kernel read; mean and invstd (float64, per channel)
    are the statistics the output was normalized with (batch or running).
    """
    cdef bint train = check_bool(training, "training")
    cdef fo_batch_norm_options o
    o.eps = check_real(eps, "eps", 0.0, np.inf, True, True)
    o.momentum = _bn_momentum(momentum, convention, num_batches_tracked)
    o.training = train
    o.unbiased = convention == "torch"
    xa = _readable(x, "x")
    cdef Py_ssize_t n, c, s
    n, c, s = _bn_view(<cnp.ndarray>xa)
    params = [a for a in (gamma, beta, running_mean, running_var) if isinstance(a, np.ndarray)]
    if params and all(a.dtype.type is params[0].dtype.type is not xa.dtype.type for a in params):
        raise TypeError(f"x: expected dtype {params[0].dtype} (the dtype of gamma, beta and the "
                        f"running statistics), got {xa.dtype}")
    g = _vector(gamma, "gamma", <cnp.ndarray>xa, c, False)
    b = _vector(beta, "beta", <cnp.ndarray>xa, c, False)
    rm = _vector(running_mean, "running_mean", <cnp.ndarray>xa, c, True)
    rv = _vector(running_var, "running_var", <cnp.ndarray>xa, c, True)
    if (rm is None) != (rv is None):
        raise ValueError("running_mean, running_var: pass both or neither")
    if not train and rm is None:
        raise ValueError("running_mean, running_var: required when training=False")
    if train and c > 0 and n * s <= 1:
        raise ValueError(f"x: expected more than 1 value per channel when training, got "
                         f"input shape {xa.shape}")
    y = _writable(out, "out", <cnp.ndarray>xa, "x")
    _refuse_overlap([xa, g, b, rm, rv, y],
                    ("x", "gamma", "beta", "running_mean", "running_var", "out"),
                    (False, False, False, True, True, True))
    cdef cnp.ndarray mean = np.empty(c, np.float64), invstd = np.empty(c, np.float64)
    cdef int status, nthreads = current_threads()
    cdef void *xp = _data(xa)
    cdef void *yp = _data(y)
    cdef void *gp = _data(g)
    cdef void *bp = _data(b)
    cdef void *rmp = _data(rm)
    cdef void *rvp = _data(rv)
    cdef double *mp = <double *>cnp.PyArray_DATA(mean)
    cdef double *ip = <double *>cnp.PyArray_DATA(invstd)
    if cnp.PyArray_TYPE(<cnp.ndarray>xa) == cnp.NPY_FLOAT:
        with nogil:
            status = fo_batch_norm_forward_f32(<const float *>xp, <float *>yp, n, c, s,
                                               <const float *>gp, <const float *>bp,
                                               <float *>rmp, <float *>rvp, mp, ip, &o, nthreads)
    else:
        with nogil:
            status = fo_batch_norm_forward_f64(<const double *>xp, <double *>yp, n, c, s,
                                               <const double *>gp, <const double *>bp,
                                               <double *>rmp, <double *>rvp, mp, ip, &o,
                                               nthreads)
    check_status(status, "batch_norm")
    return y, xa, mean, invstd


def batch_norm_backward(dy, x, gamma, mean, invstd, training, out=None, dgamma_out=None,
                        dbeta_out=None, need_dx=True, need_dgamma=True, need_dbeta=True):
    """Batch normalization backward from the forward's x, gamma, mean and invstd.

    Returns (dx, dgamma, dbeta), each None when not asked for.
    """
    cdef bint train = check_bool(training, "training")
    cdef bint want_dx = check_bool(need_dx, "need_dx")
    cdef bint want_dg = check_bool(need_dgamma, "need_dgamma")
    cdef bint want_db = check_bool(need_dbeta, "need_dbeta")
    _check_array(x, "x", GRAD, None, None)
    if _needs_copy(<cnp.ndarray>x):
        raise ValueError("x: expected the C-contiguous array the forward pass read")
    cdef Py_ssize_t n, c, s
    n, c, s = _bn_view(<cnp.ndarray>x)
    dya = _readable(dy, "dy", <cnp.ndarray>x, "x")
    g = _vector(gamma, "gamma", <cnp.ndarray>x, c, False)
    for arr, name in ((mean, "mean"), (invstd, "invstd")):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float64 or arr.shape != (c,) \
                or not _readable_plain(<cnp.ndarray>arr):
            raise ValueError(f"{name}: expected the forward's float64 statistics of shape ({c},)")
    dx = _writable(out, "out", <cnp.ndarray>x, "x") if want_dx else None
    dg = None
    db = None
    if want_dg:
        dg = np.empty(c, x.dtype) if dgamma_out is None else _vector(
            dgamma_out, "dgamma_out", <cnp.ndarray>x, c, True)
    if want_db:
        db = np.empty(c, x.dtype) if dbeta_out is None else _vector(
            dbeta_out, "dbeta_out", <cnp.ndarray>x, c, True)
    _refuse_overlap([dya, x, g, mean, invstd, dx, dg, db],
                    ("dy", "x", "gamma", "mean", "invstd", "out", "dgamma_out", "dbeta_out"),
                    (False, False, False, False, False, True, True, True))
    cdef int status, nthreads = current_threads()
    cdef void *gyp = _data(dya)
    cdef void *xp = _data(x)
    cdef void *dxp = _data(dx)
    cdef void *gp = _data(g)
    cdef void *dgp = _data(dg)
    cdef void *dbp = _data(db)
    cdef const double *mp = <const double *>_data(mean)
    cdef const double *ip = <const double *>_data(invstd)
    if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_FLOAT:
        with nogil:
            status = fo_batch_norm_backward_f32(<const float *>gyp, <const float *>xp,
                                                <float *>dxp, n, c, s, <const float *>gp, mp,
                                                ip, train, <float *>dgp, <float *>dbp, nthreads)
    else:
        with nogil:
            status = fo_batch_norm_backward_f64(<const double *>gyp, <const double *>xp,
                                                <double *>dxp, n, c, s, <const double *>gp, mp,
                                                ip, train, <double *>dgp, <double *>dbp,
                                                nthreads)
    check_status(status, "batch_norm_backward")
    return dx, dg, db


# -- cimportable nogil entry points (declared in _kernels.pxd) -------------------------------
# nthreads <= 0 means fastopt's current thread setting.

cdef inline int _threads_or_current(int nthreads) noexcept nogil:
    return nthreads if nthreads > 0 else current_threads()


cdef int dropout_forward_f32(const float *x, float *y, uint64_t *bits, Py_ssize_t n, double p,
                             uint64_t seed, uint64_t stream, int nthreads) noexcept nogil:
    return fo_dropout_forward_f32(x, y, bits, n, p, seed, stream, _threads_or_current(nthreads))


cdef int dropout_forward_f64(const double *x, double *y, uint64_t *bits, Py_ssize_t n, double p,
                             uint64_t seed, uint64_t stream, int nthreads) noexcept nogil:
    return fo_dropout_forward_f64(x, y, bits, n, p, seed, stream, _threads_or_current(nthreads))


cdef int dropout_backward_f32(const float *dy, float *dx, const uint64_t *bits, Py_ssize_t n,
                              double p, uint64_t seed, uint64_t stream,
                              int nthreads) noexcept nogil:
    return fo_dropout_backward_f32(dy, dx, bits, n, p, seed, stream,
                                   _threads_or_current(nthreads))


cdef int dropout_backward_f64(const double *dy, double *dx, const uint64_t *bits, Py_ssize_t n,
                              double p, uint64_t seed, uint64_t stream,
                              int nthreads) noexcept nogil:
    return fo_dropout_backward_f64(dy, dx, bits, n, p, seed, stream,
                                   _threads_or_current(nthreads))


cdef inline fo_batch_norm_options _bn_options(double eps, double momentum, bint training,
                                              bint unbiased) noexcept nogil:
    cdef fo_batch_norm_options o
    o.eps, o.momentum, o.training, o.unbiased = eps, momentum, training, unbiased
    return o


cdef int batch_norm_forward_f32(const float *x, float *y, Py_ssize_t n, Py_ssize_t c,
                                Py_ssize_t s, const float *gamma, const float *beta,
                                float *running_mean, float *running_var, double *mean,
                                double *invstd, double eps, double momentum, bint training,
                                bint unbiased, int nthreads) noexcept nogil:
    cdef fo_batch_norm_options o = _bn_options(eps, momentum, training, unbiased)
    return fo_batch_norm_forward_f32(x, y, n, c, s, gamma, beta, running_mean, running_var,
                                     mean, invstd, &o, _threads_or_current(nthreads))


cdef int batch_norm_forward_f64(const double *x, double *y, Py_ssize_t n, Py_ssize_t c,
                                Py_ssize_t s, const double *gamma, const double *beta,
                                double *running_mean, double *running_var, double *mean,
                                double *invstd, double eps, double momentum, bint training,
                                bint unbiased, int nthreads) noexcept nogil:
    cdef fo_batch_norm_options o = _bn_options(eps, momentum, training, unbiased)
    return fo_batch_norm_forward_f64(x, y, n, c, s, gamma, beta, running_mean, running_var,
                                     mean, invstd, &o, _threads_or_current(nthreads))


cdef int batch_norm_backward_f32(const float *dy, const float *x, float *dx, Py_ssize_t n,
                                 Py_ssize_t c, Py_ssize_t s, const float *gamma,
                                 const double *mean, const double *invstd, bint training,
                                 float *dgamma, float *dbeta, int nthreads) noexcept nogil:
    return fo_batch_norm_backward_f32(dy, x, dx, n, c, s, gamma, mean, invstd, training,
                                      dgamma, dbeta, _threads_or_current(nthreads))


cdef int batch_norm_backward_f64(const double *dy, const double *x, double *dx, Py_ssize_t n,
                                 Py_ssize_t c, Py_ssize_t s, const double *gamma,
                                 const double *mean, const double *invstd, bint training,
                                 double *dgamma, double *dbeta, int nthreads) noexcept nogil:
    return fo_batch_norm_backward_f64(dy, x, dx, n, c, s, gamma, mean, invstd, training,
                                      dgamma, dbeta, _threads_or_current(nthreads))
