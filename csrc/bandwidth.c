/* bandwidth.c — one-pass copy and triad, the memory-bandwidth yardstick of
 * `python -m fastopt bench` and benchmarks/bench_bandwidth.py.
 * The typed bodies live in bandwidth.inc, instantiated here for float and double. */
#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

#define FO_T float
#define FO_SUFFIX f32
#include "bandwidth.inc"
#undef FO_T
#undef FO_SUFFIX

#define FO_T double
#define FO_SUFFIX f64
#include "bandwidth.inc"
#undef FO_T
#undef FO_SUFFIX
