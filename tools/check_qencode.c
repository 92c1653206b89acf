/* check_qencode.c — check that the AVX-512 int8 codec (csrc/lowprec_x86.h) gives the
 * codes and values of the portable one (csrc/lowprec.h) bit for bit.
 *
 *   gcc -O2 -std=gnu11 -Icsrc tools/check_qencode.c -lm -o /tmp/check_qencode
 *   /tmp/check_qencode            # every float32 bit pattern, both maps (a minute or two)
 *   /tmp/check_qencode --quick    # every 61st bit pattern, plus all thresholds (seconds)
 *
 * Encode: for each map, every float32 x (all 2^32 bit patterns: both signs, zeros,
 * subnormals, Inf, NaN, magnitudes above 1) encoded with inv = 1, and every threshold
 * between codes and its float neighbours under several inv. Decode: all 256 codes of
 * each map times several absmax (0, subnormal, Inf, NaN included). Exit status 0 when
 * everything matches;
 * 2 when this CPU lacks AVX-512 VBMI (nothing to check). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowprec.h"

#define CHUNK 4096

static long mismatches;

static void compare_encode(const float *x, int64_t m, float inv, int nonnegative)
{
    uint8_t fast[CHUNK];
    fo_qencode_avx512(x, m, inv, nonnegative, fast);
    for (int64_t i = 0; i < m; ++i) {
        const float xn = x[i] * inv;
        const uint32_t want = nonnegative ? fo_q_encode_unsigned(xn) : fo_q_encode_signed(xn);
        if (fast[i] != want && ++mismatches <= 20)
            printf("encode %s: x=%a (bits %08x) inv=%a: fast %u, exact %u\n",
                   nonnegative ? "unsigned" : "signed", (double)x[i], fo_f32_bits(x[i]),
                   (double)inv, fast[i], want);
    }
}

int main(int argc, char **argv)
{
#if !FO_QCODEC_X86
    (void)argc, (void)argv;
    puts("check_qencode: not an x86-64 GCC/clang build");
    return 2;
#else
    if (!fo_qcodec_isa()) {
        puts("check_qencode: this CPU lacks AVX-512 F/BW/DQ/VBMI");
        return 2;
    }
    const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const uint64_t stride = quick ? 61 : 1;
    static float x[CHUNK];
    long checked = 0;
    for (int nonnegative = 0; nonnegative <= 1; ++nonnegative) {
        int64_t m = 0;
        for (uint64_t b = 0; b < (1ull << 32); b += stride) {
            x[m++] = fo_f32_from_bits((uint32_t)b);
            if (m == CHUNK) {
                compare_encode(x, m, 1.0f, nonnegative);
                checked += m;
                m = 0;
            }
        }
        compare_encode(x, m, 1.0f, nonnegative);
        checked += m;
        /* the thresholds and their neighbours, scaled back by several absmax */
        const float *map = fo_qmap(nonnegative);
        const float scales[] = {1.0f, 0.5f, 3.0f, 1e-3f, 7.77e5f, 1.17549435e-38f};
        for (size_t s = 0; s < sizeof scales / sizeof scales[0]; ++s) {
            m = 0;
            for (int c = 0; c < 255; ++c) {
                const float mid = (float)(((double)map[c] + (double)map[c + 1]) / 2.0);
                for (int d = -2; d <= 2; ++d) {
                    const float t = fo_f32_from_bits((uint32_t)((int32_t)fo_f32_bits(mid) + d));
                    x[m++] = t * scales[s];
                }
            }
            compare_encode(x, m, 1.0f / scales[s], nonnegative);
            checked += m;
        }
        /* decode: every code times assorted absmax */
        const float absmaxes[] = {1.0f, 0.0f, 0.37f, 3.4e38f, 1e-40f, INFINITY, NAN, -2.0f};
        for (size_t s = 0; s < sizeof absmaxes / sizeof absmaxes[0]; ++s) {
            uint8_t codes[FO_QBLOCK + 7];
            float got[FO_QBLOCK + 7];
            for (int i = 0; i < FO_QBLOCK + 7; ++i)
                codes[i] = (uint8_t)(i * 37 + 11);
            fo_qdecode_avx512(codes, FO_QBLOCK + 7, nonnegative, absmaxes[s], got);
            for (int i = 0; i < FO_QBLOCK + 7; ++i) {
                const float want = map[codes[i]] * absmaxes[s];
                if (fo_f32_bits(got[i]) != fo_f32_bits(want) && ++mismatches <= 40)
                    printf("decode %d code %u absmax %g: %a != %a\n", nonnegative, codes[i],
                           (double)absmaxes[s], (double)got[i], (double)want);
            }
        }
    }
    printf("check_qencode: %ld encodes checked, %ld mismatches\n", checked, mismatches);
    return mismatches != 0;
#endif
}
