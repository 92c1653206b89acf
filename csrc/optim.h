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

/* Adam and AdamW, torch.optim.Adam/AdamW semantics (adam.c). With t the step number of
 * this update (1 for the first):
 *   d    = (maximize ? -g : g) + [decoupled ? 0 : weight_decay] * p + l1 * sign(p)
 *   p    = decoupled ? p * (1 - lr * weight_decay) : p
 *   m    = beta1 * m + (1 - beta1) * d
 *   v    = beta2 * v + (1 - beta2) * d * d
 *   vmax = max(vmax, v)                                  (amsgrad; NaN-propagating)
 *   p   -= lr / (1 - beta1^t) * m / (sqrt(amsgrad ? vmax : v) / sqrt(1 - beta2^t) + eps)
 * `steps`, when not NULL, gives each tensor its own t (layout->count values) and `step` is
 * ignored. `max_exp_avg_sq` may be NULL unless amsgrad. */
typedef struct fo_adam_options {
    double lr, beta1, beta2, eps, weight_decay, l1;
    int64_t step;
    const int64_t *steps;
    int amsgrad, decoupled, maximize;
} fo_adam_options;

FO_API int fo_adam_step_f32(fo_layout *layout, float *const *param, const float *const *grad,
                            float *const *exp_avg, float *const *exp_avg_sq,
                            float *const *max_exp_avg_sq, const fo_adam_options *options,
                            int nthreads);
FO_API int fo_adam_step_f64(fo_layout *layout, double *const *param, const double *const *grad,
                            double *const *exp_avg, double *const *exp_avg_sq,
                            double *const *max_exp_avg_sq, const fo_adam_options *options,
                            int nthreads);

/* Adagrad, torch.optim.Adagrad semantics (adagrad.c). With t the step number (1 first):
 *   d   = (maximize ? -g : g) + weight_decay * p + l1 * sign(p)
 *   sum = sum + d * d
 *   p  -= lr / (1 + (t - 1) * lr_decay) * d / (sqrt(sum) + eps)
 * `steps` as for Adam. */
typedef struct fo_adagrad_options {
    double lr, lr_decay, weight_decay, eps, l1;
    int64_t step;
    const int64_t *steps;
    int maximize;
} fo_adagrad_options;

FO_API int fo_adagrad_step_f32(fo_layout *layout, float *const *param, const float *const *grad,
                               float *const *sum, const fo_adagrad_options *options,
                               int nthreads);
FO_API int fo_adagrad_step_f64(fo_layout *layout, double *const *param,
                               const double *const *grad, double *const *sum,
                               const fo_adagrad_options *options, int nthreads);

/* RMSprop, torch.optim.RMSprop semantics plus eps_in_sqrt (rmsprop.c):
 *   d   = (maximize ? -g : g) + weight_decay * p + l1 * sign(p)
 *   sq  = alpha * sq + (1 - alpha) * d * d
 *   ga  = alpha * ga + (1 - alpha) * d                   (centered)
 *   w   = centered ? sq - ga * ga : sq
 *   den = eps_in_sqrt ? sqrt(w + eps) : sqrt(w) + eps
 *   momentum > 0: buf = momentum * buf + d / den;  p -= lr * buf
 *   otherwise:    p  -= lr * d / den
 * `grad_avg` may be NULL unless centered, `momentum_buffer` unless momentum > 0. */
typedef struct fo_rmsprop_options {
    double lr, alpha, eps, weight_decay, momentum, l1;
    int centered, maximize, eps_in_sqrt;
} fo_rmsprop_options;

FO_API int fo_rmsprop_step_f32(fo_layout *layout, float *const *param, const float *const *grad,
                               float *const *square_avg, float *const *grad_avg,
                               float *const *momentum_buffer, const fo_rmsprop_options *options,
                               int nthreads);
FO_API int fo_rmsprop_step_f64(fo_layout *layout, double *const *param,
                               const double *const *grad, double *const *square_avg,
                               double *const *grad_avg, double *const *momentum_buffer,
                               const fo_rmsprop_options *options, int nthreads);

/* Adadelta, torch.optim.Adadelta semantics (adadelta.c):
 *   d     = (maximize ? -g : g) + weight_decay * p + l1 * sign(p)
 *   sq    = rho * sq + (1 - rho) * d * d
 *   delta = sqrt(acc + eps) / sqrt(sq + eps) * d
 *   acc   = rho * acc + (1 - rho) * delta * delta
 *   p    -= lr * delta */
typedef struct fo_adadelta_options {
    double lr, rho, eps, weight_decay, l1;
    int maximize;
} fo_adadelta_options;

FO_API int fo_adadelta_step_f32(fo_layout *layout, float *const *param,
                                const float *const *grad, float *const *square_avg,
                                float *const *acc_delta, const fo_adadelta_options *options,
                                int nthreads);
FO_API int fo_adadelta_step_f64(fo_layout *layout, double *const *param,
                                const double *const *grad, double *const *square_avg,
                                double *const *acc_delta, const fo_adadelta_options *options,
                                int nthreads);

/* Whether every element of every tensor is finite (finite.c): *all_finite = 1 or 0.
 * Used before an update that must be skipped when a gradient holds NaN or Inf. Threads stop
 * early once any of them has seen a non-finite value. */
FO_API int fo_all_finite_f32(fo_layout *layout, const float *const *x, int *all_finite,
                             int nthreads);
FO_API int fo_all_finite_f64(fo_layout *layout, const double *const *x, int *all_finite,
                             int nthreads);

#ifdef __cplusplus
}
#endif

#endif
