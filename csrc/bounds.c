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

/* (t, i) ordered lexicographically: the breakpoint order of the Cauchy scan. */
static inline int fo_brk_less(const double *t, int64_t a, int64_t b)
{
    return t[a] < t[b] || (t[a] == t[b] && a < b);
}

static void fo_brk_sift_down(int64_t *heap, int64_t size, int64_t pos, const double *t)
{
    for (;;) {
        int64_t l = 2 * pos + 1, r = l + 1, best = pos;
        if (l < size && fo_brk_less(t, heap[l], heap[best]))
            best = l;
        if (r < size && fo_brk_less(t, heap[r], heap[best]))
            best = r;
        if (best == pos)
            return;
        int64_t tmp = heap[pos];
        heap[pos] = heap[best];
        heap[best] = tmp;
        pos = best;
    }
}

/* Heap of the breakpoints (finite t[i]) except `skip`, in O(n). */
static int64_t fo_brk_heapify(int64_t *heap, int64_t n, const double *t, int64_t skip)
{
    int64_t size = 0;
    for (int64_t i = 0; i < n; ++i)
        if (t[i] < INFINITY && i != skip)
            heap[size++] = i;
    for (int64_t pos = size / 2 - 1; pos >= 0; --pos)
        fo_brk_sift_down(heap, size, pos, t);
    return size;
}

static int64_t fo_brk_pop(int64_t *heap, int64_t *size, const double *t)
{
    int64_t top = heap[0];
    heap[0] = heap[--*size];
    fo_brk_sift_down(heap, *size, 0, t);
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
