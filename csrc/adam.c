/* adam.c — Adam and AdamW (with AMSGrad, L2 or decoupled weight decay, L1 and maximize).
 * The typed body lives in adam.inc and is instantiated here for float and double. */
#include <math.h>

#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

/* The per-call scalars of one step number, computed once in double as torch does. */
typedef struct adam_coefficients {
    double beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
    double step_size;        /* lr / (1 - beta1^t) */
    double bias2_sqrt;       /* sqrt(1 - beta2^t) */
    double l2, l1, decay;    /* decay = 1 - lr * weight_decay (decoupled) */
} adam_coefficients;

static adam_coefficients adam_coefficients_at(const fo_adam_options *o, int64_t t)
{
    adam_coefficients c;
    c.beta1 = o->beta1;
    c.one_minus_beta1 = 1.0 - o->beta1;
    c.beta2 = o->beta2;
    c.one_minus_beta2 = 1.0 - o->beta2;
    c.eps = o->eps;
    c.step_size = o->lr / (1.0 - pow(o->beta1, (double)t));
    c.bias2_sqrt = sqrt(1.0 - pow(o->beta2, (double)t));
    c.l2 = o->decoupled ? 0.0 : o->weight_decay;
    c.l1 = o->l1;
    c.decay = 1.0 - o->lr * (o->decoupled ? o->weight_decay : 0.0);
    return c;
}

#define FO_TEMPLATE "adam.inc"
#include "instantiate.h"
