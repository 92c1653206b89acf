/* finite.c — all-finite check over a list of tensors: the cheap pre-scan that lets an
 * optimizer step be skipped, with nothing modified, when a gradient holds NaN or Inf.
 * The typed body lives in finite.inc and is instantiated here for float and double. */
#include <float.h>

#include "fastopt.h"
#include "parallel.h"
#include "rules.h"

/* Elements scanned between two looks at the shared "found one" flag. */
#define FO_FINITE_BLOCK 8192

#define FO_T float
#define FO_SUFFIX f32
#define FO_T_MAX FLT_MAX
#include "finite.inc"
#undef FO_T
#undef FO_SUFFIX
#undef FO_T_MAX

#define FO_T double
#define FO_SUFFIX f64
#define FO_T_MAX DBL_MAX
#include "finite.inc"
#undef FO_T
#undef FO_SUFFIX
#undef FO_T_MAX
