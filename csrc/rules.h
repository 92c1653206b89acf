/* rules.h — static inline per-element helpers shared by the kernels (header-only, so
 * embedding C code can use them without linking). */
#ifndef FASTOPT_RULES_H
#define FASTOPT_RULES_H

#include <math.h>

/* Paste a type suffix onto a kernel name: FO_TYPED(fo_sgd_step) -> fo_sgd_step_f32. */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_TYPED(name) FO_CAT(name, FO_SUFFIX)
/* A name of the optimizer family being compiled: FO_FN(rule) -> adam_rule_f32. */
#define FO_FN(name) FO_TYPED(FO_CAT(FO_FAMILY, name))

/* sign(x) in {-1, 0, +1}; sign(0) = 0 (the L1 subgradient fastopt uses). */
static inline float fo_signf(float x) { return (float)((x > 0.0f) - (x < 0.0f)); }
static inline double fo_sign(double x) { return (double)((x > 0.0) - (x < 0.0)); }
#define FO_SIGN(x) _Generic((x), float: fo_signf, default: fo_sign)(x)

/* sqrt in the argument's own precision (sqrtf for float: no round trip through double).
 * Vectorizes only with -fno-math-errno, which the build sets. */
#define FO_SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)

/* |x| in the argument's own precision. */
#define FO_FABS(x) _Generic((x), float: fabsf, default: fabs)(x)

/* numpy's sign: -1, 0 (for -0 too) or +1, and NaN for a NaN x (Lion's update direction: a
 * NaN gradient must reach the parameter, as the formula says). Written as selects of
 * floats: this form vectorizes, (x > 0) - (x < 0) under a NaN select does not. */
static inline float fo_sign_nanf(float x)
{
    const float s = (x > 0.0f ? 1.0f : 0.0f) - (x < 0.0f ? 1.0f : 0.0f);
    return x != x ? x : s;
}
static inline double fo_sign_nan(double x)
{
    const double s = (x > 0.0 ? 1.0 : 0.0) - (x < 0.0 ? 1.0 : 0.0);
    return x != x ? x : s;
}
#define FO_SIGN_NAN(x) _Generic((x), float: fo_sign_nanf, default: fo_sign_nan)(x)

/* max(a, b) that propagates NaN from either argument (torch.maximum's rule). */
#define FO_MAX_NAN(a, b) (((a) > (b) || (a) != (a)) ? (a) : (b))

/* The gradient an optimizer update uses, d = (maximize ? -g : g) + l2 * p + l1 * sign(p),
 * from the FO_DIRECTION_FIELDS of a family's constants `k` (its flags are loop-invariant:
 * GCC unswitches them, and each variant vectorizes). */
#define FO_DIRECTION_FIELDS(T) T l2, l1; int has_l2, has_l1, neg
#define FO_SET_DIRECTION(k, T, l2_, l1_, maximize)                                           \
    do {                                                                                     \
        (k)->l2 = (T)(l2_);                                                                  \
        (k)->l1 = (T)(l1_);                                                                  \
        (k)->has_l2 = (l2_) != 0.0;                                                          \
        (k)->has_l1 = (l1_) != 0.0;                                                          \
        (k)->neg = (maximize) != 0;                                                          \
    } while (0)
#define FO_DIRECTION(d, g, p, k)                                                             \
    do {                                                                                     \
        d = (k)->neg ? -(g) : (g);                                                           \
        if ((k)->has_l2)                                                                     \
            d = d + (k)->l2 * (p);                                                           \
        if ((k)->has_l1)                                                                     \
            d = d + (k)->l1 * FO_SIGN(p);                                                    \
    } while (0)

#endif
