/* quantize.c — standalone conversions between full-precision arrays and the low-precision
 * state formats of lowprec.h: blockwise 8-bit quantization and bfloat16. The optimizers do
 * the same in their fused loop (optim_lowprec.inc); these serve checkpoints (loading a
 * float32 state into an int8 optimizer and back) and the tests. Work is split between
 * threads on block boundaries, so the results do not depend on the thread count. */
#include "fastopt.h"
#include "lowprec.h"
#include "parallel.h"
#include "rules.h"

/* The work of one thread: units [lo, hi) of the job in `ctx`. */
typedef void (*fo_units_fn)(void *ctx, int64_t lo, int64_t hi);

/* Run fn over [0, units) split between threads (the team sized by the n elements the
 * units cover): fixed ranges, so the results do not depend on the thread count. */
static void fo_quantize_run(int64_t n, int64_t units, int nthreads, fo_units_fn fn, void *ctx)
{
    const int team = fo_team_size(n, nthreads);
    if (team <= 1) {
        fn(ctx, 0, units);
        return;
    }
#pragma omp parallel num_threads(team)
    {
        int64_t lo, hi;
        fo_split(units, fo_thread_id(), fo_team_threads(), &lo, &hi);
        fn(ctx, lo, hi);
    }
}

#define FO_TEMPLATE "quantize.inc"
#include "instantiate.h"

typedef struct bf16_job {
    const float *x;
    const uint16_t *h;
    uint16_t *bits;
    float *out;
} bf16_job;

static FO_CLONES void bf16_from_units(void *ctx, int64_t lo, int64_t hi)
{
    const bf16_job *j = (const bf16_job *)ctx;
    for (int64_t i = lo; i < hi; ++i)
        j->bits[i] = fo_bf16_round_nearest(j->x[i]);
}

static FO_CLONES void bf16_to_units(void *ctx, int64_t lo, int64_t hi)
{
    const bf16_job *j = (const bf16_job *)ctx;
    for (int64_t i = lo; i < hi; ++i)
        j->out[i] = fo_bf16_to_f32(j->h[i]);
}

int fo_bf16_from_f32(const float *x, uint16_t *out, int64_t n, int nthreads)
{
    if (n < 0 || (n > 0 && (!x || !out)))
        return FO_ERR_ARGUMENT;
    bf16_job job = {x, 0, out, 0};
    fo_quantize_run(n, n, nthreads, bf16_from_units, &job);
    return FO_OK;
}

int fo_bf16_to_f32_array(const uint16_t *h, float *out, int64_t n, int nthreads)
{
    if (n < 0 || (n > 0 && (!h || !out)))
        return FO_ERR_ARGUMENT;
    bf16_job job = {0, h, 0, out};
    fo_quantize_run(n, n, nthreads, bf16_to_units, &job);
    return FO_OK;
}
