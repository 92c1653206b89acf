/* fastopt.h — the public C interface of fastopt's kernels.
 *
 * Plain C99 + OpenMP, no Python: a C program can include this header and compile the files in csrc/
 * with it. Every kernel works in place on caller-owned arrays, takes the number of threads
 * it may use, never allocates per element, and returns an enum fo_status.
 * Arguments are trusted: the Python boundary (fastopt/_kernels.pyx) validates them. */
#ifndef FASTOPT_H
#define FASTOPT_H

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Build and runtime facts (runtime.c). */
FO_API const char *fo_version(void);
FO_API int fo_openmp_enabled(void);
FO_API int fo_simd_clones_enabled(void);
FO_API const char *fo_simd_target(void);   /* the clone the ifunc resolver picks on this CPU */
FO_API const char *fo_compiler(void);

#ifdef __cplusplus
}
#endif

#include "optim.h"
#include "quantize.h"
#include "nn.h"
#include "linalg.h"
#include "bandwidth.h"
#include "norm.h"
#include "bounds.h"

#endif
