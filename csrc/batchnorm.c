/* batchnorm.c — batch normalization forward and backward with deterministic reductions.
 * The typed bodies live in batchnorm.inc, instantiated here for float and double.
 *
 * x is viewed as x[n][c][s]. Per-channel sums are accumulated in double following a plan
 * that depends on the shape only: fixed blocks summed in fixed lanes, block sums added in
 * block order. Threads only decide who computes which block, so every result is the same
 * bits for any thread count. Two layouts:
 *
 * rows   (s < FO_BN_PLANE_MIN, e.g. (N, D)): n rows of w = c*s columns, summed column-wise
 *        (vector lanes = columns) in chunks of whole channels (about FO_BN_CHUNK columns).
 *        Wide inputs (w >= FO_BN_WIDE) use one block of all rows; narrower ones use blocks
 *        of about FO_BN_BLOCK elements, at most FO_BN_MAX_BLOCKS of them. A channel's sum
 *        adds its column sums block by block, columns in order.
 * planes (s >= FO_BN_PLANE_MIN, e.g. (N, C, H, W)): channel ch is n planes of s contiguous
 *        values. Each plane (or FO_BN_BLOCK-long segment of a larger plane) is one block,
 *        summed into FO_BN_LANES double lanes; tasks walk the planes in memory order, so the
 *        reduction streams through x. A channel's sum adds its blocks in plane order.
 *
 * Rows inputs with one block whose column chunk fits in FO_BN_FUSE_BYTES (e.g. (256, 4096)
 * float32) use the fused plan: a task owns a chunk of whole channels, reduces it, finishes
 * those channels and applies the element-wise pass while the chunk is still in cache, with
 * no barrier between threads. Otherwise block sums go to scratch, and after a barrier each
 * channel is finished and the element-wise pass is split by elements. (Fusing the planes
 * layout, per channel, measured 2x slower: n short strided runs per channel.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

#define FO_BN_PLANE_MIN 32
#define FO_BN_CHUNK 128
#define FO_BN_WIDE 1024
#define FO_BN_BLOCK 65536
#define FO_BN_MAX_BLOCKS 64
#define FO_BN_LANES 16 /* four vectors of 4 doubles */
#define FO_BN_FUSE_BYTES 131072

/* Helpers called from the target_clones tasks must be inlined into them, or they are built
 * for the baseline target only. */
#if defined(__GNUC__)
#  define FO_BN_INLINE static inline __attribute__((always_inline))
#else
#  define FO_BN_INLINE static inline
#endif

#if defined(__GNUC__) && !defined(FO_BN_SCALAR)
typedef double fo_f64x4 __attribute__((vector_size(32)));
#endif

typedef struct fo_bn_plan {
    int64_t n, c, s, m; /* m = n * s values per channel */
    int rows;           /* 1: rows layout, 0: planes layout */
    int fused;          /* one block per channel: tasks own whole channels, no barrier */
    int64_t w;          /* rows: columns per row (c * s) */
    int64_t chunk;      /* rows: columns per chunk, a multiple of s */
    int64_t chunks;     /* rows: column chunks */
    int64_t row_block;  /* rows: rows per block */
    int64_t blocks;     /* rows: row blocks; planes: blocks per channel */
    int64_t segments;   /* planes: FO_BN_BLOCK-long segments per plane */
    int64_t tasks;      /* reduction tasks of the scratch plan (fused: chunks or channels) */
} fo_bn_plan;

static fo_bn_plan fo_bn_make_plan(int64_t n, int64_t c, int64_t s, int64_t elem)
{
    fo_bn_plan p;
    memset(&p, 0, sizeof p);
    p.n = n;
    p.c = c;
    p.s = s;
    p.m = n * s;
    p.rows = s < FO_BN_PLANE_MIN;
    if (p.rows) {
        p.w = c * s;
        p.chunk = s > 0 ? (FO_BN_CHUNK / s) * s : FO_BN_CHUNK; /* whole channels */
        p.chunks = p.w > 0 ? (p.w + p.chunk - 1) / p.chunk : 0;
        if (p.w >= FO_BN_WIDE || n == 0 || p.w == 0) {
            p.row_block = n > 0 ? n : 1;
        } else {
            const int64_t by_size = (FO_BN_BLOCK + p.w - 1) / p.w;
            const int64_t by_count = (n + FO_BN_MAX_BLOCKS - 1) / FO_BN_MAX_BLOCKS;
            p.row_block = by_size > by_count ? by_size : by_count;
        }
        p.blocks = n > 0 ? (n + p.row_block - 1) / p.row_block : 1;
        p.tasks = p.blocks * p.chunks;
    } else {
        /* one block per plane (or per FO_BN_BLOCK segment of a plane); tasks walk the planes
         * in memory order, so the reduction streams through x */
        p.segments = s > FO_BN_BLOCK ? (s + FO_BN_BLOCK - 1) / FO_BN_BLOCK : 1;
        p.blocks = n * p.segments;
        p.tasks = c * p.blocks;
    }
    /* rows with one block whose column chunk stays in cache: tasks own whole channels */
    p.fused = p.rows && p.blocks == 1 && n * p.chunk * elem <= FO_BN_FUSE_BYTES;
#ifdef FO_BN_NO_FUSE
    p.fused = 0;
#endif
    if (p.fused)
        p.tasks = p.chunks;
    return p;
}

/* Add the FO_BN_LANES lanes of a block in a fixed tree. */
static inline double fo_bn_lanes_total(const double *v)
{
    double t[FO_BN_LANES / 2];
    for (int j = 0; j < FO_BN_LANES / 2; ++j)
        t[j] = v[j] + v[j + FO_BN_LANES / 2];
    for (int h = FO_BN_LANES / 4; h >= 1; h /= 2)
        for (int j = 0; j < h; ++j)
            t[j] = t[j] + t[j + h];
    return t[0];
}

#define FO_TEMPLATE "batchnorm.inc"
#include "instantiate.h"
