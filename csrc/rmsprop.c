/* rmsprop.c — RMSprop (centered, momentum, eps inside or outside the sqrt, weight decay, L1,
 * maximize). The typed body lives in rmsprop.inc and is instantiated for float and double. */
#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

#define FO_T float
#define FO_SUFFIX f32
#include "rmsprop.inc"
#undef FO_T
#undef FO_SUFFIX

#define FO_T double
#define FO_SUFFIX f64
#include "rmsprop.inc"
#undef FO_T
#undef FO_SUFFIX
