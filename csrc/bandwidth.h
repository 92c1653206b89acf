/* bandwidth.h — STREAM-style reference kernels that measure the memory bandwidth the
 * optimizer and layer kernels are bounded by (bandwidth.c).
 *
 * They are built exactly like the other kernels (same flags, SIMD clones, OpenMP team
 * sizing and work split), so "fraction of the bandwidth limit" compares like with like:
 *   fo_stream_copy:  dst[i] = src[i]                 reads n, writes n elements
 *   fo_stream_triad: a[i]   = b[i] + scalar * c[i]   reads 2n, writes n elements
 * Written arrays are not read first, so an ordinary (write-allocate) store also reads
 * each destination line: copy moves 3n and triad 4n elements' bytes through memory.
 * Results are exact (one rounding per element, no contraction), the same for any number
 * of threads. */
#ifndef FASTOPT_BANDWIDTH_H
#define FASTOPT_BANDWIDTH_H

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

FO_API int fo_stream_copy_f32(float *dst, const float *src, int64_t n, int nthreads,
                              int *threads_used);
FO_API int fo_stream_copy_f64(double *dst, const double *src, int64_t n, int nthreads,
                              int *threads_used);
FO_API int fo_stream_triad_f32(float *a, const float *b, const float *c, double scalar,
                               int64_t n, int nthreads, int *threads_used);
FO_API int fo_stream_triad_f64(double *a, const double *b, const double *c, double scalar,
                               int64_t n, int nthreads, int *threads_used);

#ifdef __cplusplus
}
#endif

#endif
