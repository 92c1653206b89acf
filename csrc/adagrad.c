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

#define FO_TEMPLATE "adagrad.inc"
#include "instantiate.h"
