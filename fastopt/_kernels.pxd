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

# -- linear algebra for quasi-Newton (issue: minimize) --
