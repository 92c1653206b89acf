/* rules.h — static inline per-element helpers shared by the kernels (header-only, so
 * embedding C code can use them without linking). */
#ifndef FASTOPT_RULES_H
#define FASTOPT_RULES_H

#include <math.h>

#include "config.h"

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

/* x / b correctly rounded, from inv = the correctly rounded 1 / b (division by a per-call
 * constant, as Adam's sqrt(v) / sqrt(1 - beta2^t)): q = x * inv is within an ulp of the
 * quotient, the remainder r = x - b * q is exact with one fma, and q + r * inv rounded once
 * is the correctly rounded quotient (Markstein's theorem: the correction step of IA-64's
 * division). A multiply and two fmas instead of a division: the divider is what Adam's loop
 * waits on. It gives the bits of x / b for b in [2^-40, 1] (Adam's divisor is in
 * [2^-26.5, 1]) and x = 0, 2^-100 <= |x| <= 2^80 (double: 2^-960, 2^960), inf or NaN:
 * sqrt of any float or double is one of those (the remainder of a smaller x can fall under
 * the subnormal grid, and x * inv of a larger one can overflow). tools/check_div_fused.c
 * checks every float32 x and a dense sample of float64; tests/kernels/test_div_fused.py
 * runs it. Where r is 0 or NaN, q is already the answer (exact, a signed zero, +-inf or
 * x's NaN) and is returned: q + 0 would turn -0 into +0.
 * Only where fma is an instruction (fo_fused_division_ok); elsewhere kernels divide. */
static inline float fo_div_fusedf(float x, float b, float inv)
{
    const float q = x * inv;
    const float r = fmaf(-b, q, x);
    const float c = fmaf(r, inv, q);
    return fabsf(r) > 0.0f ? c : q;
}
static inline double fo_div_fused(double x, double b, double inv)
{
    const double q = x * inv;
    const double r = fma(-b, q, x);
    const double c = fma(r, inv, q);
    return fabs(r) > 0.0 ? c : q;
}
#define FO_DIV_FUSED(x, b, inv)                                                              \
    _Generic((x), float: fo_div_fusedf, default: fo_div_fused)(x, b, inv)

/* Whether fma is one instruction in the code that runs here, so that FO_DIV_FUSED is fast.
 * Known at compile time from math.h (FP_FAST_FMA: aarch64, x86 built with -mfma); in the
 * x86-64 SIMD clones (config.h) it holds exactly when the loader picks the v3 or v4 clone,
 * which is what GCC's resolver tests (the default clone then never takes the fused path, so
 * its fma calls, library calls there, never run). Elsewhere: no, and kernels divide. */
static inline int fo_fused_division_ok(void)
{
#if defined(FP_FAST_FMA) && defined(FP_FAST_FMAF)
    return 1;
#elif FO_HAVE_CLONES && defined(__GNUC__) && __GNUC__ >= 12
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v4") || __builtin_cpu_supports("x86-64-v3");
#else
    return 0;
#endif
}

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

/* A bit of an optimizer rule's `used` mask, above its state arrays' bits: set only in the
 * family's plain loop (optim_kernel.inc, FO_PLAIN_USED). */
#define FO_USED_PLAIN 8u

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
