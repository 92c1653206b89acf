# Public Cython interface of fastopt's kernels: `cimport fastopt._kernels` from another
# Cython extension and call these without the GIL and without linking to fastopt (they are
# exported through the module's C-API capsule). Pointers are trusted: the caller guarantees
# `n` valid, non-overlapping, aligned elements. Each returns 0 on success (enum fo_status).
# `nthreads` <= 0 means "fastopt's current thread setting".

from libc.stdint cimport int64_t

# -- the optimizer families: <family>_step_f32/f64 for every family of
#    fastopt/optim/families.py (generated at build time from that table) --
include "_families_decl.pxi"

# 1 if all n elements are finite, 0 if one is NaN/Inf, -1 for a bad argument.
cdef int all_finite_f32(const float *x, Py_ssize_t n, int nthreads) noexcept nogil
cdef int all_finite_f64(const double *x, Py_ssize_t n, int nthreads) noexcept nogil

# -- dropout and batch norm (see fastopt.nn and csrc/nn.h) --
# p is the DROP probability; keep decisions come from Philox stream (seed, stream); `bits`
# (may be NULL) receives/holds them packed, (n + 63) // 64 words; backward with bits NULL
# regenerates them. batch_norm_*: x viewed as (n, c, s); gamma/beta/running stats may be NULL;
# momentum is the weight of the new batch (torch); unbiased: running_var gets var*M/(M-1).
from libc.stdint cimport uint64_t
cdef int dropout_forward_f32(const float *x, float *y, uint64_t *bits, Py_ssize_t n, double p,
                             uint64_t seed, uint64_t stream, int nthreads) noexcept nogil
cdef int dropout_forward_f64(const double *x, double *y, uint64_t *bits, Py_ssize_t n, double p,
                             uint64_t seed, uint64_t stream, int nthreads) noexcept nogil
cdef int dropout_backward_f32(const float *dy, float *dx, const uint64_t *bits, Py_ssize_t n,
                              double p, uint64_t seed, uint64_t stream,
                              int nthreads) noexcept nogil
cdef int dropout_backward_f64(const double *dy, double *dx, const uint64_t *bits, Py_ssize_t n,
                              double p, uint64_t seed, uint64_t stream,
                              int nthreads) noexcept nogil
cdef int batch_norm_forward_f32(const float *x, float *y, Py_ssize_t n, Py_ssize_t c,
                                Py_ssize_t s, const float *gamma, const float *beta,
                                float *running_mean, float *running_var, double *mean,
                                double *invstd, double eps, double momentum, bint training,
                                bint unbiased, int nthreads) noexcept nogil
cdef int batch_norm_forward_f64(const double *x, double *y, Py_ssize_t n, Py_ssize_t c,
                                Py_ssize_t s, const double *gamma, const double *beta,
                                double *running_mean, double *running_var, double *mean,
                                double *invstd, double eps, double momentum, bint training,
                                bint unbiased, int nthreads) noexcept nogil
cdef int batch_norm_backward_f32(const float *dy, const float *x, float *dx, Py_ssize_t n,
                                 Py_ssize_t c, Py_ssize_t s, const float *gamma,
                                 const double *mean, const double *invstd, bint training,
                                 float *dgamma, float *dbeta, int nthreads) noexcept nogil
cdef int batch_norm_backward_f64(const double *dy, const double *x, double *dx, Py_ssize_t n,
                                 Py_ssize_t c, Py_ssize_t s, const double *gamma,
                                 const double *mean, const double *invstd, bint training,
                                 double *dgamma, double *dbeta, int nthreads) noexcept nogil

# -- linear algebra for quasi-Newton (see fastopt._kernels.dot, axpy,
#    lbfgs_two_loop for the semantics). `result`/`out` are written; dots accumulate in double.
cdef int dot_f32(const float *x, const float *y, Py_ssize_t n, double *result,
                 int nthreads) noexcept nogil
cdef int dot_f64(const double *x, const double *y, Py_ssize_t n, double *result,
                 int nthreads) noexcept nogil
cdef int axpy_f32(double a, const float *x, const float *y, float *out, Py_ssize_t n,
                  int nthreads) noexcept nogil
cdef int axpy_f64(double a, const double *x, const double *y, double *out, Py_ssize_t n,
                  int nthreads) noexcept nogil
cdef int lbfgs_pair_f32(const float *x1, const float *x0, const float *g1, const float *g0,
                        float *s, float *y, Py_ssize_t n, double *sy, double *yy,
                        int nthreads) noexcept nogil
cdef int lbfgs_pair_f64(const double *x1, const double *x0, const double *g1,
                        const double *g0, double *s, double *y, Py_ssize_t n, double *sy,
                        double *yy, int nthreads) noexcept nogil
cdef int lbfgs_two_loop_f32(const float *S, const float *Y, const double *rho,
                            Py_ssize_t slots, Py_ssize_t count, Py_ssize_t newest,
                            double gamma, const float *g, float *out, Py_ssize_t n,
                            bint negate, int nthreads) noexcept nogil
cdef int lbfgs_two_loop_f64(const double *S, const double *Y, const double *rho,
                            Py_ssize_t slots, Py_ssize_t count, Py_ssize_t newest,
                            double gamma, const double *g, double *out, Py_ssize_t n,
                            bint negate, int nthreads) noexcept nogil
