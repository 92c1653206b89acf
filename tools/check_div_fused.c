/* check_div_fused.c — check that FO_DIV_FUSED(x, b, inv) (csrc/rules.h) gives the bits of
 * x / b, as the Adam kernels rely on (the fused path must not change one result).
 *
 *   gcc -O3 -march=native -std=gnu11 -ffp-contract=off -fno-math-errno -Icsrc \
 *       tools/check_div_fused.c -lm -o /tmp/check_div_fused
 *   /tmp/check_div_fused            # full: every float32 x for the edge divisors, ~minutes
 *   /tmp/check_div_fused --quick    # a sample of each part, seconds (its test runs this)
 *
 * Parts (b ranges over the helper's domain [2^-40, 1]; inv = 1 / b rounded):
 *  1. float32, every one of the 2^32 bit patterns of x (the full run) or a strided sample,
 *     against edge divisors: 1, 1 - ulp, 1/2 + ulp, the ends 2^-40 and 2^-26.5 (Adam's
 *     smallest), and sqrt(1 - 0.999^t) for a few t;
 *  2. float32, every significand of x in [1, 2) against many random divisors and the
 *     divisors Adam uses (sqrt(1 - beta2^t) for common beta2 and t): the rounding of x / b
 *     depends on x only through its significand while x / b stays normal, which part 1
 *     covers at the range's ends;
 *  3. float64: random x (all exponents, specials) and random divisors, a dense sample.
 * Outside the domain: tiny x, below 2^-100 (float32) or 2^-960 (float64), where the
 * remainder x - b * q can fall under the subnormal grid, and huge finite x, above 2^80 or
 * 2^960, where x * inv can overflow (the kernels never pass one: sqrt of a float is 0, inf,
 * NaN or in [2^-75, 2^64], of a double 0, inf, NaN or in [2^-537, 2^512]); part 1 skips
 * those x and reports how many.
 *
 * A self-check makes sure the comparison can fail: the uncorrected x * inv must differ
 * from x / b somewhere. Exit status 0 when everything matches. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

static uint32_t bits32(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static uint64_t bits64(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static float from32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
static double from64(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* splitmix64: a fixed-seed stream (the sample is the same on every run) */
static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t next64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static long long mismatches = 0, checked = 0;

static void report32(float x, float b, float got, float want)
{
    if (mismatches++ < 10)
        fprintf(stderr, "MISMATCH f32 x=%a b=%a fused=%a (0x%08x) div=%a (0x%08x)\n", x, b,
                got, bits32(got), want, bits32(want));
}

/* Compare over x = from32(start + k * stride) for k < count, skipping subnormals. Returns
 * the number skipped. noinline: one loop the compiler vectorises with the helper inlined. */
static __attribute__((noinline)) long long check_f32_patterns(uint64_t start, uint64_t stride,
                                                              uint64_t count, float b)
{
    const float inv = 1.0f / b;
    long long skipped = 0;
    for (uint64_t k = 0; k < count; ++k) {
        const float x = from32((uint32_t)(start + k * stride));
        if ((x != 0.0f && fabsf(x) < 0x1p-100f) || (fabsf(x) > 0x1p80f && fabsf(x) < INFINITY)) {
            ++skipped;
            continue;
        }
        const float got = FO_DIV_FUSED(x, b, inv), want = x / b;
        ++checked;
        if (bits32(got) != bits32(want))
            report32(x, b, got, want);
    }
    return skipped;
}

/* Every significand in [1, 2) (2^23 values), times b. */
static __attribute__((noinline)) void check_f32_binade(float b, uint32_t step)
{
    const float inv = 1.0f / b;
    for (uint32_t m = 0; m < (1u << 23); m += step) {
        const float x = from32(0x3F800000u | m);
        const float got = FO_DIV_FUSED(x, b, inv), want = x / b;
        ++checked;
        if (bits32(got) != bits32(want))
            report32(x, b, got, want);
    }
}

/* A random float in [2^lo, 1]: uniform exponent, uniform significand. */
static float random_divisor32(int lo)
{
    const int e = lo + (int)(next64() % (uint64_t)(-lo + 1));
    const float b = ldexpf(1.0f + (float)(next64() >> 41) * 0x1p-23f, e - 1);
    return b > 1.0f ? 1.0f : b;
}
static double random_divisor64(int lo)
{
    const int e = lo + (int)(next64() % (uint64_t)(-lo + 1));
    const double b = ldexp(1.0 + (double)(next64() >> 12) * 0x1p-52, e - 1);
    return b > 1.0 ? 1.0 : b;
}

/* x: every exponent with equal weight (specials and zero included), random significand. */
static double random_x64(void)  /* 0, 2^-960 <= |x| < 2^960, inf or NaN */
{
    const uint64_t u = next64();
    const uint64_t exponent = (u >> 52) & 0x7FF;
    if (exponent < 1023 - 960) /* below the domain: keep only the zeros */
        return (u >> 63) ? -0.0 : 0.0;
    if (exponent >= 1023 + 960 && exponent != 0x7FF) /* above it: infinities instead */
        return (u >> 63) ? -INFINITY : INFINITY;
    return from64(u);
}

static void check_f64(long long pairs, int divisors)
{
    for (int j = 0; j < divisors; ++j) {
        const double b = j == 0 ? 1.0 : j == 1 ? 0x1p-40 : random_divisor64(-40);
        const double inv = 1.0 / b;
        for (long long k = 0; k < pairs / divisors; ++k) {
            const double x = random_x64();
            const double got = FO_DIV_FUSED(x, b, inv), want = x / b;
            ++checked;
            if (bits64(got) != bits64(want) && mismatches++ < 10)
                fprintf(stderr, "MISMATCH f64 x=%a b=%a fused=%a div=%a\n", x, b, got, want);
        }
    }
    /* the special x values against every divisor kind */
    const double specials[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, -NAN, 0x1p-960,
                               -0x1p-960, 0x1.fffffffffffffp+959, 1.0, -1.0};
    for (size_t i = 0; i < sizeof specials / sizeof *specials; ++i)
        for (int j = 0; j < 64; ++j) {
            const double b = j == 0 ? 1.0 : random_divisor64(-40), inv = 1.0 / b;
            const double got = FO_DIV_FUSED(specials[i], b, inv), want = specials[i] / b;
            ++checked;
            if (bits64(got) != bits64(want) && mismatches++ < 10)
                fprintf(stderr, "MISMATCH f64 x=%a b=%a fused=%a div=%a\n", specials[i], b,
                        got, want);
        }
}

/* The self-check: x * inv alone (no correction) must be caught somewhere. */
static long long uncorrected_differences(void)
{
    long long differ = 0;
    const float divisors[] = {0.7f, 0.3f, 0.123456f, 0.999f};
    for (int j = 0; j < 4; ++j) {
        const float b = divisors[j], inv = 1.0f / b;
        for (uint32_t m = 0; m < (1u << 23); m += 7) {
            const float x = from32(0x3F800000u | m);
            differ += bits32(x * inv) != bits32(x / b);
        }
    }
    return differ;
}

int main(int argc, char **argv)
{
    const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
        return 2;
    }
    const long long differ = uncorrected_differences();
    printf("self-check: the uncorrected x * inv differs from x / b for %lld of 4793492 (x, b)\n",
           differ);
    if (differ == 0) {
        printf("FAIL: the comparison cannot tell a wrong quotient from the right one\n");
        return 1;
    }

    /* 1. every (or a strided sample of the) float32 bit pattern(s), edge divisors */
    float edges[16];
    int nedges = 0;
    edges[nedges++] = 1.0f;
    edges[nedges++] = nextafterf(1.0f, 0.0f);
    edges[nedges++] = nextafterf(0.5f, 1.0f);
    edges[nedges++] = 0x1p-40f;
    edges[nedges++] = (float)sqrt(0x1p-53); /* Adam's smallest: beta2 = 1 - 2^-53, t = 1 */
    edges[nedges++] = nextafterf(0x1p-40f, 1.0f);
    for (int t = 1; t <= 1000; t *= 10)
        edges[nedges++] = (float)sqrt(1.0 - pow(0.999, t));
    const uint64_t stride = quick ? 4099 : 1; /* odd: the sample visits every exponent */
    long long skipped = 0;
    for (int j = 0; j < nedges; ++j)
        skipped += check_f32_patterns(0, stride, (0x100000000ull + stride - 1) / stride, edges[j]);
    const uint32_t special_bits[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u,
                                     0x7FC00000u, 0xFFC00000u, 0x7FC12345u, 0x53800000u};
    for (size_t i = 0; i < sizeof special_bits / sizeof *special_bits; ++i)
        for (int j = 0; j < nedges; ++j)
            check_f32_patterns(special_bits[i], 1, 1, edges[j]);
    printf("part 1: float32, %s bit patterns of x x %d edge divisors (%lld x outside "
           "the domain skipped)\n", quick ? "a sample of the" : "all 2^32", nedges, skipped);

    /* 2. every significand in [1, 2) against random divisors and Adam's */
    const int randoms = quick ? 24 : 2000;
    const uint32_t step = quick ? 3 : 1;
    for (int j = 0; j < randoms; ++j)
        check_f32_binade(random_divisor32(-40), step);
    const double beta2s[] = {0.999, 0.99, 0.98, 0.95, 0.9, 0.5, 0.0};
    int adams = 0;
    for (size_t i = 0; i < sizeof beta2s / sizeof *beta2s; ++i)
        for (int t = 1; t <= 100000; t = t < 10 ? t + 1 : t * 2 + 1) {
            if (quick && (t % 3) != 1)
                continue;
            check_f32_binade((float)sqrt(1.0 - pow(beta2s[i], t)), step);
            ++adams;
        }
    printf("part 2: float32, %s significands of x in [1, 2) x %d random + %d Adam divisors\n",
           quick ? "every third of the" : "all 2^23", randoms, adams);

    /* 3. float64, a dense random sample */
    const long long pairs = quick ? 2000000 : 400000000;
    check_f64(pairs, quick ? 64 : 4096);
    printf("part 3: float64, %lld random (x, b) pairs + specials\n", pairs);

    printf("%lld quotients checked, %lld mismatches\n", checked, mismatches);
    return mismatches == 0 ? 0 : 1;
}
