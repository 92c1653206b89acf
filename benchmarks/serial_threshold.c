/* serial_threshold.c — where does a second thread start to pay off?
 *
 * Built by serial_threshold.py with -DFO_SERIAL_BELOW=1 so the kernels never fall back to
 * serial; times one SGD-with-momentum step (a light, bandwidth-bound update) on 1 and 2
 * threads for growing sizes and prints the ratio. FO_SERIAL_BELOW in csrc/parallel.h is
 * set near the size where 2 threads become faster. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "fastopt.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double time_step(int64_t n, int threads, float *p, float *g, float *b)
{
    enum { REPEATS = 15 };
    double t[REPEATS];
    int64_t off[2] = {0, n};
    fo_layout layout = {1, off, 0};
    fo_sgd_options o = {1e-6, 0.9, 0.0, 0.0, 0.0, 0, 0, 0};
    int inner = (int)(2000000 / n) + 1;
    for (int r = 0; r < REPEATS; ++r) {
        double t0 = now();
        for (int k = 0; k < inner; ++k)
            fo_sgd_step_f32(&layout, &p, (const float **)&g, &b, &o, threads);
        t[r] = (now() - t0) / inner;
    }
    qsort(t, REPEATS, sizeof(double), cmp);
    return t[REPEATS / 2];
}

int main(void)
{
    int64_t sizes[] = {2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144};
    int64_t nmax = 262144;
    float *p = calloc(nmax, 4), *g = calloc(nmax, 4), *b = calloc(nmax, 4);
    printf("%10s %12s %12s %8s\n", "elements", "1 thread us", "2 threads us", "1t/2t");
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; ++i) {
        double t1 = time_step(sizes[i], 1, p, g, b), t2 = time_step(sizes[i], 2, p, g, b);
        printf("%10lld %12.2f %12.2f %8.2f\n", (long long)sizes[i], t1 * 1e6, t2 * 1e6, t1 / t2);
    }
    free(p); free(g); free(b);
    return 0;
}
