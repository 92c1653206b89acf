/* philox.h — the counter-based Philox4x32-10 generator (Salmon et al., SC'11; Random123).
 *
 * Header-only (static inline): a pure function of a 128-bit counter and a 64-bit key, so
 * any element's random number can be computed without touching any other element's.
 * fo_philox4x32_10() is the reference, checked against Random123's known-answer vectors
 * (tests/test_philox.py); fo_philox_tiles() is the same function over many counters at once,
 * in the implementation fo_philox_isa() picks for this CPU:
 *   FO_PHILOX_AVX512   x86-64 with AVX-512F: _mm512_mul_epu32, 16 lanes
 *   FO_PHILOX_AVX2     x86-64 with AVX2: _mm256_mul_epu32, 8 lanes
 *   FO_PHILOX_SSE2     other x86-64: _mm_mul_epu32, 4 lanes
 *   FO_PHILOX_VECTOR   other CPUs with GCC/clang: vector extensions, 16 lanes
 *   FO_PHILOX_SCALAR_IMPL  the reference, one counter at a time
 * The x86 ones are out-of-line functions with their own target attribute, called once per
 * 256 words from the target_clones loops. All give the same words (checked against each
 * other, tests/test_philox.py). Measured on a Zen 4, 4M words, 1 thread, dropout forward:
 * AVX-512 2.0 ms, AVX2 2.45 ms, vector extensions in the v4 clone 2.7 ms; the vector
 * extensions compiled for AVX2 or SSE2 emulate 64-bit multiplies and spill (27-50 ms),
 * which is why x86 does not use them. *
 * The stream of (seed, stream) used by fastopt's dropout:
 *   key     = (seed & 0xffffffff, seed >> 32)
 *   counter = (block & 0xffffffff, block >> 32, stream & 0xffffffff, stream >> 32)
 *   element i reads word (i % 64) / 16 of the output for block 16 * (i / 64) + i % 16.
 * That is, elements come in tiles of 64 = 16 blocks x 4 words, word-major inside a tile
 * (no transposition in the vector code). The numbers of an element depend on (seed, stream,
 * i) only: never on the thread count, the chunking or the array's dtype. */
#ifndef FASTOPT_PHILOX_H
#define FASTOPT_PHILOX_H

#include <stdint.h>
#include <string.h>

#include "config.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(_M_X64)) && !defined(FO_PHILOX_SCALAR)
#  include <immintrin.h>
#  define FO_PHILOX_X86 1
#else
#  define FO_PHILOX_X86 0
#endif

#define FO_PHILOX_M0 0xD2511F53u
#define FO_PHILOX_M1 0xCD9E8D57u
#define FO_PHILOX_W0 0x9E3779B9u /* golden ratio */
#define FO_PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

/* Elements per tile (16 counters x 4 output words) and tiles generated per call. */
#define FO_PHILOX_TILE 64
#define FO_PHILOX_GROUP 4
#define FO_PHILOX_GROUP_WORDS (FO_PHILOX_TILE * FO_PHILOX_GROUP)

/* Philox4x32 with 10 rounds on one counter: the reference implementation. */
static inline void fo_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; ++round) {
        const uint64_t p0 = (uint64_t)FO_PHILOX_M0 * c0, p1 = (uint64_t)FO_PHILOX_M1 * c2;
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += FO_PHILOX_W0;
        k1 += FO_PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

#if defined(__GNUC__) && !defined(FO_PHILOX_SCALAR)
/* GCC 12 reports the lane arrays below as "may be used uninitialized" while they are being
 * initialized (a false positive of its vector lowering); silence exactly that here. */
#  if !defined(__clang__)
#    pragma GCC diagnostic push
#    pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#  endif
/* 16 lanes of uint32 (four 128-bit NEON/SSE registers, one AVX-512 register). */
typedef uint32_t fo_u32x16 __attribute__((vector_size(64)));
typedef uint64_t fo_u64x8 __attribute__((vector_size(64)));

/* hi:lo = a * M per 32-bit lane, through the even and odd 64-bit products. */
#  define FO_PHILOX_MULHILO(a, M, hi, lo)                                                    \
      do {                                                                                   \
          const fo_u64x8 ev_ = ((fo_u64x8)(a) & 0xffffffffull) * (uint64_t)(M);              \
          const fo_u64x8 od_ = ((fo_u64x8)(a) >> 32) * (uint64_t)(M);                        \
          (lo) = (fo_u32x16)((ev_ & 0xffffffffull) | (od_ << 32));                           \
          (hi) = (fo_u32x16)((ev_ >> 32) | (od_ & 0xffffffff00000000ull));                   \
      } while (0)

/* Words of tiles [tile, tile + FO_PHILOX_GROUP) of stream (seed, stream) into
 * out[FO_PHILOX_GROUP_WORDS]: out[64 * g + 16 * k + j] is word k of the block
 * 16 * (tile + g) + j. The groups are independent chains (instruction-level parallelism). */
static inline __attribute__((always_inline)) void
fo_philox_tiles_vec(uint64_t seed, uint64_t stream, uint64_t tile, uint32_t *restrict out)
{
    const fo_u32x16 iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const fo_u32x16 zero = iota - iota;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    /* Round 1 by hand: only counter word 0 differs between lanes, so the product of word 2
     * (the stream's low half) is one scalar multiply. */
    const uint64_t p1 = (uint64_t)FO_PHILOX_M1 * (uint32_t)stream;
    fo_u32x16 c0[FO_PHILOX_GROUP], c1[FO_PHILOX_GROUP], c2[FO_PHILOX_GROUP],
        c3[FO_PHILOX_GROUP];
    for (int g = 0; g < FO_PHILOX_GROUP; ++g) {
        const uint64_t block = (tile + (uint64_t)g) * 16u; /* multiple of 16: no carry */
        const fo_u32x16 w0 = iota + (uint32_t)block;
        fo_u32x16 hi0, lo0;
        FO_PHILOX_MULHILO(w0, FO_PHILOX_M0, hi0, lo0);
        c0[g] = zero + ((uint32_t)(p1 >> 32) ^ (uint32_t)(block >> 32) ^ k0);
        c1[g] = zero + (uint32_t)p1;
        c2[g] = hi0 ^ (uint32_t)(stream >> 32) ^ k1;
        c3[g] = lo0;
    }
    for (int round = 1; round < 10; ++round) {
        k0 += FO_PHILOX_W0;
        k1 += FO_PHILOX_W1;
        for (int g = 0; g < FO_PHILOX_GROUP; ++g) {
            fo_u32x16 hi0, lo0, hi1, lo1;
            FO_PHILOX_MULHILO(c0[g], FO_PHILOX_M0, hi0, lo0);
            FO_PHILOX_MULHILO(c2[g], FO_PHILOX_M1, hi1, lo1);
            c0[g] = hi1 ^ c1[g] ^ k0;
            c1[g] = lo1;
            c2[g] = hi0 ^ c3[g] ^ k1;
            c3[g] = lo0;
        }
    }
    for (int g = 0; g < FO_PHILOX_GROUP; ++g) {
        memcpy(out + 64 * g, &c0[g], 64);
        memcpy(out + 64 * g + 16, &c1[g], 64);
        memcpy(out + 64 * g + 32, &c2[g], 64);
        memcpy(out + 64 * g + 48, &c3[g], 64);
    }
}
#  if !defined(__clang__)
#    pragma GCC diagnostic pop
#  endif
#endif

/* The same words, one counter at a time through the reference. */
static inline void fo_philox_tiles_scalar(uint64_t seed, uint64_t stream, uint64_t tile,
                                          uint32_t *restrict out)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    for (int g = 0; g < FO_PHILOX_GROUP; ++g)
        for (int j = 0; j < 16; ++j) {
            const uint64_t block = (tile + (uint64_t)g) * 16u + (uint64_t)j;
            const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                                     (uint32_t)(stream >> 32)};
            uint32_t w[4];
            fo_philox4x32_10(ctr, key, w);
            for (int k = 0; k < 4; ++k)
                out[64 * g + 16 * k + j] = w[k];
        }
}

#if FO_PHILOX_X86
/* The x86 paths share one body: V vectors of L blocks (L = 4, 8, 16 for SSE2, AVX2, AVX-512) cover
 * the 64 blocks of a group, in batches of FO_PHILOX_X86_BATCH independent chains. Round 1 is
 * done by hand as in fo_philox_tiles_vec. Word k of block 16 * (tile + t) + j goes to
 * out[64 * t + 16 * k + j]. */
#  define FO_PHILOX_X86_BATCH 4
#  define FO_PHILOX_X86_BODY(VEC, L, SET1, ADD, XOR, STORE, MULHILO, IOTA)                    \
      const VEC m0 = SET1((int)FO_PHILOX_M0), m1 = SET1((int)FO_PHILOX_M1);                  \
      const uint64_t p1 = (uint64_t)FO_PHILOX_M1 * (uint32_t)stream;                         \
      for (int v0 = 0; v0 < 64 / (L); v0 += FO_PHILOX_X86_BATCH) {                           \
          VEC c0[FO_PHILOX_X86_BATCH], c1[FO_PHILOX_X86_BATCH], c2[FO_PHILOX_X86_BATCH],     \
              c3[FO_PHILOX_X86_BATCH];                                                       \
          uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);                         \
          for (int v = 0; v < FO_PHILOX_X86_BATCH; ++v) {                                    \
              const uint64_t block = tile * 16u + (uint64_t)(L) * (uint64_t)(v0 + v);        \
              VEC hi0, lo0;                                                                  \
              MULHILO(ADD(SET1((int)(uint32_t)block), IOTA), m0, hi0, lo0);                  \
              c0[v] = SET1((int)((uint32_t)(p1 >> 32) ^ (uint32_t)(block >> 32) ^ k0));      \
              c1[v] = SET1((int)(uint32_t)p1);                                               \
              c2[v] = XOR(hi0, SET1((int)((uint32_t)(stream >> 32) ^ k1)));                  \
              c3[v] = lo0;                                                                   \
          }                                                                                  \
          for (int round = 1; round < 10; ++round) {                                         \
              k0 += FO_PHILOX_W0;                                                            \
              k1 += FO_PHILOX_W1;                                                            \
              const VEC kk0 = SET1((int)k0), kk1 = SET1((int)k1);                            \
              for (int v = 0; v < FO_PHILOX_X86_BATCH; ++v) {                                \
                  VEC hi0, lo0, hi1, lo1;                                                    \
                  MULHILO(c0[v], m0, hi0, lo0);                                              \
                  MULHILO(c2[v], m1, hi1, lo1);                                              \
                  c0[v] = XOR(XOR(hi1, c1[v]), kk0);                                         \
                  c1[v] = lo1;                                                               \
                  c2[v] = XOR(XOR(hi0, c3[v]), kk1);                                         \
                  c3[v] = lo0;                                                               \
              }                                                                              \
          }                                                                                  \
          for (int v = 0; v < FO_PHILOX_X86_BATCH; ++v) {                                    \
              const int b0 = (L) * (v0 + v); /* first block of the vector in the group */   \
              uint32_t *o = out + 64 * (b0 / 16) + b0 % 16;                                  \
              STORE((VEC *)o, c0[v]);                                                        \
              STORE((VEC *)(o + 16), c1[v]);                                                 \
              STORE((VEC *)(o + 32), c2[v]);                                                 \
              STORE((VEC *)(o + 48), c3[v]);                                                 \
          }                                                                                  \
      }

#  define FO_PHILOX_SSE2_MULHILO(a, m, hi, lo)                                               \
      do {                                                                                   \
          const __m128i mask_ = _mm_set_epi32(0, -1, 0, -1);                                 \
          const __m128i pe_ = _mm_mul_epu32((a), (m));                                       \
          const __m128i po_ = _mm_mul_epu32(_mm_srli_epi64((a), 32), (m));                   \
          (lo) = _mm_or_si128(_mm_and_si128(pe_, mask_), _mm_slli_epi64(po_, 32));           \
          (hi) = _mm_or_si128(_mm_srli_epi64(pe_, 32), _mm_andnot_si128(mask_, po_));        \
      } while (0)

static __attribute__((noinline)) void fo_philox_tiles_sse2(uint64_t seed, uint64_t stream,
                                                           uint64_t tile, uint32_t *restrict out)
{
    FO_PHILOX_X86_BODY(__m128i, 4, _mm_set1_epi32, _mm_add_epi32, _mm_xor_si128,
                       _mm_storeu_si128, FO_PHILOX_SSE2_MULHILO, _mm_set_epi32(3, 2, 1, 0))
}

#  define FO_PHILOX_AVX2_MULHILO(a, m, hi, lo)                                               \
      do {                                                                                   \
          const __m256i pe_ = _mm256_mul_epu32((a), (m));                                    \
          const __m256i po_ = _mm256_mul_epu32(_mm256_srli_epi64((a), 32), (m));             \
          (lo) = _mm256_blend_epi32(pe_, _mm256_slli_epi64(po_, 32), 0xAA);                  \
          (hi) = _mm256_blend_epi32(_mm256_srli_epi64(pe_, 32), po_, 0xAA);                  \
      } while (0)

static __attribute__((noinline, target("avx2"))) void
fo_philox_tiles_avx2(uint64_t seed, uint64_t stream, uint64_t tile, uint32_t *restrict out)
{
    FO_PHILOX_X86_BODY(__m256i, 8, _mm256_set1_epi32, _mm256_add_epi32, _mm256_xor_si256,
                       _mm256_storeu_si256, FO_PHILOX_AVX2_MULHILO,
                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

#  define FO_PHILOX_AVX512_MULHILO(a, m, hi, lo)                                             \
      do {                                                                                   \
          const __m512i pe_ = _mm512_mul_epu32((a), (m));                                    \
          const __m512i po_ = _mm512_mul_epu32(_mm512_srli_epi64((a), 32), (m));             \
          (lo) = _mm512_mask_blend_epi32(0xAAAA, pe_, _mm512_slli_epi64(po_, 32));           \
          (hi) = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe_, 32), po_);           \
      } while (0)

static __attribute__((noinline, target("avx512f"))) void
fo_philox_tiles_avx512(uint64_t seed, uint64_t stream, uint64_t tile, uint32_t *restrict out)
{
    FO_PHILOX_X86_BODY(__m512i, 16, _mm512_set1_epi32, _mm512_add_epi32, _mm512_xor_si512,
                       _mm512_storeu_si512, FO_PHILOX_AVX512_MULHILO,
                       _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
}
#endif

enum fo_philox_impl {
    FO_PHILOX_SCALAR_IMPL, FO_PHILOX_SSE2, FO_PHILOX_AVX2, FO_PHILOX_VECTOR, FO_PHILOX_AVX512
};

/* The fastest implementation on this CPU; compute it once per call, outside parallel code. */
static inline int fo_philox_isa(void)
{
#if defined(FO_PHILOX_FORCE_ISA) /* for checking the paths against each other */
    return FO_PHILOX_FORCE_ISA;
#elif FO_PHILOX_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return FO_PHILOX_AVX512;
    return __builtin_cpu_supports("avx2") ? FO_PHILOX_AVX2 : FO_PHILOX_SSE2;
#elif defined(__GNUC__) && !defined(FO_PHILOX_SCALAR)
    return FO_PHILOX_VECTOR;
#else
    return FO_PHILOX_SCALAR_IMPL;
#endif
}

/* Words of tiles [tile, tile + FO_PHILOX_GROUP) of stream (seed, stream) into
 * out[FO_PHILOX_GROUP_WORDS] (see fo_philox_tiles_vec), with implementation `isa`. */
static inline
#if defined(__GNUC__)
    __attribute__((always_inline))
#endif
    void
    fo_philox_tiles(int isa, uint64_t seed, uint64_t stream, uint64_t tile, uint32_t *restrict out)
{
#if FO_PHILOX_X86
    if (isa == FO_PHILOX_AVX2) {
        fo_philox_tiles_avx2(seed, stream, tile, out);
        return;
    }
    if (isa == FO_PHILOX_AVX512) {
        fo_philox_tiles_avx512(seed, stream, tile, out);
        return;
    }
    if (isa == FO_PHILOX_SSE2) {
        fo_philox_tiles_sse2(seed, stream, tile, out);
        return;
    }
#endif
#if defined(__GNUC__) && !defined(FO_PHILOX_SCALAR) && (!FO_PHILOX_X86 || defined(FO_PHILOX_FORCE_ISA))
    if (isa == FO_PHILOX_VECTOR) {
        fo_philox_tiles_vec(seed, stream, tile, out);
        return;
    }
#endif
    (void)isa;
    fo_philox_tiles_scalar(seed, stream, tile, out);
}

/* The integer threshold of a drop probability p in [0, 1): a word u keeps its element iff
 * u >= threshold, so P(keep) = 1 - threshold / 2^32, within 2^-32 of 1 - p. */
static inline uint32_t fo_philox_threshold(double p)
{
    const double t = p * 4294967296.0;
    if (!(t > 0.0))
        return 0;
    return t >= 4294967295.0 ? 0xffffffffu : (uint32_t)t;
}

#endif
