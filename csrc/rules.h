/* rules.h — static inline per-element helpers shared by the kernels (header-only, so
 * embedding C code can use them without linking). */
#ifndef FASTOPT_RULES_H
#define FASTOPT_RULES_H

#include <math.h>

/* Paste a type suffix onto a kernel name: FO_TYPED(fo_sgd_step) -> fo_sgd_step_f32. */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_TYPED(name) FO_CAT(name, FO_SUFFIX)

/* sign(x) in {-1, 0, +1}; sign(0) = 0 (the L1 subgradient fastopt uses). */
static inline float fo_signf(float x) { return (float)((x > 0.0f) - (x < 0.0f)); }
static inline double fo_sign(double x) { return (double)((x > 0.0) - (x < 0.0)); }
#define FO_SIGN(x) _Generic((x), float: fo_signf, default: fo_sign)(x)

/* sqrt in the argument's own precision (sqrtf for float: no round trip through double).
 * Vectorizes only with -fno-math-errno, which the build sets. */
#define FO_SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)

/* |x| in the argument's own precision. */
#define FO_FABS(x) _Generic((x), float: fabsf, default: fabs)(x)

/* max(a, b) that propagates NaN from either argument (torch.maximum's rule). */
#define FO_MAX_NAN(a, b) (((a) > (b) || (a) != (a)) ? (a) : (b))

#endif
