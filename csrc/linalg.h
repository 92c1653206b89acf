/* linalg.h — vector kernels of the quasi-Newton solvers (fastopt.minimize).
 *
 * Reductions accumulate in double over blocks of FO_REDUCE_BLOCK elements and add the
 * block sums in block order, so every result is the same bits for any thread count.
 * Element-wise arithmetic is in the arrays' own type (coefficients rounded to it once). */
#ifndef FASTOPT_LINALG_H
#define FASTOPT_LINALG_H

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* *result = sum_i x[i] * y[i], accumulated in double. */
FO_API int fo_dot_f32(int64_t n, const float *x, const float *y, double *result, int nthreads);
FO_API int fo_dot_f64(int64_t n, const double *x, const double *y, double *result,
                      int nthreads);

/* out[i] = y[i] + a * x[i]; out may be y (in place) or x. */
FO_API int fo_axpy_f32(int64_t n, double a, const float *x, const float *y, float *out,
                       int nthreads);
FO_API int fo_axpy_f64(int64_t n, double a, const double *x, const double *y, double *out,
                       int nthreads);

/* x[i] *= a. */
FO_API int fo_scal_f32(int64_t n, double a, float *x, int nthreads);
FO_API int fo_scal_f64(int64_t n, double a, double *x, int nthreads);

/* A new L-BFGS correction pair in one pass: s = x1 - x0, y = g1 - g0 (written to s, y, which
 * must not overlap the inputs), *sy = s . y and *yy = y . y accumulated in double over
 * fixed blocks (the same bits for any thread count). */
FO_API int fo_lbfgs_pair_f32(int64_t n, const float *x1, const float *x0, const float *g1,
                             const float *g0, float *s, float *y, double *sy, double *yy,
                             int nthreads);
FO_API int fo_lbfgs_pair_f64(int64_t n, const double *x1, const double *x0, const double *g1,
                             const double *g0, double *s, double *y, double *sy, double *yy,
                             int nthreads);

/* A trial point of the L-BFGS line search in one pass: the new pair as fo_lbfgs_pair writes
 * it (s = x1 - x0, y = g1 - g0; the memory's free row, committed only if the step is taken)
 * and out[0] = g1 . d (the slope the line search tests), out[1] = s . y, out[2] = y . y,
 * out[3] = max |g1[i]| (NaN if any is NaN; the gradient test). The products are the bits of
 * fo_dot and fo_lbfgs_pair (the same blocks, summed in block order) for any thread count;
 * s and y must not overlap the inputs. */
FO_API int fo_lbfgs_trial_f32(int64_t n, const float *x1, const float *x0, const float *g1,
                              const float *g0, const float *d, float *s, float *y,
                              double *out, int nthreads);
FO_API int fo_lbfgs_trial_f64(int64_t n, const double *x1, const double *x0,
                              const double *g1, const double *g0, const double *d, double *s,
                              double *y, double *out, int nthreads);

/* L-BFGS two-loop recursion (Nocedal & Wright, Algorithm 7.4): out = sign * H g, where H is
 * the L-BFGS inverse Hessian of the `count` newest pairs in a ring buffer and
 * H0 = gamma * I, sign = -1 if `negate` else +1.
 *
 *   S, Y    (slots, n) row-major: pair k (k = 0 newest, ..., count-1 oldest) lives in row
 *           (newest - k) mod slots
 *   rho     (slots,): rho[row] = 1 / (s_row . y_row), in double
 *   g, out  (n,): out must not overlap g, S or Y
 *
 * The 2*count+1 passes over memory fuse each update of the work vector with the dot
 * product the next step needs; the dots are blocked as above (deterministic). */
FO_API int fo_lbfgs_two_loop_f32(int64_t n, int64_t slots, int64_t count, int64_t newest,
                                 const float *S, const float *Y, const double *rho,
                                 double gamma, const float *g, float *out, int negate,
                                 int nthreads);
FO_API int fo_lbfgs_two_loop_f64(int64_t n, int64_t slots, int64_t count, int64_t newest,
                                 const double *S, const double *Y, const double *rho,
                                 double gamma, const double *g, double *out, int negate,
                                 int nthreads);

/* fo_lbfgs_two_loop, and in its last pass the first trial point of the line search while
 * the direction d = out is in cache: x_unit = x + d and *gd = g . d (the bits of fo_dot).
 * x_unit must not overlap the other arrays. x = NULL: fo_lbfgs_two_loop. */
FO_API int fo_lbfgs_two_loop_step_f32(int64_t n, int64_t slots, int64_t count, int64_t newest,
                                      const float *S, const float *Y, const double *rho,
                                      double gamma, const float *g, float *out, int negate,
                                      const float *x, float *x_unit, double *gd,
                                      int nthreads);
FO_API int fo_lbfgs_two_loop_step_f64(int64_t n, int64_t slots, int64_t count, int64_t newest,
                                      const double *S, const double *Y, const double *rho,
                                      double gamma, const double *g, double *out, int negate,
                                      const double *x, double *x_unit, double *gd,
                                      int nthreads);

/* Vector-free L-BFGS (the same two-loop recursion run on the coefficients of q in the
 * basis {p, s_i, y_i}, after Chen, Wang, Zhou & Chen, "Large-scale L-BFGS using
 * MapReduce", NIPS 2014): two passes over memory per direction instead of 2*count+1.
 *
 * fo_lbfgs_gram: dot products of the rows rows[0..k) of S and Y with v and w, in one pass:
 *   out[4i+0] = S_row . v   out[4i+1] = Y_row . v   (skipped, left 0, when v is NULL)
 *   out[4i+2] = S_row . w   out[4i+3] = Y_row . w   and out[4k] = w . w
 * accumulated in double over fixed blocks (deterministic). */
FO_API int fo_lbfgs_gram_f32(int64_t n, const float *S, const float *Y, const int64_t *rows,
                             int64_t k, const float *v, const float *w, double *out,
                             int nthreads);
FO_API int fo_lbfgs_gram_f64(int64_t n, const double *S, const double *Y, const int64_t *rows,
                             int64_t k, const double *v, const double *w, double *out,
                             int nthreads);

/* fo_lbfgs_vf_direction: out = sign * H p for the pairs in rows[0..k) (oldest first), from
 *   rho[i] = 1/(s_i.y_i), SY[i*k+j] = s_i.y_j (read for i <= j), YY[i*k+j] = y_i.y_j,
 *   Sp[i] = s_i.p, Yp[i] = y_i.p (all in the order of rows[]):
 * the recursion runs on 2k+1 coefficients (O(k^2) flops), then one pass forms
 * out = c_p p + sum_i (c_s[i] s_i + c_y[i] y_i), summed in double per element. */
FO_API int fo_lbfgs_vf_direction_f32(int64_t n, const float *S, const float *Y,
                                     const int64_t *rows, int64_t k, const double *rho,
                                     const double *SY, const double *YY, const double *Sp,
                                     const double *Yp, double gamma, const float *p,
                                     float *out, int negate, int nthreads);
FO_API int fo_lbfgs_vf_direction_f64(int64_t n, const double *S, const double *Y,
                                     const int64_t *rows, int64_t k, const double *rho,
                                     const double *SY, const double *YY, const double *Sp,
                                     const double *Yp, double gamma, const double *p,
                                     double *out, int negate, int nthreads);
/* fo_lbfgs_vf_direction_step: the same, and with x (then x_unit and gd too) the line
 * search's first trial point x_unit = x + out and *gd = p . out (the bits of fo_dot), formed
 * block by block as out is written (as fo_lbfgs_two_loop_step does). */
FO_API int fo_lbfgs_vf_direction_step_f32(int64_t n, const float *S, const float *Y,
                                          const int64_t *rows, int64_t k, const double *rho,
                                          const double *SY, const double *YY,
                                          const double *Sp, const double *Yp, double gamma,
                                          const float *p, float *out, int negate,
                                          const float *x, float *x_unit, double *gd,
                                          int nthreads);
FO_API int fo_lbfgs_vf_direction_step_f64(int64_t n, const double *S, const double *Y,
                                          const int64_t *rows, int64_t k, const double *rho,
                                          const double *SY, const double *YY,
                                          const double *Sp, const double *Yp, double gamma,
                                          const double *p, double *out, int negate,
                                          const double *x, double *x_unit, double *gd,
                                          int nthreads);

/* The dense BFGS inverse Hessian H, (n, n) row-major with BOTH triangles stored
 * (fastopt.optimize.bfgs): fastopt's own kernels instead of a BLAS's dsymv/dsyr2, whose
 * last bits differ per CPU kernel and, on badly scaled problems, decided convergence.
 *
 * fo_symv: out = H v; each row's dot product is summed in double over fixed blocks in block
 *   order (the bits of fo_dot), rows split between threads: the same bits for any thread
 *   count. out must not overlap H or v.
 * fo_syr2: H += a (x y' + y x'), computed in double per element, rounded to the type once;
 *   H stays exactly symmetric. x, y must not overlap H. */
FO_API int fo_symv_f32(int64_t n, const float *H, const float *v, float *out, int nthreads);
FO_API int fo_symv_f64(int64_t n, const double *H, const double *v, double *out,
                       int nthreads);
FO_API int fo_syr2_f32(int64_t n, double a, const float *x, const float *y, float *H,
                       int nthreads);
FO_API int fo_syr2_f64(int64_t n, double a, const double *x, const double *y, double *H,
                       int nthreads);
/* fo_syr2_symv: fo_syr2, then out = H v with the updated H, in one pass over H (the same
 * bits as the two calls). out must not overlap H, x, y or v; v must not overlap H. */
FO_API int fo_syr2_symv_f32(int64_t n, double a, const float *x, const float *y, float *H,
                            const float *v, float *out, int nthreads);
FO_API int fo_syr2_symv_f64(int64_t n, double a, const double *x, const double *y,
                            double *H, const double *v, double *out, int nthreads);

#ifdef __cplusplus
}
#endif

#endif
