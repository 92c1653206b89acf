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

/* Heap of the breakpoints (finite t[i]) except `skip`, in O(n). */
static int64_t fo_brk_heapify(fo_brk *heap, int64_t n, const double *t, int64_t skip)
{
    int64_t size = 0;
    for (int64_t i = 0; i < n; ++i)
        if (t[i] < INFINITY && i != skip) {
            heap[size].t = t[i];
            heap[size++].i = i;
        }
    for (int64_t pos = size / 2 - 1; pos >= 0; --pos)
        fo_brk_sift_down(heap, size, pos);
    return size;
}

static int64_t fo_brk_pop(fo_brk *heap, int64_t *size)
{
    int64_t top = heap[0].i;
    heap[0] = heap[--*size];
    if (*size > 0)
        fo_brk_sift_down(heap, *size, 0);
    return top;
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

#define FO_TEMPLATE "bounds.inc"
#include "instantiate.h"
