/* sgd.c — SGD with momentum, dampening, Nesterov, weight decay, L1 and maximize.
 * The typed body lives in sgd.inc and is instantiated here for float and double. */
#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

#define FO_TEMPLATE "sgd.inc"
#include "instantiate.h"
