/* nadam.c — NAdam (Adam with Nesterov momentum, torch.optim.NAdam's update), with L2 or
 * decoupled weight decay, L1 and maximize. The typed rule lives in nadam.inc. */
#include <math.h>

#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

/* mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)), in double as torch computes it. */
static double nadam_mu(const fo_nadam_options *o, int64_t t)
{
    return o->beta1 * (1.0 - 0.5 * pow(0.96, (double)t * o->momentum_decay));
}

double fo_nadam_mu_product(const fo_nadam_options *o, int64_t t, double previous)
{
    return previous * nadam_mu(o, t);
}

/* The per-call scalars of one step number and momentum product, once, in double. */
typedef struct nadam_coefficients {
    double bias2;                 /* 1 - beta2^t */
    double grad_step, mom_step;   /* lr (1 - mu_t) / (1 - prod), lr mu_{t+1} / (1 - prod mu_{t+1}) */
    double l2, decay;             /* decay = 1 - lr * weight_decay (decoupled) */
} nadam_coefficients;

static nadam_coefficients nadam_coefficients_at(const fo_nadam_options *o, int64_t t,
                                                double mu_product)
{
    nadam_coefficients c;
    const double mu = nadam_mu(o, t), mu_next = nadam_mu(o, t + 1);
    c.bias2 = 1.0 - pow(o->beta2, (double)t);
    c.grad_step = o->lr * (1.0 - mu) / (1.0 - mu_product);
    c.mom_step = o->lr * mu_next / (1.0 - mu_product * mu_next);
    c.l2 = o->decoupled ? 0.0 : o->weight_decay;
    c.decay = 1.0 - o->lr * (o->decoupled ? o->weight_decay : 0.0);
    return c;
}

#define FO_TEMPLATE "nadam.inc"
#include "instantiate.h"
