/* norm.h — global norms and in-place scaling of lists of tensors (gradient clipping). */
#ifndef FASTOPT_NORM_H
#define FASTOPT_NORM_H

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which reduction fo_norm_* computes over all elements x of all tensors. */
enum fo_norm_kind {
    FO_NORM_MAX_ABS = 0, /* max |x|      (the inf-norm)       */
    FO_NORM_SUM_ABS = 1, /* sum |x|      (the 1-norm)         */
    FO_NORM_SUM_SQ = 2,  /* sum x*x      (the 2-norm squared) */
    FO_NORM_SUM_POW = 3  /* sum |x|^p    (the p-norm to the p) */
};

/* *result = the reduction, accumulated in double over blocks of FO_REDUCE_BLOCK global
 * elements whose sums are combined in block order: the same bits for any thread count.
 * NaN propagates (also through the max). */
FO_API int fo_norm_f32(fo_layout *layout, const float *const *x, int kind, double p,
                       double *result, int nthreads);
FO_API int fo_norm_f64(fo_layout *layout, const double *const *x, int kind, double p,
                       double *result, int nthreads);

/* x *= factor for every element of every tensor (factor rounded to the array's type). */
FO_API int fo_scale_f32(fo_layout *layout, float *const *x, double factor, int nthreads);
FO_API int fo_scale_f64(fo_layout *layout, double *const *x, double factor, int nthreads);

#ifdef __cplusplus
}
#endif

#endif
