/* rmsprop.c — RMSprop (centered, momentum, eps inside or outside the sqrt, weight decay, L1,
 * maximize). The typed body lives in rmsprop.inc and is instantiated for float and double. */
#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

#define FO_TEMPLATE "rmsprop.inc"
#include "instantiate.h"
