/* quantize.h — conversions to and from the low-precision state formats (quantize.c):
 * blockwise 8-bit dynamic quantization (blocks of 256 elements, one float32 absmax each;
 * the signed map, or the unsigned one when `nonnegative`) and bfloat16 (uint16 bits,
 * round-to-nearest-even). Thread-count independent. See lowprec.h for the formats. */
#ifndef FASTOPT_QUANTIZE_H
#define FASTOPT_QUANTIZE_H

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* codes[n] and absmax[(n + 255) / 256] from x[n]. */
FO_API int fo_quantize_blockwise_f32(const float *x, int64_t n, int nonnegative,
                                     uint8_t *codes, float *absmax, int nthreads);
FO_API int fo_quantize_blockwise_f64(const double *x, int64_t n, int nonnegative,
                                     uint8_t *codes, float *absmax, int nthreads);
/* out[i] = map[codes[i]] * absmax[i / 256]. */
FO_API int fo_dequantize_blockwise_f32(const uint8_t *codes, const float *absmax, int64_t n,
                                       int nonnegative, float *out, int nthreads);
FO_API int fo_dequantize_blockwise_f64(const uint8_t *codes, const float *absmax, int64_t n,
                                       int nonnegative, double *out, int nthreads);
FO_API int fo_bf16_from_f32(const float *x, uint16_t *out, int64_t n, int nthreads);
FO_API int fo_bf16_to_f32_array(const uint16_t *h, float *out, int64_t n, int nthreads);

#ifdef __cplusplus
}
#endif

#endif
