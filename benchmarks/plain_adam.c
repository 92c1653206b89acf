/* plain_adam.c — the bandwidth yardstick of benchmarks/optim_vs_torch.py: the simplest
 * one-pass Adam loop (no options, no multi-tensor layout), compiled with fastopt's own
 * flags (-O3 -ffp-contract=off -fno-math-errno -fopenmp) and the same SIMD clones. It
 * moves the same 7 arrays x sizeof(T) bytes per parameter as fastopt's kernel. Not part
 * of the library. */
#include <math.h>
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#  define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#  define CLONES
#endif

CLONES void plain_adam_f32(float *restrict p, const float *restrict g, float *restrict m,
                    float *restrict v, int64_t n, float lr_bc1, float bc2_sqrt, float b1,
                    float b2, float eps, int nthreads)
{
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t i = 0; i < n; ++i) {
        const float mi = b1 * m[i] + (1.0f - b1) * g[i];
        const float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - lr_bc1 * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

CLONES void plain_adam_f64(double *restrict p, const double *restrict g, double *restrict m,
                    double *restrict v, int64_t n, double lr_bc1, double bc2_sqrt, double b1,
                    double b2, double eps, int nthreads)
{
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t i = 0; i < n; ++i) {
        const double mi = b1 * m[i] + (1.0 - b1) * g[i];
        const double vi = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - lr_bc1 * mi / (sqrt(vi) / bc2_sqrt + eps);
    }
}
