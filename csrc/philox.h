/* philox.h — the counter-based Philox4x32-10 generator (Salmon et al., SC'11; Random123).
 *
 * Header-only (static inline): a pure function of a 128-bit counter and a 64-bit key, so
 * any element's random number can be computed without touching any other element's.
 * fo_philox4x32_10() is the reference, checked against Random123's known-answer vectors
 * (tests/test_philox.py); fo_philox_tiles() is the same function over many counters at once,
 * written with GCC vector extensions so every target_clones variant vectorizes it.
 *
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
/* 16 lanes of uint32 (one AVX-512 register; two AVX2 or four SSE2 registers otherwise). */
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
fo_philox_tiles(uint64_t seed, uint64_t stream, uint64_t tile, uint32_t *restrict out)
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
#else
/* Portable fallback: the same numbers, one counter at a time. */
static inline void fo_philox_tiles(uint64_t seed, uint64_t stream, uint64_t tile,
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
#endif

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
