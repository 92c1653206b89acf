/* lowprec.h — optimizer state in fewer bits: bfloat16 (round-to-nearest-even and stochastic
 * rounding) and blockwise 8-bit dynamic quantization (Dettmers et al., ICLR 2022), as
 * static inline helpers shared by the quantize kernels (quantize.c) and the low-precision
 * optimizer loop (optim_lowprec.inc).
 *
 * int8: a tensor is cut into blocks of FO_QBLOCK elements along its flat index; a block
 * stores one float32 absmax (max |x|; NaN if it holds a NaN) and one code per element,
 * x ~ map[code] * absmax, with the signed map for signed values and the unsigned map for
 * non-negative ones (quantize_maps.h). Encoding picks the NEAREST code of x / absmax (ties
 * to the smaller magnitude): a bucket table on the float's exponent and 7 leading mantissa
 * bits gives the code below and the bucket's threshold, one integer compare finishes it
 * (exact: each bucket holds at most one threshold, which tools/make_quantize_maps.py
 * checks).
 * A block holding a NaN or an Inf decodes as NaN (an Inf element as an Inf of its sign):
 * its absmax is non-finite. An all-zero block has absmax 0 and decodes as zeros.
 * On CPUs with AVX-512 VBMI the block encode and decode run lowprec_x86.h's codec instead
 * (the same codes and values: tools/check_qencode.c checks every float32). */
#ifndef FASTOPT_LOWPREC_H
#define FASTOPT_LOWPREC_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "quantize_maps.h"

/* Elements per quantization block (one absmax each). */
#define FO_QBLOCK 256

/* Number of blocks of a tensor of n elements. */
static inline int64_t fo_qblocks(int64_t n) { return (n + FO_QBLOCK - 1) / FO_QBLOCK; }

static inline uint32_t fo_f32_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline float fo_f32_from_bits(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* ---- bfloat16: the upper 16 bits of a float32 -------------------------------------- */

static inline float fo_bf16_to_f32(uint16_t h) { return fo_f32_from_bits((uint32_t)h << 16); }

/* Round to nearest, ties to even; a NaN stays a (quiet) NaN. */
static inline uint16_t fo_bf16_round_nearest(float x)
{
    const uint32_t b = fo_f32_bits(x);
    const uint32_t rounded = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
    return (uint16_t)((b & 0x7fffffffu) > 0x7f800000u ? (b >> 16) | 0x40u : rounded);
}

/* Stochastic rounding with the 8 random bits r (0..255): the magnitude rounds up with
 * probability (dropped bits) / 2^16, to 1/256 of an ulp, so the rounded value is unbiased
 * to within 2^-9 ulp. (Round-to-nearest cannot follow Adam's v down: with beta2 = 0.999 a
 * step's relative change is below half a bfloat16 ulp.) Inf stays Inf, NaN a NaN. */
static inline uint16_t fo_bf16_round_stochastic(float x, uint32_t r)
{
    const uint32_t b = fo_f32_bits(x);
    const uint32_t rounded = (b + ((r & 0xffu) << 8) + 0x80u) >> 16;
    return (uint16_t)((b & 0x7fffffffu) >= 0x7f800000u ? (b >> 16) | ((b & 0x7fffffu) ? 0x40u : 0u)
                                                       : rounded);
}

/* ---- int8 blockwise dynamic quantization --------------------------------------------- */

/* The bucket of magnitude bits `ab` (sign cleared): magnitudes below 2^-24 share bucket 0,
 * 1 and above (and NaN) the last one. */
static inline uint32_t fo_q_bucket(uint32_t ab)
{
    uint32_t i = ab >> (23 - FO_QMAP_MANT_BITS);
    i = i < FO_QMAP_FIRST_BUCKET ? FO_QMAP_FIRST_BUCKET : i;
    i = i > FO_QMAP_FIRST_BUCKET + FO_QMAP_NBUCKETS - 1 ? FO_QMAP_FIRST_BUCKET + FO_QMAP_NBUCKETS - 1
                                                         : i;
    return i - FO_QMAP_FIRST_BUCKET;
}

/* The nearest code of magnitude bits `ab` from a bucket table (quantize_maps.h): the code
 * below the bucket, plus one if ab is above the bucket's threshold (low 16 bits). */
static inline uint32_t fo_q_encode_magnitude(const uint32_t *table, uint32_t ab)
{
    const uint32_t e = table[fo_q_bucket(ab)];
    return (e >> 16) + ((ab & 0xffffu) > (e & 0xffffu));
}

/* The nearest code of x in [-1, 1] on the signed map. The map is symmetric about its zero
 * code 127 except its top entry 1 (255), which has no negative twin: a negative x takes
 * the mirror of its magnitude's code, capped below 255. */
static inline uint32_t fo_q_encode_signed(float x)
{
    const uint32_t b = fo_f32_bits(x);
    const uint32_t c = fo_q_encode_magnitude(fo_qenc_signed, b & 0x7fffffffu);
    const uint32_t capped = c < 254u ? c : 254u;
    return (b >> 31) ? 254u - capped : c;
}

/* The nearest code of |x| (x in [0, 1]) on the unsigned map, except that a non-zero x
 * never becomes 0: it takes at least the smallest non-zero code. A second moment rounded
 * to zero under a non-zero first moment would make Adam's step m / eps (the "zero-point
 * problem" of Li et al., NeurIPS 2023; it made the digits MLP diverge here). */
static inline uint32_t fo_q_encode_unsigned(float x)
{
    const uint32_t ab = fo_f32_bits(x) & 0x7fffffffu;
    const uint32_t c = fo_q_encode_magnitude(fo_qenc_unsigned, ab);
    return c + (c == 0u && ab != 0u);
}

/* The map of a state: unsigned for non-negative values. */
static inline const float *fo_qmap(int nonnegative)
{
    return nonnegative ? fo_qmap_unsigned : fo_qmap_signed;
}

#include "lowprec_x86.h"

/* The AVX-512 codec of a block (lowprec_x86.h) when `simd` (fo_qcodec_isa()) allows it:
 * 1 if it ran, 0 if the caller's portable loop must. The encode takes x * inv rounded to
 * float32; the decode gives map[code] * absmax in the param's type. */
static inline int fo_qblock_encode_simd_f32(const float *restrict x, int64_t m, float inv,
                                            int nonnegative, int simd, uint8_t *restrict codes)
{
#if FO_QCODEC_X86
    if (simd) {
        fo_qencode_avx512(x, m, inv, nonnegative, codes);
        return 1;
    }
#endif
    (void)x, (void)m, (void)inv, (void)nonnegative, (void)simd, (void)codes;
    return 0;
}

static inline int fo_qblock_encode_simd_f64(const double *restrict x, int64_t m, double inv,
                                            int nonnegative, int simd, uint8_t *restrict codes)
{
#if FO_QCODEC_X86
    if (simd && m <= FO_QBLOCK) {
        float xn[FO_QBLOCK];
        for (int64_t i = 0; i < m; ++i)
            xn[i] = (float)(x[i] * inv);
        fo_qencode_avx512(xn, m, 1.0f, nonnegative, codes);
        return 1;
    }
#endif
    (void)x, (void)m, (void)inv, (void)nonnegative, (void)simd, (void)codes;
    return 0;
}

static inline int fo_qblock_decode_simd_f32(const uint8_t *restrict codes, int64_t m,
                                            float absmax, int nonnegative, int simd,
                                            float *restrict x)
{
#if FO_QCODEC_X86
    if (simd) {
        fo_qdecode_avx512(codes, m, nonnegative, absmax, x);
        return 1;
    }
#endif
    (void)codes, (void)m, (void)absmax, (void)nonnegative, (void)simd, (void)x;
    return 0;
}

static inline int fo_qblock_decode_simd_f64(const uint8_t *restrict codes, int64_t m,
                                            float absmax, int nonnegative, int simd,
                                            double *restrict x)
{
#if FO_QCODEC_X86
    if (simd && m <= FO_QBLOCK) {
        float v[FO_QBLOCK];
        fo_qdecode_avx512(codes, m, nonnegative, 1.0f, v);
        for (int64_t i = 0; i < m; ++i)
            x[i] = (double)v[i] * (double)absmax;
        return 1;
    }
#endif
    (void)codes, (void)m, (void)absmax, (void)nonnegative, (void)simd, (void)x;
    return 0;
}

/* Typed block helpers: FO_QBLOCK_FNS(float, f32) defines fo_qblock_absmax_f32 (max |x| of
 * a block, NaN if any is NaN), fo_qblock_encode_f32 (codes of x / absmax) and
 * fo_qblock_decode_f32; `simd` (fo_qcodec_isa()) picks the AVX-512 codec, same bits. */
#define FO_QBLOCK_FNS(T, SUFFIX, UINT, MAGNITUDE)                                             \
    static inline float fo_qblock_absmax_##SUFFIX(const T *restrict x, int64_t m)            \
    {                                                                                        \
        /* the largest magnitude's bits: an integer max (vectorizes), NaN above Inf */       \
        UINT top = 0;                                                                        \
        for (int64_t i = 0; i < m; ++i) {                                                    \
            UINT b;                                                                          \
            memcpy(&b, x + i, sizeof b);                                                     \
            b &= MAGNITUDE;                                                                  \
            top = b > top ? b : top;                                                         \
        }                                                                                    \
        T mx;                                                                                \
        memcpy(&mx, &top, sizeof mx);                                                        \
        return (float)mx;                                                                    \
    }                                                                                        \
    static inline void fo_qblock_encode_##SUFFIX(const T *restrict x, int64_t m,             \
                                                 float absmax, int nonnegative, int simd,    \
                                                 uint8_t *restrict codes)                    \
    {                                                                                        \
        if (absmax >= FLT_MIN) { /* normal: multiply by the reciprocal */                    \
            const T inv = (T)1 / (T)absmax;                                                  \
            if (fo_qblock_encode_simd_##SUFFIX(x, m, inv, nonnegative, simd, codes))         \
                return;                                                                      \
            if (nonnegative)                                                                 \
                for (int64_t i = 0; i < m; ++i)                                              \
                    codes[i] = (uint8_t)fo_q_encode_unsigned((float)(x[i] * inv));           \
            else                                                                             \
                for (int64_t i = 0; i < m; ++i)                                              \
                    codes[i] = (uint8_t)fo_q_encode_signed((float)(x[i] * inv));             \
        } else { /* 0, subnormal (1 / absmax would overflow), NaN: divide */                 \
            const T den = absmax > 0 ? (T)absmax : absmax == 0 ? (T)1 : (T)absmax;           \
            for (int64_t i = 0; i < m; ++i) {                                                \
                const float xn = (float)(x[i] / den);                                        \
                codes[i] = (uint8_t)(nonnegative ? fo_q_encode_unsigned(xn)                  \
                                                 : fo_q_encode_signed(xn));                  \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    static inline void fo_qblock_decode_##SUFFIX(const uint8_t *restrict codes, int64_t m,   \
                                                 float absmax, int nonnegative, int simd,    \
                                                 T *restrict x)                              \
    {                                                                                        \
        if (fo_qblock_decode_simd_##SUFFIX(codes, m, absmax, nonnegative, simd, x))          \
            return;                                                                          \
        const float *map = fo_qmap(nonnegative);                                             \
        for (int64_t i = 0; i < m; ++i)                                                      \
            x[i] = (T)map[codes[i]] * (T)absmax;                                             \
    }

FO_QBLOCK_FNS(float, f32, uint32_t, 0x7fffffffu)
FO_QBLOCK_FNS(double, f64, uint64_t, 0x7fffffffffffffffull)

#define FO_QBLOCK_ABSMAX FO_TYPED(fo_qblock_absmax)
#define FO_QBLOCK_ENCODE FO_TYPED(fo_qblock_encode)
#define FO_QBLOCK_DECODE FO_TYPED(fo_qblock_decode)

#endif
