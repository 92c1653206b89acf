/* adagrad.c — Adagrad (with lr decay, weight decay, L1 and maximize).
 * The typed body lives in adagrad.inc and is instantiated here for float and double. */
#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

/* lr / (1 + (t - 1) * lr_decay), in double, once per step number. */
static double adagrad_clr(const fo_adagrad_options *o, int64_t t)
{
    return o->lr / (1.0 + (double)(t - 1) * o->lr_decay);
}

#define FO_T float
#define FO_SUFFIX f32
#include "adagrad.inc"
#undef FO_T
#undef FO_SUFFIX

#define FO_T double
#define FO_SUFFIX f64
#include "adagrad.inc"
#undef FO_T
#undef FO_SUFFIX
