/* load.h — the load signal behind fastopt's default team size.
 *
 * When another runnable thread wants a core that one of this process's threads holds,
 * the scheduler preempts ours: an involuntary context switch. Their rate per CPU-second
 * of this process says whether the cores are oversubscribed right now -- by other
 * processes, or by another thread pool of this one (OpenBLAS workers that spin-yield) --
 * without reading /proc (50 us a read on the machine this was measured on; getrusage
 * costs 0.7 us) and from this process's own point of view (cpusets, containers).
 *
 * That signal cannot say when to grow back: a team cut to fit beside another busy process
 * is no longer preempted, so a quiet rate alone would regrow it within a window and
 * oscillate. Growing also asks the system how many threads are runnable right now (the
 * "R/T" field of /proc/loadavg: 5 us to open and read here, once per window at most). */
#ifndef FASTOPT_LOAD_H
#define FASTOPT_LOAD_H

#if defined(__unix__) || defined(__APPLE__)
#  include <fcntl.h>
#  include <stdlib.h>
#  include <sys/resource.h>
#  include <time.h>
#  include <unistd.h>
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

/* Threads runnable on the whole system now, the caller included ("1.0 0.9 0.8 R/T last"
 * in /proc/loadavg, Linux), or -1 where that cannot be read. */
static inline int fo_runnable_threads(void)
{
    char text[128];
    const int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    const ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got <= 0)
        return -1;
    text[got] = '\0';
    const char *at = text;
    for (int field = 0; field < 3; ++field) { /* skip the three averages */
        while (*at && *at != ' ')
            ++at;
        while (*at == ' ')
            ++at;
    }
    char *end;
    const long running = strtol(at, &end, 10);
    return end != at && *end == '/' && running > 0 && running < (1L << 20) ? (int)running : -1;
}

/* Logical CPUs online (the system's, not this process's cpuset: the runnable count above
 * is the system's too), or -1. */
static inline int fo_online_cpus(void)
{
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < (1L << 20) ? (int)n : -1;
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
static inline int fo_runnable_threads(void) { return -1; }
static inline int fo_online_cpus(void) { return -1; }
#endif

#endif
