# Public Cython interface of fastopt's kernels: `cimport fastopt._kernels` from another
# Cython extension and call these without the GIL and without linking to fastopt (they are
# exported through the module's C-API capsule). Pointers are trusted: the caller guarantees
# `n` valid, non-overlapping, aligned elements. Each returns 0 on success (enum fo_status).
# `nthreads` <= 0 means "fastopt's current thread setting".

from libc.stdint cimport int64_t

# -- SGD (see fastopt.kernels.sgd_step for the update rule) --
cdef int sgd_step_f32(float *param, const float *grad, float *momentum_buffer, Py_ssize_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      double l1, bint nesterov, bint maximize, bint first_step,
                      int nthreads) noexcept nogil
cdef int sgd_step_f64(double *param, const double *grad, double *momentum_buffer, Py_ssize_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      double l1, bint nesterov, bint maximize, bint first_step,
                      int nthreads) noexcept nogil

# -- Adam/AdamW, Adagrad, RMSprop, Adadelta (see fastopt.kernels.<name>_step for the rules) --
# `step` is the 1-based number of this update. Optional state pointers may be NULL: AMSGrad
# runs iff max_exp_avg_sq != NULL; RMSprop is centered iff grad_avg != NULL and needs
# momentum_buffer iff momentum != 0.
cdef int adam_step_f32(float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                       float *max_exp_avg_sq, Py_ssize_t n, int64_t step, double lr,
                       double beta1, double beta2, double eps, double weight_decay, double l1,
                       bint decoupled, bint maximize, int nthreads) noexcept nogil
cdef int adam_step_f64(double *param, const double *grad, double *exp_avg, double *exp_avg_sq,
                       double *max_exp_avg_sq, Py_ssize_t n, int64_t step, double lr,
                       double beta1, double beta2, double eps, double weight_decay, double l1,
                       bint decoupled, bint maximize, int nthreads) noexcept nogil
cdef int adagrad_step_f32(float *param, const float *grad, float *state_sum, Py_ssize_t n,
                          int64_t step, double lr, double lr_decay, double weight_decay,
                          double eps, double l1, bint maximize, int nthreads) noexcept nogil
cdef int adagrad_step_f64(double *param, const double *grad, double *state_sum, Py_ssize_t n,
                          int64_t step, double lr, double lr_decay, double weight_decay,
                          double eps, double l1, bint maximize, int nthreads) noexcept nogil
cdef int rmsprop_step_f32(float *param, const float *grad, float *square_avg, float *grad_avg,
                          float *momentum_buffer, Py_ssize_t n, double lr, double alpha,
                          double eps, double weight_decay, double momentum, double l1,
                          bint maximize, bint eps_in_sqrt, int nthreads) noexcept nogil
cdef int rmsprop_step_f64(double *param, const double *grad, double *square_avg,
                          double *grad_avg, double *momentum_buffer, Py_ssize_t n, double lr,
                          double alpha, double eps, double weight_decay, double momentum,
                          double l1, bint maximize, bint eps_in_sqrt,
                          int nthreads) noexcept nogil
cdef int adadelta_step_f32(float *param, const float *grad, float *square_avg,
                           float *acc_delta, Py_ssize_t n, double lr, double rho, double eps,
                           double weight_decay, double l1, bint maximize,
                           int nthreads) noexcept nogil
cdef int adadelta_step_f64(double *param, const double *grad, double *square_avg,
                           double *acc_delta, Py_ssize_t n, double lr, double rho, double eps,
                           double weight_decay, double l1, bint maximize,
                           int nthreads) noexcept nogil
# 1 if all n elements are finite, 0 if one is NaN/Inf, -1 for a bad argument.
cdef int all_finite_f32(const float *x, Py_ssize_t n, int nthreads) noexcept nogil
cdef int all_finite_f64(const double *x, Py_ssize_t n, int nthreads) noexcept nogil

# -- dropout and batch norm (issue: layers) --

# -- linear algebra for quasi-Newton (issue: minimize) --
