/* optim.h — first-order optimizer kernels: one fused pass over param, grad and state.
 *
 * Every kernel comes as _f32 and _f64 and updates a list of tensors described by an
 * fo_layout in one call (work split by total elements across `nthreads` threads).
 * Scalar coefficients are computed once per call in double, then used in the array's
 * precision. */
#ifndef FASTOPT_OPTIM_H
#define FASTOPT_OPTIM_H

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SGD, torch.optim.SGD semantics (sgd.c):
 *   d = (maximize ? -g : g) + weight_decay * p + l1 * sign(p)
 *   momentum == 0: p -= lr * d
 *   otherwise:     buf = first_step ? d : momentum * buf + (1 - dampening) * d
 *                  p  -= lr * (nesterov ? d + momentum * buf : buf)
 * `buf` may be NULL when momentum == 0. */
typedef struct fo_sgd_options {
    double lr, momentum, dampening, weight_decay, l1;
    int nesterov, maximize, first_step;
} fo_sgd_options;

FO_API int fo_sgd_step_f32(fo_layout *layout, float *const *param, const float *const *grad,
                           float *const *buf, const fo_sgd_options *options, int nthreads);
FO_API int fo_sgd_step_f64(fo_layout *layout, double *const *param, const double *const *grad,
                           double *const *buf, const fo_sgd_options *options, int nthreads);

/* -- other optimizer families below (issue: all first-order optimizers) -- */

#ifdef __cplusplus
}
#endif

#endif
