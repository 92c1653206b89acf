/* bounds.c — L-BFGS-B's vector kernels (prototypes and contracts in bounds.h).
 * The typed bodies live in bounds.inc, instantiated here for float and double; what does
 * not depend on the type (the breakpoint heap, the small dense products) is here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

/* Blocks of the gram update: a partial 2k x 2k sum per chunk of this many elements. */
#define FO_GRAM_CHUNK 16384

/* A breakpoint (t, i), ordered lexicographically: the order of the Cauchy scan. The heap
 * holds the pairs themselves, not indices into t, so a sift touches one array. */
typedef struct {
    double t;
    int64_t i;
} fo_brk;

static inline int fo_brk_less(fo_brk a, fo_brk b)
{
    return a.t < b.t || (a.t == b.t && a.i < b.i);
}

static void fo_brk_sift_down(fo_brk *heap, int64_t size, int64_t pos)
{
    const fo_brk item = heap[pos];
    for (;;) {
        int64_t l = 2 * pos + 1, best = l;
        if (l >= size)
            break;
        if (l + 1 < size && fo_brk_less(heap[l + 1], heap[l]))
            best = l + 1;
        if (!fo_brk_less(heap[best], item))
            break;
        heap[pos] = heap[best];
        pos = best;
    }
    heap[pos] = item;
}

/* Orders heap[0..size) into a heap, in O(size). */
static void fo_brk_make_heap(fo_brk *heap, int64_t size)
{
    for (int64_t pos = size / 2 - 1; pos >= 0; --pos)
        fo_brk_sift_down(heap, size, pos);
}

/* Max-heap sift for the candidate selection (the largest kept pair on top). */
static void fo_brk_sift_down_max(fo_brk *heap, int64_t size, int64_t pos)
{
    const fo_brk item = heap[pos];
    for (;;) {
        int64_t l = 2 * pos + 1, best = l;
        if (l >= size)
            break;
        if (l + 1 < size && fo_brk_less(heap[l], heap[l + 1]))
            best = l + 1;
        if (!fo_brk_less(item, heap[best]))
            break;
        heap[pos] = heap[best];
        pos = best;
    }
    heap[pos] = item;
}

/* Offer (t, i) to a max-heap holding the `cap` smallest pairs seen. */
static inline void fo_brk_keep_smallest(fo_brk *heap, int64_t *size, int64_t cap, double t,
                                        int64_t i)
{
    const fo_brk item = {t, i};
    if (*size < cap) {
        int64_t pos = (*size)++;
        while (pos > 0 && fo_brk_less(heap[(pos - 1) / 2], item)) {
            heap[pos] = heap[(pos - 1) / 2];
            pos = (pos - 1) / 2;
        }
        heap[pos] = item;
    } else if (fo_brk_less(item, heap[0])) {
        heap[0] = item;
        fo_brk_sift_down_max(heap, *size, 0);
    }
}

static int fo_brk_compare(const void *a, const void *b)
{
    const fo_brk *x = (const fo_brk *)a, *y = (const fo_brk *)b;
    return fo_brk_less(*x, *y) ? -1 : (fo_brk_less(*y, *x) ? 1 : 0);
}

/* Where the Cauchy scan takes its next breakpoint from, smallest first: first the `cap`
 * smallest ones, sorted (a scan passes few: one pass over n, no n-sized heap), then, if the
 * scan gets past them all, a heap of every breakpoint left. */
#define FO_BRK_CANDIDATES 1024
typedef struct {
    fo_brk *items;
    int64_t count, pos;
    int complete, is_heap;
} fo_brk_source;

static int64_t fo_brk_pop(fo_brk *heap, int64_t *size)
{
    int64_t top = heap[0].i;
    heap[0] = heap[--*size];
    if (*size > 0)
        fo_brk_sift_down(heap, *size, 0);
    return top;
}

/* Each block's smallest breakpoints, kept by the Cauchy point's classification pass (no
 * pass of their own), so that a scan passing few breakpoints needs no serial pass over n:
 * the blocks' lists are merged smallest first, and every merged pair up to `bound` (the
 * largest kept pair of a block that had more breakpoints than it kept, the smallest such)
 * is certain to be the next breakpoint overall. Past `bound`, fo_brk_source takes over. */
#define FO_BLOCK_BRKS 16
typedef struct {
    const fo_brk *lists; /* FO_BLOCK_BRKS per block, ascending after fo_brk_sort_block */
    int64_t *len, *pos;
    fo_brk *heap;   /* the head of every block's list not yet used up: a min-heap */
    int64_t hsize;
    fo_brk bound;   /* {+inf, INT64_MAX} when every breakpoint is in a list */
    int started, done;
} fo_brk_merge;

/* Offer one block's t to its list (a max-heap of the FO_BLOCK_BRKS smallest, then sorted
 * ascending); elements in index order, so a pair equal in t to the largest kept one has a
 * larger index and is not kept. Returns the number kept. */
static int64_t fo_brk_keep_block(fo_brk *list, const double *t, int64_t lo0, int64_t n)
{
    int64_t cnt = 0;
    double thr = INFINITY;
    for (int64_t i0 = 0; i0 < n; i0 += 16) {
        /* most chunks hold nothing below the threshold once the list is full: a
         * vectorized comparison into a bit mask first, then only the elements it marks,
         * in index order (each checked again: the threshold falls as pairs are kept) */
        const int64_t e = i0 + 16 < n ? i0 + 16 : n;
        uint32_t hit = 0;
        if (e - i0 == 16) {
            for (int j = 0; j < 16; ++j)
                hit |= (uint32_t)(t[i0 + j] < thr) << j;
        } else {
            for (int64_t j = 0; j < e - i0; ++j)
                hit |= (uint32_t)(t[i0 + j] < thr) << j;
        }
        while (hit) {
            const int64_t i = i0 + __builtin_ctz(hit);
            hit &= hit - 1;
            if (t[i] < thr) {
                fo_brk_keep_smallest(list, &cnt, FO_BLOCK_BRKS, t[i], lo0 + i);
                if (cnt == FO_BLOCK_BRKS)
                    thr = list[0].t;
            }
        }
    }
    return cnt;
}

/* A max-heap of `cnt` pairs into ascending order, in place (heapsort). */
static void fo_brk_sort_block(fo_brk *list, int64_t cnt)
{
    for (int64_t s = cnt - 1; s > 0; --s) {
        const fo_brk top = list[0];
        list[0] = list[s];
        list[s] = top;
        fo_brk_sift_down_max(list, s, 0);
    }
}

/* The next breakpoint from the blocks' lists: 1 (in *out), 0 when the lists hold no more
 * certain ones (m->done set), FO_ERR_NOMEM. */
static int fo_brk_merge_next(fo_brk_merge *m, int64_t nblocks, fo_brk *out)
{
    if (m->done)
        return 0;
    if (!m->started) {
        m->started = 1;
        m->heap = (fo_brk *)malloc((size_t)(nblocks > 0 ? nblocks : 1) * sizeof(fo_brk));
        m->pos = (int64_t *)calloc((size_t)(nblocks > 0 ? nblocks : 1), sizeof(int64_t));
        if (!m->heap || !m->pos)
            return FO_ERR_NOMEM;
        m->hsize = 0;
        for (int64_t b = 0; b < nblocks; ++b)
            if (m->len[b] > 0)
                m->heap[m->hsize++] = m->lists[b * FO_BLOCK_BRKS];
        fo_brk_make_heap(m->heap, m->hsize);
    }
    if (m->hsize == 0 || fo_brk_less(m->bound, m->heap[0])) {
        m->done = 1;
        return 0;
    }
    *out = m->heap[0];
    const int64_t b = out->i / FO_REDUCE_BLOCK;
    if (++m->pos[b] < m->len[b]) {
        m->heap[0] = m->lists[b * FO_BLOCK_BRKS + m->pos[b]];
        fo_brk_sift_down(m->heap, m->hsize, 0);
    } else {
        fo_brk_pop(m->heap, &m->hsize);
    }
    return 1;
}

/* What the Cauchy point's first pass learns from one block: f1's part, the numbers of
 * breakpoints, free variables and moving ones, how many of its smallest breakpoints it
 * listed, and whether one moves without a breakpoint. Nothing of size n is stored but
 * is_free. A scan buffer (fo_lbfgsb_scan_bytes) holds one per block, then the blocks'
 * lists (FO_BLOCK_BRKS pairs each). */
typedef struct {
    double f1;
    int64_t nbreak, nfree, nmove, nlist;
    int64_t unbounded; /* (no padding: a scan buffer's bytes are all written) */
} fo_cauchy_block;


int64_t fo_lbfgsb_scan_bytes(int64_t n)
{
    const int64_t nblocks = n > 0 ? (n + FO_REDUCE_BLOCK - 1) / FO_REDUCE_BLOCK : 0;
    return nblocks * (int64_t)(sizeof(fo_cauchy_block) + FO_BLOCK_BRKS * sizeof(fo_brk));
}

/* Whether a scan buffer can be what fo_lbfgsb_pair_update wrote for n variables: counts
 * within their blocks, list entries in their block and ascending. The Cauchy point
 * indexes with them, so a buffer that is not checks as wrong, not as memory read. */
static int fo_scan_valid(int64_t n, const fo_cauchy_block *blk, const fo_brk *lists)
{
    const int64_t nblocks = (n + FO_REDUCE_BLOCK - 1) / FO_REDUCE_BLOCK;
    for (int64_t b = 0; b < nblocks; ++b) {
        const int64_t lo0 = b * FO_REDUCE_BLOCK,
                      len = n - lo0 < FO_REDUCE_BLOCK ? n - lo0 : FO_REDUCE_BLOCK;
        const fo_cauchy_block *q = blk + b;
        if (q->nlist < 0 || q->nlist > FO_BLOCK_BRKS || q->nlist > q->nbreak
            || q->nbreak > len || q->nfree < 0 || q->nfree > len || q->nmove < 0
            || q->nmove > len)
            return 0;
        for (int64_t j = 0; j < q->nlist; ++j) {
            const fo_brk e = lists[b * FO_BLOCK_BRKS + j];
            if (e.i < lo0 || e.i >= lo0 + len
                || (j > 0 && !fo_brk_less(lists[b * FO_BLOCK_BRKS + j - 1], e)))
                return 0;
        }
    }
    return 1;
}

/* out = M v for a row-major (m x m) M. */
static void fo_matvec(int64_t m, const double *M, const double *v, double *out)
{
    for (int64_t a = 0; a < m; ++a) {
        double acc = 0.0;
        for (int64_t b = 0; b < m; ++b)
            acc += M[a * m + b] * v[b];
        out[a] = acc;
    }
}

static double fo_dot_small(int64_t m, const double *u, const double *v)
{
    double acc = 0.0;
    for (int64_t a = 0; a < m; ++a)
        acc += u[a] * v[a];
    return acc;
}

/* The lexicographically smallest (value, index) of per-block candidates. */
typedef struct {
    double value;
    int64_t index;
} fo_argmin;

static inline void fo_argmin_offer(fo_argmin *best, double value, int64_t index)
{
    if (value < best->value || (value == best->value && index < best->index))
        best->value = value, best->index = index;
}

/* The search direction's reductions over a block, in eight lanes combined in a fixed order
 * (the same bits for every kernel that forms d): the smallest step to the boundary along
 * d, g . d and d . d. */
typedef struct {
    double step[8], gd[8], dd[8];
} fo_dir_lanes;

static inline void fo_dir_lanes_init(fo_dir_lanes *a)
{
    for (int j = 0; j < 8; ++j)
        a->step[j] = INFINITY, a->gd[j] = a->dd[j] = 0.0;
}

/* out = (step, gd, dd) of the block */
static inline void fo_dir_lanes_close(const fo_dir_lanes *a, double *out)
{
    double st = INFINITY;
    for (int j = 0; j < 8; ++j)
        st = a->step[j] < st ? a->step[j] : st;
    const double *s = a->gd, *q = a->dd;
    out[0] = st;
    out[1] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    out[2] = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
}

/* A loop whose selects guard divisions is if-converted (and vectorized) only when the
 * compiler may assume that floating-point operations do not trap: the divisions are then
 * computed for every element and the unused results dropped. fastopt never inspects the
 * floating-point exception flags, and no result changes. */
#if defined(__GNUC__) && !defined(__clang__)
#  define FO_NO_TRAPS __attribute__((optimize("no-trapping-math")))
#else
#  define FO_NO_TRAPS
#endif

/* Eight doubles, lane j summing elements 8 i + j: the lanes of bdot, spelled so that the
 * compiler keeps several such sums in registers at once (bounds.inc's dots_with) */
typedef double fo_v8d __attribute__((vector_size(64)));
/* a mask of eight lanes (all ones or zero), and eight mask bytes to widen into one */
typedef long long fo_v8l __attribute__((vector_size(64)));
typedef unsigned char fo_v8u8 __attribute__((vector_size(8)));

/* The variables of [b, e) with a nonzero weight (weight[i], or now[i] - before[i] when
 * weight is NULL), as offsets from b and their weights, in index order: eight bytes tested
 * at once, since most are 0. Returns their number. */
static int64_t fo_gram_changes(const int8_t *weight, const uint8_t *now, const uint8_t *before,
                               int64_t b, int64_t e, int32_t *at, int8_t *w)
{
    int64_t cnt = 0, i = b;
    for (; i + 8 <= e; i += 8) {
        uint64_t u, v = 0;
        if (weight) {
            memcpy(&u, weight + i, 8);
        } else {
            memcpy(&u, now + i, 8);
            memcpy(&v, before + i, 8);
        }
        if (u == v)
            continue;
        for (int64_t j = i; j < i + 8; ++j) {
            const int8_t wj = weight ? weight[j] : (int8_t)(now[j] - before[j]);
            if (wj) {
                at[cnt] = (int32_t)(j - b);
                w[cnt++] = wj;
            }
        }
    }
    for (; i < e; ++i) {
        const int8_t wj = weight ? weight[i] : (int8_t)(now[i] - before[i]);
        if (wj) {
            at[cnt] = (int32_t)(i - b);
            w[cnt++] = wj;
        }
    }
    return cnt;
}

/* How many changes ahead the pair values are prefetched: a change's 2k values lie in 2k
 * rows n apart, one cache miss each, and without prefetching they are waited for one
 * change after another. */
#define FO_GRAM_AHEAD 4

/* the number of i with now[i] != before[i] (eight bytes tested at once) */
static int64_t fo_mask_changes(int64_t n, const uint8_t *now, const uint8_t *before,
                               int nthreads)
{
    int64_t total = 0;
    const int64_t nwords = n / 8;
    const int team = fo_team_size(n, nthreads);
#pragma omp parallel for num_threads(team) schedule(static) reduction(+ : total) if (team > 1)
    for (int64_t q = 0; q < nwords; ++q) {
        uint64_t u, v;
        memcpy(&u, now + 8 * q, 8);
        memcpy(&v, before + 8 * q, 8);
        if (u != v)
            for (int64_t j = 8 * q; j < 8 * q + 8; ++j)
                total += now[j] != before[j];
    }
    for (int64_t j = 8 * nwords; j < n; ++j)
        total += now[j] != before[j];
    return total;
}

#define FO_TEMPLATE "bounds.inc"
#include "instantiate.h"
