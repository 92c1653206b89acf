/* adadelta.c — Adadelta (with weight decay, L1 and maximize).
 * The typed body lives in adadelta.inc and is instantiated here for float and double. */
#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

#define FO_TEMPLATE "adadelta.inc"
#include "instantiate.h"
