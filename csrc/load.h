/* load.h — the load signal behind fastopt's default team size.
 *
 * When another runnable thread wants a core that one of this process's threads holds,
 * the scheduler preempts ours: an involuntary context switch. Their rate per CPU-second
 * of this process says whether the cores are oversubscribed right now -- by other
 * processes, or by another thread pool of this one (OpenBLAS workers that spin-yield) --
 * without reading /proc (50 us a read on the machine this was measured on; getrusage
 * costs 0.7 us) and from this process's own point of view (cpusets, containers). */
#ifndef FASTOPT_LOAD_H
#define FASTOPT_LOAD_H

#if defined(__unix__) || defined(__APPLE__)
#  include <sys/resource.h>
#  include <time.h>
#  define FO_HAVE_LOAD_SIGNAL 1

/* Involuntary switches of all this process's threads and their CPU seconds, so far. */
static inline int fo_preemptions(long long *switches, double *cpu_seconds)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0)
        return 0;
    *switches = (long long)u.ru_nivcsw;
    *cpu_seconds = (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec
                   + (double)u.ru_stime.tv_sec + 1e-6 * (double)u.ru_stime.tv_usec;
    return 1;
}

static inline double fo_monotonic_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
#else
#  define FO_HAVE_LOAD_SIGNAL 0
static inline int fo_preemptions(long long *switches, double *cpu_seconds)
{
    (void)switches;
    (void)cpu_seconds;
    return 0;
}
static inline double fo_monotonic_seconds(void) { return 0.0; }
#endif

#endif
