/* nn.h — layer kernels: dropout (dropout.c) and batch normalization (batchnorm.c).
 *
 * Every kernel comes as _f32 and _f64, works on caller-owned C-contiguous arrays, uses at
 * most `nthreads` threads (serially below FO_SERIAL_BELOW elements) and returns an enum
 * fo_status. Results are bitwise identical for any thread count. */
#ifndef FASTOPT_NN_H
#define FASTOPT_NN_H

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* -- Dropout (dropout.c) ------------------------------------------------------------------
 * Inverted dropout with DROP probability p in [0, 1):
 *     keep_i = u_i >= threshold(p)        u_i: the 32-bit Philox word of element i of
 *                                          stream (seed, stream), see philox.h
 *     y_i    = x_i * (keep_i ? 1 / (1 - p) : 0)
 * (a multiply, so a dropped NaN or Inf stays NaN, as in torch). `bits`, when not NULL,
 * receives the keep decisions packed 64 per word: bit i % 64 of bits[i / 64], the unused
 * bits of the last word zero; it needs (n + 63) / 64 words. In place (y == x) is allowed.
 *
 * The backward pass is dy * (keep ? 1 / (1 - p) : 0) with the same decisions: from the
 * packed bits when `bits` is not NULL, otherwise regenerated from (seed, stream), which is
 * exactly the forward kernel applied to dy (fo_dropout_forward with bits = NULL). */
FO_API int fo_dropout_forward_f32(const float *x, float *y, uint64_t *bits, int64_t n, double p,
                                  uint64_t seed, uint64_t stream, int nthreads);
FO_API int fo_dropout_forward_f64(const double *x, double *y, uint64_t *bits, int64_t n,
                                  double p, uint64_t seed, uint64_t stream, int nthreads);
FO_API int fo_dropout_backward_f32(const float *dy, float *dx, const uint64_t *bits, int64_t n,
                                   double p, uint64_t seed, uint64_t stream, int nthreads);
FO_API int fo_dropout_backward_f64(const double *dy, double *dx, const uint64_t *bits,
                                   int64_t n, double p, uint64_t seed, uint64_t stream,
                                   int nthreads);
/* The first n 32-bit words of stream (seed, stream) in element order (what element i of a
 * dropout call compares with the threshold). For tests and for users who want the numbers. */
FO_API int fo_philox_fill(uint32_t *out, int64_t n, uint64_t seed, uint64_t stream,
                          int nthreads);

/* -- Batch normalization (batchnorm.c) ----------------------------------------------------
 * x is viewed as (n, c, s): n samples, c channels (features), s = prod(spatial) (1 for an
 * (N, D) input); statistics are per channel over the M = n * s values of that channel.
 *
 * Forward, training:  mean, var = batch mean and biased variance (sums in double over
 *                     fixed blocks combined in a fixed order);  invstd = 1 / sqrt(var + eps)
 *                     running_mean = (1 - momentum) * running_mean + momentum * mean
 *                     running_var  = (1 - momentum) * running_var
 *                                    + momentum * (unbiased ? var * M / (M - 1) : var)
 *                     (running stats may be NULL: not updated; needs M > 1 when unbiased)
 * Forward, eval:      mean = running_mean, invstd = 1 / sqrt(running_var + eps)
 * Both:               y = (x - mean) * (gamma * invstd) + beta  (gamma, beta may be NULL:
 *                     1 and 0); mean[c] and invstd[c] (double) receive what backward needs.
 * y may not alias x. */
typedef struct fo_batch_norm_options {
    double eps;      /* > 0 */
    double momentum; /* weight of this batch in the running averages, in [0, 1] */
    int training;    /* 1: batch statistics and running update; 0: running statistics */
    int unbiased;    /* running_var receives the unbiased batch variance (torch) */
} fo_batch_norm_options;

FO_API int fo_batch_norm_forward_f32(const float *x, float *y, int64_t n, int64_t c, int64_t s,
                                     const float *gamma, const float *beta,
                                     float *running_mean, float *running_var, double *mean,
                                     double *invstd, const fo_batch_norm_options *options,
                                     int nthreads);
FO_API int fo_batch_norm_forward_f64(const double *x, double *y, int64_t n, int64_t c,
                                     int64_t s, const double *gamma, const double *beta,
                                     double *running_mean, double *running_var, double *mean,
                                     double *invstd, const fo_batch_norm_options *options,
                                     int nthreads);

/* Backward from the forward's mean/invstd: with xhat = (x - mean) * invstd, g = gamma or 1,
 *     dbeta  = sum(dy)            dgamma = sum(dy * xhat)          (per channel, in double)
 *     training: dx = (g * invstd / M) * (M * dy - dbeta - xhat * dgamma)
 *     eval:     dx = g * invstd * dy
 * Any of dx, dgamma, dbeta may be NULL (not computed). Two passes over memory: one
 * reduction (skipped in eval mode when only dx is asked for), one element-wise. */
FO_API int fo_batch_norm_backward_f32(const float *dy, const float *x, float *dx, int64_t n,
                                      int64_t c, int64_t s, const float *gamma,
                                      const double *mean, const double *invstd, int training,
                                      float *dgamma, float *dbeta, int nthreads);
FO_API int fo_batch_norm_backward_f64(const double *dy, const double *x, double *dx, int64_t n,
                                      int64_t c, int64_t s, const double *gamma,
                                      const double *mean, const double *invstd, int training,
                                      double *dgamma, double *dbeta, int nthreads);

#ifdef __cplusplus
}
#endif

#endif
