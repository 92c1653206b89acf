/* bandwidth.c — one-pass copy and triad, the memory-bandwidth yardstick of
 * `python -m fastopt bench` and benchmarks/bench_bandwidth.py.
 * The typed bodies live in bandwidth.inc, instantiated here for float and double. */
#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

#define FO_TEMPLATE "bandwidth.inc"
#include "instantiate.h"
