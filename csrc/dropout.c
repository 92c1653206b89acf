/* dropout.c — inverted dropout forward/backward with Philox4x32-10 keep decisions.
 * The typed bodies live in dropout.inc, instantiated here for float and double.
 *
 * Work is split between threads in whole tiles of 64 elements (FO_PHILOX_TILE): a tile's
 * random words and its word of packed mask bits belong to one thread, and the numbers of
 * an element depend only on (seed, stream, index), so the output is the same bits for any
 * thread count. */
#include "fastopt.h"
#include "parallel.h"
#include "philox.h"
#include "rules.h"

/* bit e of a 32-bit word, as a table: SSE2 has no per-lane variable shifts */
static const uint32_t fo_bit32[32] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};

/* Keep bits of one tile: bit e of the result is w[e] >= thr, for e < m (others zero). */
static inline
#if defined(__GNUC__)
    __attribute__((always_inline))
#endif
    uint64_t
    fo_pack_keep(const uint32_t *restrict w, int64_t m, uint32_t thr)
{
    uint32_t lo = 0, hi = 0;
    if (m == FO_PHILOX_TILE) { /* two fixed-length loops: GCC vectorizes the OR reductions */
        for (int e = 0; e < 32; ++e) /* masks, not branches: the decisions are random */
            lo |= fo_bit32[e] & (0u - (uint32_t)(w[e] >= thr));
        for (int e = 0; e < 32; ++e)
            hi |= fo_bit32[e] & (0u - (uint32_t)(w[32 + e] >= thr));
    } else {
        for (int64_t e = 0; e < m; ++e) {
            const uint32_t keep = 0u - (uint32_t)(w[e] >= thr);
            if (e < 32)
                lo |= fo_bit32[e] & keep;
            else
                hi |= fo_bit32[e - 32] & keep;
        }
    }
    return (uint64_t)lo | ((uint64_t)hi << 32);
}

/* Tiles of FO_PHILOX_TILE elements covering n elements; threads split whole tiles. */
static inline int64_t fo_tiles(int64_t n) { return (n + FO_PHILOX_TILE - 1) / FO_PHILOX_TILE; }

/* Tiles per chunk of a parallel call: about FO_CHUNKS_PER_THREAD chunks per thread, a
 * multiple of FO_SPLIT_ALIGN tiles (so of FO_PHILOX_GROUP). Threads take chunks as they
 * ask, so a thread slowed by the page faults of a new output, a late wake-up or a
 * preemption takes fewer instead of the call waiting for its fixed half. A tile's result
 * depends only on its index: the same bits for any chunking and thread count. */
static inline int64_t fo_tile_chunk(int64_t tiles, int team)
{
    return fo_chunk_length_least(tiles, team, 1);
}

/* A pragma inside a macro: C99's _Pragma, MSVC's __pragma. */
#if defined(_MSC_VER) && !defined(__clang__)
#  define FO_PRAGMA(x) __pragma(x)
#else
#  define FO_PRAGMA(x) _Pragma(#x)
#endif

/* Inside a parallel region: run `body` with t0, t1 bound to each chunk of tiles
 * [0, tiles) this thread takes. */
#define FO_FOR_EACH_TILE_CHUNK(tiles, team, t0, t1, body)                                 \
    do {                                                                                   \
        const int64_t fo_chunk_ = fo_tile_chunk((tiles), (team));                          \
        const int fo_chunks_ = (int)(((tiles) + fo_chunk_ - 1) / fo_chunk_);               \
        int fo_c_; /* an int loop variable: MSVC's OpenMP 2.0 takes no other */            \
        FO_PRAGMA(omp for schedule(dynamic, 1) nowait)                                     \
        for (fo_c_ = 0; fo_c_ < fo_chunks_; ++fo_c_) {                                     \
            const int64_t t0 = (int64_t)fo_c_ * fo_chunk_;                                 \
            const int64_t t1 = t0 + fo_chunk_ < (tiles) ? t0 + fo_chunk_ : (tiles);        \
            body;                                                                          \
        }                                                                                  \
    } while (0)

static FO_CLONES void fo_philox_fill_tiles(uint32_t *restrict out, int64_t n, int64_t t0,
                                           int64_t t1, uint64_t seed, uint64_t stream, int isa)
{
    FO_ALIGNED(64) uint32_t w[FO_PHILOX_GROUP_WORDS];
    for (int64_t t = t0; t < t1; t += FO_PHILOX_GROUP) {
        fo_philox_tiles(isa, seed, stream, (uint64_t)t, w);
        const int64_t base = t * FO_PHILOX_TILE, end = t1 * FO_PHILOX_TILE;
        const int64_t stop = end < n ? end : n;
        const int64_t m = stop - base < FO_PHILOX_GROUP_WORDS ? stop - base : FO_PHILOX_GROUP_WORDS;
        memcpy(out + base, w, (size_t)m * sizeof(uint32_t));
    }
}

int fo_philox_fill(uint32_t *out, int64_t n, uint64_t seed, uint64_t stream, int nthreads)
{
    if (n < 0 || (n > 0 && !out))
        return FO_ERR_ARGUMENT;
    const int team = fo_team_size(n, nthreads), isa = fo_philox_isa();
    if (team <= 1) { /* no OpenMP region at all: even an if(0) one costs a team setup */
        fo_philox_fill_tiles(out, n, 0, fo_tiles(n), seed, stream, isa);
        return FO_OK;
    }
#pragma omp parallel num_threads(team)
    FO_FOR_EACH_TILE_CHUNK(fo_tiles(n), team, t0, t1,
                           fo_philox_fill_tiles(out, n, t0, t1, seed, stream, isa));
    return FO_OK;
}

#define FO_TEMPLATE "dropout.inc"
#include "instantiate.h"
