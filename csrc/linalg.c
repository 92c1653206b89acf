/* linalg.c — dot, axpy, scal and the L-BFGS two-loop recursion.
 * The typed bodies live in linalg.inc, instantiated here for float and double. */
#include <stdlib.h>
#include <string.h>

#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

/* Blocks [*lo, *hi) of `nblocks` that thread `part` of `parts` owns (contiguous ranges, so
 * a thread touches the same memory in every pass of the two-loop recursion). */
static inline void fo_block_range(int64_t nblocks, int part, int parts, int64_t *lo,
                                  int64_t *hi)
{
    int64_t per = (nblocks + parts - 1) / parts;
    int64_t a = per * part, b = a + per;
    *lo = a < nblocks ? a : nblocks;
    *hi = b < nblocks ? b : nblocks;
}

/* Sum of n block results in block order. */
static inline double fo_sum_ordered(const double *partial, int64_t n)
{
    double acc = 0.0;
    for (int64_t b = 0; b < n; ++b)
        acc += partial[b];
    return acc;
}

#define FO_TEMPLATE "linalg.inc"
#include "instantiate.h"
