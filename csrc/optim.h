/* optim.h — first-order optimizer kernels: one fused pass over param, grad and state.
 *
 * Every kernel comes as _f32 and _f64 and updates a list of tensors described by an
 * fo_layout in one call (work split by total elements across `nthreads` threads).
 * Scalar coefficients are computed once per call in double, then used in the array's
 * precision. Each family's update rule is its csrc/<family>.inc; the documented formula,
 * the ranges of the options and their defaults are in the table of families,
 * src/fastopt/optim/families.py (also shown by help(fastopt.kernels.<family>_step)).
 * A state array that an option leaves unused may be NULL. Where a family takes the step
 * number t (1 for a tensor's first update), `steps`, when not NULL, gives each tensor its
 * own (layout->count values) and `step` is ignored. */
#ifndef FASTOPT_OPTIM_H
#define FASTOPT_OPTIM_H

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SGD, torch.optim.SGD semantics (sgd.inc). `buf` may be NULL when momentum == 0. */
typedef struct fo_sgd_options {
    double lr, momentum, dampening, weight_decay, l1;
    int nesterov, maximize, first_step;
} fo_sgd_options;

FO_API int fo_sgd_step_f32(fo_layout *layout, float *const *param, const float *const *grad,
                           float *const *buf, const fo_sgd_options *options, int nthreads);
FO_API int fo_sgd_step_f64(fo_layout *layout, double *const *param, const double *const *grad,
                           double *const *buf, const fo_sgd_options *options, int nthreads);

/* Adam and AdamW, torch.optim.Adam/AdamW semantics (adam.inc). `max_exp_avg_sq` may be NULL
 * unless amsgrad. */
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

/* Adagrad, torch.optim.Adagrad semantics (adagrad.inc). */
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

/* RMSprop, torch.optim.RMSprop semantics plus eps_in_sqrt (rmsprop.inc). `grad_avg` may be
 * NULL unless centered, `momentum_buffer` unless momentum > 0. */
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

/* Adadelta, torch.optim.Adadelta semantics (adadelta.inc). */
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

/* NAdam, torch.optim.NAdam semantics (nadam.inc). `mu_product` is the product of the
 * momentum coefficients mu_1 ... mu_t INCLUDING this update's (fo_nadam_mu_product gives it
 * from the product before); `mu_products`, when not NULL, gives each tensor its own (with
 * `steps`). */
typedef struct fo_nadam_options {
    double lr, beta1, beta2, eps, weight_decay, momentum_decay, l1;
    int64_t step;
    const int64_t *steps;
    double mu_product;
    const double *mu_products;
    int decoupled, maximize;
} fo_nadam_options;

/* mu_product * mu_t, mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)): the product of
 * update t from the product before it (1.0 before the first update). */
FO_API double fo_nadam_mu_product(const fo_nadam_options *options, int64_t t,
                                  double previous);

FO_API int fo_nadam_step_f32(fo_layout *layout, float *const *param, const float *const *grad,
                             float *const *exp_avg, float *const *exp_avg_sq,
                             const fo_nadam_options *options, int nthreads);
FO_API int fo_nadam_step_f64(fo_layout *layout, double *const *param,
                             const double *const *grad, double *const *exp_avg,
                             double *const *exp_avg_sq, const fo_nadam_options *options,
                             int nthreads);

/* Lion, optax.lion semantics (Chen et al. 2023; lion.inc). */
typedef struct fo_lion_options {
    double lr, beta1, beta2, weight_decay, l1;
    int maximize;
} fo_lion_options;

FO_API int fo_lion_step_f32(fo_layout *layout, float *const *param, const float *const *grad,
                            float *const *exp_avg, const fo_lion_options *options,
                            int nthreads);
FO_API int fo_lion_step_f64(fo_layout *layout, double *const *param, const double *const *grad,
                            double *const *exp_avg, const fo_lion_options *options,
                            int nthreads);

/* Optimizer state in fewer bits (optim_lowprec.inc, lowprec.h). Every family has
 * fo_<family>_step_lowprec_f32/f64: the same update as fo_<family>_step, with each tensor's
 * state arrays in the format format[t]:
 *   FO_STATE_FULL      the param's type (the plain kernel's arrays)
 *   FO_STATE_BFLOAT16  uint16 bfloat16 bits, written with stochastic rounding from Philox
 *                      stream (seed, streams[t])
 *   FO_STATE_INT8      uint8 codes of the dynamic map (the unsigned one for state j when
 *                      bit j of `nonnegative` is set) and absmax[j][t]: one float32 per block
 *                      of 256 elements
 * state[j][t] points to state j of tensor t (NULL tables for the arrays the options leave
 * unused), absmax[j] may be NULL when no tensor is int8, streams when none is bfloat16. */
enum fo_state_format { FO_STATE_FULL = 0, FO_STATE_BFLOAT16 = 1, FO_STATE_INT8 = 2 };

typedef struct fo_lowprec_states {
    const int *format;
    void *const *state[3];
    float *const *absmax[3];
    const uint64_t *streams;
    uint64_t seed;
    unsigned nonnegative;
} fo_lowprec_states;

#define FO_LOWPREC_PROTOTYPES(family)                                                        \
    FO_API int fo_##family##_step_lowprec_f32(fo_layout *layout, float *const *param,        \
                                              const float *const *grad,                      \
                                              const fo_lowprec_states *states,               \
                                              const fo_##family##_options *options,          \
                                              int nthreads);                                 \
    FO_API int fo_##family##_step_lowprec_f64(fo_layout *layout, double *const *param,       \
                                              const double *const *grad,                     \
                                              const fo_lowprec_states *states,               \
                                              const fo_##family##_options *options,          \
                                              int nthreads);
FO_LOWPREC_PROTOTYPES(sgd)
FO_LOWPREC_PROTOTYPES(adam)
FO_LOWPREC_PROTOTYPES(adagrad)
FO_LOWPREC_PROTOTYPES(rmsprop)
FO_LOWPREC_PROTOTYPES(adadelta)
FO_LOWPREC_PROTOTYPES(nadam)
FO_LOWPREC_PROTOTYPES(lion)
#undef FO_LOWPREC_PROTOTYPES

/* bfloat16 parameters (optim_bf16param.inc). Every family has fo_<family>_step_bf16param:
 * the update of parameters stored as bfloat16 bits (uint16) with float32 math. Per element
 * the param (and a bfloat16 gradient) is decoded, the family's rule runs in float32 with the
 * state in the format states->format[t] (FO_STATE_FULL: float32 arrays), and the new value
 * is rounded back to bfloat16: stochastically (FO_ROUND_STOCHASTIC: rounded up with
 * probability (dropped bits) / 2^16, from 16 bits of Philox stream (seed, streams[t]) per
 * element), to nearest even (FO_ROUND_NEAREST), or to nearest with the rounding error kept
 * in a bfloat16 compensation buffer (FO_ROUND_KAHAN: compensation[t], same shape; the
 * update starts from param + compensation, and an infinite or NaN param zeroes its
 * compensation). grad[t] holds float32 values, or bfloat16 bits where grad_bf16[t] is
 * non-zero. */
enum fo_param_rounding { FO_ROUND_STOCHASTIC = 0, FO_ROUND_NEAREST = 1, FO_ROUND_KAHAN = 2 };

typedef struct fo_bf16_params {
    uint16_t *const *param;
    const void *const *grad;
    const unsigned char *grad_bf16;
    const uint64_t *streams;
    uint64_t seed;
    int rounding;
    uint16_t *const *compensation;
} fo_bf16_params;

#define FO_BF16PARAM_PROTOTYPE(family)                                                       \
    FO_API int fo_##family##_step_bf16param(fo_layout *layout, const fo_bf16_params *params,  \
                                            const fo_lowprec_states *states,                 \
                                            const fo_##family##_options *options,            \
                                            int nthreads);
FO_BF16PARAM_PROTOTYPE(sgd)
FO_BF16PARAM_PROTOTYPE(adam)
FO_BF16PARAM_PROTOTYPE(adagrad)
FO_BF16PARAM_PROTOTYPE(rmsprop)
FO_BF16PARAM_PROTOTYPE(adadelta)
FO_BF16PARAM_PROTOTYPE(nadam)
FO_BF16PARAM_PROTOTYPE(lion)
#undef FO_BF16PARAM_PROTOTYPE

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
