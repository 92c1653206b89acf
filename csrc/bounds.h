/* bounds.h — vector kernels of L-BFGS-B (fastopt.optimize.lbfgsb): box projections, the
 * projected gradient, the step to the boundary, the generalized Cauchy point, the
 * free-variable gram matrix and the subspace point.
 *
 * Notation: x, g, lo, hi have n elements (lo/hi may hold -inf/+inf); S, Y are (slots, n)
 * row-major ring buffers of correction pairs and rows[0..k) the rows in use, oldest first;
 * W = [Y, theta S] (n x 2k, column j < k is y_rows[j], column k + j is theta s_rows[j]).
 * Reductions accumulate in double over fixed blocks added in block order (or are max/min
 * with a fixed tie rule), so every result is the same bits for any thread count.
 * Element-wise results are in the arrays' type; scalars and small vectors are double. */
#ifndef FASTOPT_BOUNDS_H
#define FASTOPT_BOUNDS_H

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[i] = min(max(x[i] + alpha * d[i], lo[i]), hi[i]) (alpha rounded to the type once;
 * d == NULL: the projection of x). out may be x. NaN propagates. */
FO_API int fo_bounds_step_f32(int64_t n, const float *x, double alpha, const float *d,
                              const float *lo, const float *hi, float *out, int nthreads);
FO_API int fo_bounds_step_f64(int64_t n, const double *x, double alpha, const double *d,
                              const double *lo, const double *hi, double *out, int nthreads);

/* *result = max_i |pg_i| with pg_i = g_i < 0 ? max(x_i - hi_i, g_i) : min(x_i - lo_i, g_i)
 * (scipy's projgr), NaN if any g_i is NaN; 0 for n = 0. */
FO_API int fo_bounds_projgrad_norm_f32(int64_t n, const float *x, const float *g,
                                       const float *lo, const float *hi, double *result,
                                       int nthreads);
FO_API int fo_bounds_projgrad_norm_f64(int64_t n, const double *x, const double *g,
                                       const double *lo, const double *hi, double *result,
                                       int nthreads);

/* *result = the largest a >= 0 with lo <= x + a d <= hi: min over d_i < 0 with a finite
 * lo_i of (lo_i - x_i)/d_i (0 if lo_i - x_i >= 0), over d_i > 0 with a finite hi_i of
 * (hi_i - x_i)/d_i (0 if hi_i - x_i <= 0); +inf when no bound limits the step. */
FO_API int fo_bounds_max_step_f32(int64_t n, const float *x, const float *d, const float *lo,
                                  const float *hi, double *result, int nthreads);
FO_API int fo_bounds_max_step_f64(int64_t n, const double *x, const double *d,
                                  const double *lo, const double *hi, double *result,
                                  int nthreads);

/* The search direction d = z - x (d may be z) in the same pass as *max_step (as
 * fo_bounds_max_step), *gd = g . d and *dd = d . d. */
FO_API int fo_lbfgsb_direction_f32(int64_t n, const float *x, const float *z, const float *g,
                                   const float *lo, const float *hi, float *d,
                                   double *max_step, double *gd, double *dd, int nthreads);
FO_API int fo_lbfgsb_direction_f64(int64_t n, const double *x, const double *z,
                                   const double *g, const double *lo, const double *hi,
                                   double *d, double *max_step, double *gd, double *dd,
                                   int nthreads);

/* The generalized Cauchy point (Byrd, Lu, Nocedal & Zhu 1995, Algorithm CP, with scipy's
 * rules for variables at a bound, zero gradients and the curvature floor).
 *   M      (2k x 2k) row-major, the compact form's middle matrix (unused when k = 0)
 *   wd     NULL, or W^T d (y_rows[j] . d, s_rows[j] . d for j < k, 2k, unscaled) for the
 *          path's direction d at (x, g), from fo_lbfgsb_pair_update: no pass over S, Y
 *   scan   NULL, or the classification of (x, g) by fo_lbfgsb_pair_update (is_free then
 *          holds its mask, which the scan updates): the first pass is skipped; a buffer
 *          that is not one is FO_ERR_ARGUMENT
 *   xcp    out, n: the Cauchy point (NULL: not formed; fo_lbfgsb_cauchy_point forms it)
 *   c      out, 2k: W^T (xcp - x)
 *   is_free out, n: 1 for the variables free at xcp, 0 for those held at a bound
 *   nfree  out: their number;  tsum  out: the path parameter t of xcp (a free variable
 *          moved by -t g_i);  p  out, 2k: -W_F^T g over the free variables.
 * Two passes over the n-vectors (the classification, which also lists each block's
 * smallest breakpoints, then xcp), a third over S and Y only for W^T d, all parallel; no
 * n-sized scratch: the scan over the breakpoints that are passed is serial and takes them
 * from the blocks' lists, merged, as long as they are certain to be the next ones; past
 * that, from a serial pass that finds the smallest left, then from a heap of all of them,
 * recomputed from x, g and the box. Ties are taken in index order. */
FO_API int fo_lbfgsb_cauchy_f32(int64_t n, const float *x, const float *g, const float *lo,
                                const float *hi, const float *S, const float *Y,
                                const int64_t *rows, int64_t k, double theta, const double *M,
                                const double *wd, const void *scan, float *xcp, double *c,
                                uint8_t *is_free, int64_t *nfree, double *tsum, double *p,
                                int nthreads);
FO_API int fo_lbfgsb_cauchy_f64(int64_t n, const double *x, const double *g, const double *lo,
                                const double *hi, const double *S, const double *Y,
                                const int64_t *rows, int64_t k, double theta, const double *M,
                                const double *wd, const void *scan, double *xcp, double *c,
                                uint8_t *is_free, int64_t *nfree, double *tsum, double *p,
                                int nthreads);

/* The Cauchy point from what fo_lbfgsb_cauchy returned: xcp = x + tsum d (d = -g, x where
 * g is 0) on the variables with is_free (NULL: all), x on the others held at a bound at
 * (x, g), the bound the path reached on the rest (the breakpoints it passed). The bits of
 * fo_lbfgsb_cauchy's xcp. */
FO_API int fo_lbfgsb_cauchy_point_f32(int64_t n, const float *x, const float *g,
                                      const float *lo, const float *hi,
                                      const uint8_t *is_free, double tsum, float *xcp,
                                      int nthreads);
FO_API int fo_lbfgsb_cauchy_point_f64(int64_t n, const double *x, const double *g,
                                      const double *lo, const double *hi,
                                      const uint8_t *is_free, double tsum, double *xcp,
                                      int nthreads);

/* Bytes of a scan buffer for n variables: the Cauchy point's first pass (each block's
 * counts and smallest breakpoints), written by fo_lbfgsb_pair_update, read by
 * fo_lbfgsb_cauchy. */
FO_API int64_t fo_lbfgsb_scan_bytes(int64_t n);

/* The products of a new pair (row r) with the pairs rows[0..k) (r among them), in one pass:
 * out[10 i + 0..3] = s_i . y_r, y_i . y_r, s_i . s_r, y_i . s_r; out[10 i + 4..7] the same
 * summed over mask[e] = 1 only (left 0 when mask is NULL); out[10 i + 8..9] = s_i . g,
 * y_i . g (left 0 when g is NULL): the full and free-set gram rows of the new pair and the
 * next Cauchy point's W^T g. */
FO_API int fo_lbfgsb_pair_dots_f32(int64_t n, const float *S, const float *Y,
                                   const int64_t *rows, int64_t k, int64_t r,
                                   const uint8_t *mask, const float *g, double *out,
                                   int nthreads);
FO_API int fo_lbfgsb_pair_dots_f64(int64_t n, const double *S, const double *Y,
                                   const int64_t *rows, int64_t k, int64_t r,
                                   const uint8_t *mask, const double *g, double *out,
                                   int nthreads);

/* The new pair and everything the driver needs from it in one pass: S[r] = x1 - x0,
 * Y[r] = g1 - g0, dcp (out, n; NULL: formed range by range in cache, not stored) = the
 * direction d of the next Cauchy path, at (x1, g1)
 * (-g1_i, or 0 where held at a bound or g1_i = 0), out as fo_lbfgsb_pair_dots with g = dcp
 * (rows[k - 1] must be r; the row of r itself holds s_r . y_r and y_r . y_r; columns 8-9
 * are then W^T d for fo_lbfgsb_cauchy), and *pgnorm as fo_bounds_projgrad_norm at
 * (x1, g1). With a scan buffer (fo_lbfgsb_scan_bytes(n) bytes; NULL: none), also the
 * first pass of the Cauchy point at (x1, g1): its per-block results there and the mask of
 * the variables not held at a bound in is_free (n), so that fo_lbfgsb_cauchy skips it. */
FO_API int fo_lbfgsb_pair_update_f32(int64_t n, const float *x1, const float *x0,
                                     const float *g1, const float *g0, const float *lo,
                                     const float *hi, float *S, float *Y, const int64_t *rows,
                                     int64_t k, int64_t r, const uint8_t *mask, float *dcp,
                                     double *out, double *pgnorm, uint8_t *is_free,
                                     void *scan, int nthreads);
FO_API int fo_lbfgsb_pair_update_f64(int64_t n, const double *x1, const double *x0,
                                     const double *g1, const double *g0, const double *lo,
                                     const double *hi, double *S, double *Y,
                                     const int64_t *rows, int64_t k, int64_t r,
                                     const uint8_t *mask, double *dcp, double *out,
                                     double *pgnorm, uint8_t *is_free, void *scan,
                                     int nthreads);

/* out (2k x 2k, row-major) = sum_i weight[i] u_i u_i^T with u_i = (y_rows[0..k)[i],
 * s_rows[0..k)[i]) (unscaled): the gram matrix of the free variables (weights 0/1), or its
 * change when the free set changes (weights -1/0/+1). Work is proportional to the number
 * of nonzero weights (plus one byte read per element). */
FO_API int fo_lbfgsb_gram_update_f32(int64_t n, const float *S, const float *Y,
                                     const int64_t *rows, int64_t k, const int8_t *weight,
                                     double *out, int nthreads);
FO_API int fo_lbfgsb_gram_update_f64(int64_t n, const double *S, const double *Y,
                                     const int64_t *rows, int64_t k, const int8_t *weight,
                                     double *out, int nthreads);

/* The change of the free-set gram matrix when the free set goes from `before` to `now`
 * (0/1 masks): *changes = the number of variables whose mask differs; if it is at most
 * `limit`, out (2k x 2k) = fo_lbfgsb_gram_update's sum with weights now - before (the same
 * bits) and `before` is overwritten with `now`; otherwise out is zero and `before` is left
 * as it was. One pass over the masks, then work in proportion to the changes. */
FO_API int fo_lbfgsb_gram_change_f32(int64_t n, const float *S, const float *Y,
                                     const int64_t *rows, int64_t k, const uint8_t *now,
                                     uint8_t *before, int64_t limit, double *out,
                                     int64_t *changes, int nthreads);
FO_API int fo_lbfgsb_gram_change_f64(int64_t n, const double *S, const double *Y,
                                     const int64_t *rows, int64_t k, const uint8_t *now,
                                     uint8_t *before, int64_t limit, double *out,
                                     int64_t *changes, int nthreads);

/* The subspace point: du = cg g + sum_j a_j y_rows[j] + b_j s_rows[j] on the free variables
 * (is_free == NULL: all), 0 elsewhere; out = xcp + du if no free variable reaches a bound,
 * else the projection P(xcp + du) if (P(xcp + du) - x) . g <= 0 (Morales & Nocedal 2011),
 * else xcp + alpha du with the largest alpha <= 1 inside the box (the blocking variable,
 * the first in index order, put on its bound). out must not overlap the inputs. */
FO_API int fo_lbfgsb_subspace_point_f32(int64_t n, const float *x, const float *g,
                                        const float *xcp, const float *lo, const float *hi,
                                        const float *S, const float *Y, const int64_t *rows,
                                        int64_t k, double cg, const double *a,
                                        const double *b, const uint8_t *is_free, float *out,
                                        int nthreads);
FO_API int fo_lbfgsb_subspace_point_f64(int64_t n, const double *x, const double *g,
                                        const double *xcp, const double *lo, const double *hi,
                                        const double *S, const double *Y, const int64_t *rows,
                                        int64_t k, double cg, const double *a,
                                        const double *b, const uint8_t *is_free, double *out,
                                        int nthreads);

/* The subspace point (as fo_lbfgsb_subspace_point) and the search direction from it (as
 * fo_lbfgsb_direction) in one pass over S and Y: out = z - x, *max_step, *gd = g . d and
 * *dd = d . d, the same bits as the two kernels in turn; z itself is not stored. trial
 * (NULL: none) receives fo_bounds_step(x, 1, d), the line search's usual first point, in
 * the same pass. xcp may be NULL: the Cauchy point is then fo_lbfgsb_cauchy_point's with
 * is_free and tsum (tsum unused otherwise), formed where needed, not read. */
FO_API int fo_lbfgsb_subspace_direction_f32(int64_t n, const float *x, const float *g,
                                            const float *xcp, const float *lo,
                                            const float *hi, const float *S, const float *Y,
                                            const int64_t *rows, int64_t k, double cg,
                                            const double *a, const double *b,
                                            const uint8_t *is_free, double tsum, float *out,
                                            float *trial, double *max_step, double *gd,
                                            double *dd, int nthreads);
FO_API int fo_lbfgsb_subspace_direction_f64(int64_t n, const double *x, const double *g,
                                            const double *xcp, const double *lo,
                                            const double *hi, const double *S,
                                            const double *Y, const int64_t *rows, int64_t k,
                                            double cg, const double *a, const double *b,
                                            const uint8_t *is_free, double tsum, double *out,
                                            double *trial, double *max_step, double *gd,
                                            double *dd, int nthreads);

#ifdef __cplusplus
}
#endif

#endif
