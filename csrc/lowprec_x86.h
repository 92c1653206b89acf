/* lowprec_x86.h — the int8 block codec of lowprec.h with AVX-512 (F, BW, DQ, VBMI): the
 * same codes and values bit for bit, several times faster than the portable loops, whose
 * map loads and bucket-table lookups GCC cannot vectorize well (gathers).
 *
 * Decode: the 256-entry float map is held as four byte planes (byte k of every entry,
 * quantize_maps.h) in 16 registers; 64 codes at a time, each plane is two byte permutes
 * (VBMI, 128 entries each) and a blend on the code's top bit, and the planes are
 * interleaved back into floats (the codes are first reordered so that the interleave's
 * lane order comes out as the element order).
 *
 * Encode: the code of a magnitude a is base + min(floor(f), n - 1) with f linear in a
 * inside each decade of the dynamic map (tools/make_quantize_maps.py, region tables); the
 * decade ("region") comes from a's binade and one compare with the exact threshold
 * between decades. floor(f) is taken from f - DELTA and f + DELTA (FO_QENC_BAND = 2 DELTA
 * apart): when they differ, a is within float rounding of a threshold and the lane is re-encoded exactly (fo_q_encode_*,
 * a few per million elements). tools/check_qencode.c compares this encode with the
 * portable one on every float32.
 *
 * The functions are out of line with their own target attribute, called once per block
 * of FO_QBLOCK from code compiled for any x86-64 (FO_CLONES loops, the sanitizer build);
 * fo_qcodec_isa() says whether this CPU has the instructions (computed once per call,
 * outside parallel code). FO_QCODEC_PORTABLE turns the AVX-512 path off at compile time. */
#ifndef FASTOPT_LOWPREC_X86_H
#define FASTOPT_LOWPREC_X86_H

#include "lowprec.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(FO_QCODEC_PORTABLE)
#  include <immintrin.h>
#  define FO_QCODEC_X86 1
#else
#  define FO_QCODEC_X86 0
#endif

/* 1 when the AVX-512 codec can run on this CPU, else 0. */
static inline int fo_qcodec_isa(void)
{
#if FO_QCODEC_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vbmi");
#else
    return 0;
#endif
}

#if FO_QCODEC_X86
#  define FO_QCODEC_TARGET __attribute__((noinline, target("avx512f,avx512bw,avx512dq,avx512vbmi")))

/* Byte q of 64 reordered codes is code 16 j + 4 L + s for q = 16 L + 4 j + s: after the two
 * interleaves (bytes, then 16-bit words; each within 128-bit lanes), float vector j holds
 * elements 16 j .. 16 j + 15 in order. */
static const uint8_t fo_qdecode_order[64] = {
    0,  1,  2,  3,  16, 17, 18, 19, 32, 33, 34, 35, 48, 49, 50, 51, 4,  5,  6,  7,  20, 21,
    22, 23, 36, 37, 38, 39, 52, 53, 54, 55, 8,  9,  10, 11, 24, 25, 26, 27, 40, 41, 42, 43,
    56, 57, 58, 59, 12, 13, 14, 15, 28, 29, 30, 31, 44, 45, 46, 47, 60, 61, 62, 63};

/* out[i] = map[codes[i]] * scale for i < m (float32 products, as the portable decode). */
static FO_QCODEC_TARGET void fo_qdecode_avx512(const uint8_t *restrict codes, int64_t m,
                                               int nonnegative, float scale,
                                               float *restrict out)
{
    const uint8_t *planes = nonnegative ? fo_qmap_unsigned_planes : fo_qmap_signed_planes;
    __m512i t[4][4];
    for (int k = 0; k < 4; ++k)
        for (int q = 0; q < 4; ++q)
            t[k][q] = _mm512_loadu_si512((const void *)(planes + 256 * k + 64 * q));
    const __m512i order = _mm512_loadu_si512((const void *)fo_qdecode_order);
    const __m512 s = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i + 64 <= m; i += 64) {
        const __m512i c =
            _mm512_permutexvar_epi8(order, _mm512_loadu_si512((const void *)(codes + i)));
        const __mmask64 top = _mm512_movepi8_mask(c);
        __m512i p[4];
        for (int k = 0; k < 4; ++k)
            p[k] = _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(t[k][0], c, t[k][1]),
                                          _mm512_permutex2var_epi8(t[k][2], c, t[k][3]));
        const __m512i lo01 = _mm512_unpacklo_epi8(p[0], p[1]),
                      hi01 = _mm512_unpackhi_epi8(p[0], p[1]),
                      lo23 = _mm512_unpacklo_epi8(p[2], p[3]),
                      hi23 = _mm512_unpackhi_epi8(p[2], p[3]);
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(lo01, lo23)), s));
        _mm512_storeu_ps(out + i + 16, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(lo01, lo23)), s));
        _mm512_storeu_ps(out + i + 32, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(hi01, hi23)), s));
        _mm512_storeu_ps(out + i + 48, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(hi01, hi23)), s));
    }
    const float *map = fo_qmap(nonnegative);
    for (; i < m; ++i)
        out[i] = map[codes[i]] * scale;
}

/* codes[i] = the code of (float)(x[i] * inv) for i < m: fo_q_encode_unsigned when
 * `nonnegative`, else fo_q_encode_signed, bit for bit. */
static FO_QCODEC_TARGET void fo_qencode_avx512(const float *restrict x, int64_t m, float inv,
                                               int nonnegative, uint8_t *restrict codes)
{
    const __m512 scale = _mm512_loadu_ps(nonnegative ? fo_qenc_unsigned_scale
                                                     : fo_qenc_signed_scale),
                 low = _mm512_loadu_ps(nonnegative ? fo_qenc_unsigned_low : fo_qenc_signed_low),
                 band = _mm512_set1_ps(FO_QENC_BAND);
    const int32_t *region = nonnegative ? fo_qenc_unsigned_binade_region
                                        : fo_qenc_signed_binade_region;
    const float *split = nonnegative ? fo_qenc_unsigned_binade_split
                                     : fo_qenc_signed_binade_split;
    const __m512i top = _mm512_loadu_si512((const void *)(nonnegative ? fo_qenc_unsigned_top
                                                                       : fo_qenc_signed_top)),
                  region0 = _mm512_loadu_si512((const void *)region),
                  region1 = _mm512_loadu_si512((const void *)(region + 16));
    const __m512 split0 = _mm512_loadu_ps(split), split1 = _mm512_loadu_ps(split + 16);
    const __m512 one = _mm512_set1_ps(1.0f), vinv = _mm512_set1_ps(inv);
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff),
                  first_binade = _mm512_set1_epi32(FO_QMAP_FIRST_EXPONENT << 23),
                  ione = _mm512_set1_epi32(1), i254 = _mm512_set1_epi32(254);
    int64_t i = 0;
    for (; i + 16 <= m; i += 16) {
        const __m512 xn = _mm512_mul_ps(_mm512_loadu_ps(x + i), vinv);
        const __m512i xb = _mm512_castps_si512(xn), ab = _mm512_and_si512(xb, magnitude);
        /* a in [0, 1] (NaN and Inf encode as 1); its binade's index in the low 5 bits */
        const __m512 a = _mm512_min_ps(_mm512_castsi512_ps(ab), one);
        const __m512i e =
            _mm512_srli_epi32(_mm512_max_epu32(_mm512_castps_si512(a), first_binade), 23);
        const __mmask16 above =
            _mm512_cmp_ps_mask(a, _mm512_permutex2var_ps(split0, e, split1), _CMP_GT_OQ);
        __m512i r = _mm512_permutex2var_epi32(region0, e, region1);
        r = _mm512_mask_add_epi32(r, above, r, ione);
        const __m512 f = _mm512_fmadd_ps(a, _mm512_permutexvar_ps(r, scale),
                                         _mm512_permutexvar_ps(r, low));
        const __m512i lo = _mm512_cvttps_epi32(f);
        const __m512i hi = _mm512_cvttps_epi32(_mm512_add_ps(f, band));
        __m512i c = _mm512_min_epi32(lo, _mm512_permutexvar_epi32(r, top));
        if (nonnegative) /* a non-zero magnitude takes at least code 1 */
            c = _mm512_max_epi32(c, _mm512_min_epu32(ab, ione));
        else /* a negative value: the mirror of its magnitude's code, capped below 255 */
            c = _mm512_mask_sub_epi32(c, _mm512_movepi32_mask(xb), i254, _mm512_min_epi32(c, i254));
        _mm_storeu_si128((__m128i *)(void *)(codes + i), _mm512_cvtepi32_epi8(c));
        __mmask16 near = _mm512_cmpneq_epi32_mask(lo, hi);
#ifdef FO_QENCODE_SKIP_EXACT /* tools/check_qencode.c's self-check: the band matters */
        near = 0;
#endif
        if (near) {
            float v[16];
            _mm512_storeu_ps(v, xn);
            for (; near; near &= (__mmask16)(near - 1)) {
                const int l = __builtin_ctz(near);
                codes[i + l] = (uint8_t)(nonnegative ? fo_q_encode_unsigned(v[l])
                                                     : fo_q_encode_signed(v[l]));
            }
        }
    }
    for (; i < m; ++i) {
        const float xn = x[i] * inv;
        codes[i] = (uint8_t)(nonnegative ? fo_q_encode_unsigned(xn) : fo_q_encode_signed(xn));
    }
}
#endif

#endif
