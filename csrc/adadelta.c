/* adadelta.c — Adadelta (with weight decay, L1 and maximize).
 * The typed body lives in adadelta.inc and is instantiated here for float and double. */
#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

#define FO_T float
#define FO_SUFFIX f32
#include "adadelta.inc"
#undef FO_T
#undef FO_SUFFIX

#define FO_T double
#define FO_SUFFIX f64
#include "adadelta.inc"
#undef FO_T
#undef FO_SUFFIX
