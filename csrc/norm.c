/* norm.c — global norm of a list of tensors and in-place scaling (gradient clipping).
 * The typed bodies live in norm.inc, instantiated here for float and double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

/* Combine two partial reductions of the same kind (max is NaN-sticky). */
static inline double fo_norm_combine(int kind, double a, double b)
{
    if (kind != FO_NORM_MAX_ABS)
        return a + b;
    if (a != a)
        return a;
    if (b != b)
        return b;
    return b > a ? b : a;
}

#define FO_TEMPLATE "norm.inc"
#include "instantiate.h"
