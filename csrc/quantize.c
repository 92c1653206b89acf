/* quantize.c — standalone conversions between full-precision arrays and the low-precision
 * state formats of lowprec.h: blockwise 8-bit quantization and bfloat16. The optimizers do
 * the same in their fused loop (optim_lowprec.inc); these serve checkpoints (loading a
 * float32 state into an int8 optimizer and back) and the tests. Work is split between
 * threads on block boundaries, so the results do not depend on the thread count. */
#include "fastopt.h"
#include "lowprec.h"
#include "parallel.h"
#include "rules.h"

/* Run the statements (with lo, hi in scope) over [0, units) split between threads (units of FO_QBLOCK elements
 * when n elements are quantized). */
#define FO_QUANTIZE_PARALLEL(n, units, nthreads, ...)                                       \
    do {                                                                                     \
        const int team_ = fo_team_size((n), (nthreads));                                     \
        if (team_ <= 1) {                                                                    \
            const int64_t lo = 0, hi = (units);                                              \
            __VA_ARGS__;                                                                          \
        } else {                                                                             \
            _Pragma("omp parallel num_threads(team_)")                                       \
            {                                                                                \
                int64_t lo, hi;                                                              \
                fo_split((units), fo_thread_id(), fo_team_threads(), &lo, &hi);              \
                __VA_ARGS__;                                                                      \
            }                                                                                \
        }                                                                                    \
    } while (0)

#define FO_TEMPLATE "quantize.inc"
#include "instantiate.h"

int fo_bf16_from_f32(const float *x, uint16_t *out, int64_t n, int nthreads)
{
    if (n < 0 || (n > 0 && (!x || !out)))
        return FO_ERR_ARGUMENT;
    FO_QUANTIZE_PARALLEL(n, n, nthreads, {
        for (int64_t i = lo; i < hi; ++i)
            out[i] = fo_bf16_round_nearest(x[i]);
    });
    return FO_OK;
}

int fo_bf16_to_f32_array(const uint16_t *h, float *out, int64_t n, int nthreads)
{
    if (n < 0 || (n > 0 && (!h || !out)))
        return FO_ERR_ARGUMENT;
    FO_QUANTIZE_PARALLEL(n, n, nthreads, {
        for (int64_t i = lo; i < hi; ++i)
            out[i] = fo_bf16_to_f32(h[i]);
    });
    return FO_OK;
}
