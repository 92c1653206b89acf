# Public Cython interface of fastopt's kernels: `cimport fastopt._kernels` from another
# Cython extension and call these without the GIL and without linking to fastopt (they are
# exported through the module's C-API capsule). Pointers are trusted: the caller guarantees
# `n` valid, non-overlapping, aligned elements. Each returns 0 on success (enum fo_status).
# `nthreads` <= 0 means "fastopt's current thread setting".

# -- SGD (see fastopt.kernels.sgd_step for the update rule) --
cdef int sgd_step_f32(float *param, const float *grad, float *momentum_buffer, Py_ssize_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      double l1, bint nesterov, bint maximize, bint first_step,
                      int nthreads) noexcept nogil
cdef int sgd_step_f64(double *param, const double *grad, double *momentum_buffer, Py_ssize_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      double l1, bint nesterov, bint maximize, bint first_step,
                      int nthreads) noexcept nogil

# -- other optimizers (issue: all first-order optimizers) --

# -- dropout and batch norm (issue: layers) --

# -- linear algebra for quasi-Newton (issue: minimize; see fastopt._kernels.dot, axpy,
#    lbfgs_two_loop for the semantics). `result`/`out` are written; dots accumulate in double.
cdef int dot_f32(const float *x, const float *y, Py_ssize_t n, double *result,
                 int nthreads) noexcept nogil
cdef int dot_f64(const double *x, const double *y, Py_ssize_t n, double *result,
                 int nthreads) noexcept nogil
cdef int axpy_f32(double a, const float *x, const float *y, float *out, Py_ssize_t n,
                  int nthreads) noexcept nogil
cdef int axpy_f64(double a, const double *x, const double *y, double *out, Py_ssize_t n,
                  int nthreads) noexcept nogil
cdef int lbfgs_two_loop_f32(const float *S, const float *Y, const double *rho,
                            Py_ssize_t slots, Py_ssize_t count, Py_ssize_t newest,
                            double gamma, const float *g, float *out, Py_ssize_t n,
                            bint negate, int nthreads) noexcept nogil
cdef int lbfgs_two_loop_f64(const double *S, const double *Y, const double *rho,
                            Py_ssize_t slots, Py_ssize_t count, Py_ssize_t newest,
                            double gamma, const double *g, double *out, Py_ssize_t n,
                            bint negate, int nthreads) noexcept nogil
