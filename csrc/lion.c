/* lion.c — Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"; optax.lion's
 * update), with decoupled weight decay, L1 and maximize. The typed rule lives in lion.inc. */
#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

#define FO_TEMPLATE "lion.inc"
#include "instantiate.h"
