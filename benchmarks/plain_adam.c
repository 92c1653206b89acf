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

/* The float and double loops differ only in their type, literal suffix and sqrt. */
#define PLAIN_ADAM(NAME, T, ONE, SQRT)                                                    \
    CLONES void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,    \
                     int64_t n, T lr_bc1, T bc2_sqrt, T b1, T b2, T eps, int nthreads)    \
    {                                                                                     \
        _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                \
        for (int64_t i = 0; i < n; ++i) {                                                 \
            const T mi = b1 * m[i] + (ONE - b1) * g[i];                                   \
            const T vi = b2 * v[i] + (ONE - b2) * g[i] * g[i];                            \
            m[i] = mi;                                                                    \
            v[i] = vi;                                                                    \
            p[i] = p[i] - lr_bc1 * mi / (SQRT(vi) / bc2_sqrt + eps);                      \
        }                                                                                 \
    }

PLAIN_ADAM(plain_adam_f32, float, 1.0f, sqrtf)
PLAIN_ADAM(plain_adam_f64, double, 1.0, sqrt)
