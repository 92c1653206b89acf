/* batchnorm.c — batch normalization forward and backward with deterministic reductions.
 * The typed bodies live in batchnorm.inc, instantiated here for float and double.
 *
 * Reductions (per-channel sums, in double for every dtype) follow a plan that depends on
 * the shape only: fixed blocks summed with fixed lanes, block sums added in block order.
 * Threads only decide who computes which block, so the result is the same bits for any
 * thread count. Two layouts, both viewed as x[n][c][s]:
 *
 * rows   (s < FO_BN_PLANE_MIN, e.g. (N, D)): n rows of w = c*s columns. A task sums a block
 *        of rows for a chunk of FO_BN_CHUNK columns, column-wise (vector lanes = columns).
 *        Wide inputs (w >= FO_BN_WIDE) use one row block (columns give the parallelism);
 *        narrower ones use row blocks of about FO_BN_BLOCK elements, at most FO_BN_MAX_BLOCKS.
 *        Column sums are folded into channel sums (block-major, then column order).
 * planes (s >= FO_BN_PLANE_MIN, e.g. (N, C, H, W)): channel ch is n planes of s contiguous
 *        values. A task sums a block of whole planes (about FO_BN_BLOCK elements), or one
 *        FO_BN_BLOCK-long segment of a larger plane, into FO_BN_LANES double lanes. */
#include <math.h>
#include <stdlib.h>

#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

#define FO_BN_PLANE_MIN 32
#define FO_BN_CHUNK 128
#define FO_BN_WIDE 1024
#define FO_BN_BLOCK 65536
#define FO_BN_MAX_BLOCKS 64
#define FO_BN_LANES 16

typedef struct fo_bn_plan {
    int64_t n, c, s, m; /* m = n * s values per channel */
    int rows;           /* 1: rows layout, 0: planes layout */
    int64_t w;          /* rows: columns per row (c * s) */
    int64_t row_block;  /* rows: rows per block */
    int64_t chunks;     /* rows: column chunks */
    int64_t blocks;     /* rows: row blocks; planes: blocks per channel */
    int64_t planes;     /* planes: whole planes per block (0: segments of one plane) */
    int64_t segments;   /* planes: segments per plane when planes == 0 */
    int64_t tasks;      /* reduction tasks */
} fo_bn_plan;

static fo_bn_plan fo_bn_make_plan(int64_t n, int64_t c, int64_t s)
{
    fo_bn_plan p = {0};
    p.n = n;
    p.c = c;
    p.s = s;
    p.m = n * s;
    p.rows = s < FO_BN_PLANE_MIN;
    if (p.rows) {
        p.w = c * s;
        p.chunks = (p.w + FO_BN_CHUNK - 1) / FO_BN_CHUNK;
        if (p.w >= FO_BN_WIDE || n == 0) {
            p.row_block = n > 0 ? n : 1;
        } else {
            const int64_t by_size = (FO_BN_BLOCK + p.w - 1) / p.w;
            const int64_t by_count = (n + FO_BN_MAX_BLOCKS - 1) / FO_BN_MAX_BLOCKS;
            p.row_block = by_size > by_count ? by_size : by_count;
        }
        p.blocks = (n + p.row_block - 1) / p.row_block;
        if (p.blocks < 1)
            p.blocks = 1;
        p.tasks = p.blocks * p.chunks;
    } else {
        if (s >= FO_BN_BLOCK) {
            p.planes = 0;
            p.segments = (s + FO_BN_BLOCK - 1) / FO_BN_BLOCK;
            p.blocks = n * p.segments;
        } else {
            p.planes = FO_BN_BLOCK / s;
            p.blocks = (n + p.planes - 1) / p.planes;
        }
        p.tasks = c * p.blocks;
    }
    return p;
}

/* Scratch for one call: block sums (two per block and column/channel), per-column shifts
 * and per-column coefficients (rows layout), allocated before anything is written. */
typedef struct fo_bn_scratch {
    double *sum1, *sum2;  /* rows: [blocks][w]; planes: [c][blocks] */
    double *shift;        /* per column (rows) or per channel (planes) */
    double *coef;         /* 4 per column (rows) or per channel (planes): m, a, b, k */
    void *base;
} fo_bn_scratch;

static int fo_bn_alloc(const fo_bn_plan *p, fo_bn_scratch *sc)
{
    const int64_t sums = p->rows ? p->blocks * p->w : p->c * p->blocks;
    const int64_t per = p->rows ? p->w : p->c;
    const size_t bytes = sizeof(double) * (size_t)(2 * sums + per + 4 * per) + 64;
    double *b = (double *)malloc(bytes);
    if (!b)
        return FO_ERR_NOMEM;
    sc->base = b;
    sc->sum1 = b;
    sc->sum2 = b + sums;
    sc->shift = b + 2 * sums;
    sc->coef = b + 2 * sums + per;
    return FO_OK;
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

#define FO_T float
#define FO_SUFFIX f32
#include "batchnorm.inc"
#undef FO_T
#undef FO_SUFFIX

#define FO_T double
#define FO_SUFFIX f64
#include "batchnorm.inc"
#undef FO_T
#undef FO_SUFFIX
