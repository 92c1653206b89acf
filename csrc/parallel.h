/* parallel.h — the one OpenMP guard, the serial threshold, fixed-block work splitting and
 * the OpenMP entry of the multi-tensor kernels (fo_parallel_ranges). */
#ifndef FASTOPT_PARALLEL_H
#define FASTOPT_PARALLEL_H

#include "config.h"
#if defined(_MSC_VER) && !defined(__clang__)
#  include <intrin.h> /* _InterlockedExchangeAdd64 */
#endif

#ifdef _OPENMP
#  include <omp.h>
#  define FO_OPENMP 1
static inline int fo_thread_id(void) { return omp_get_thread_num(); }
static inline int fo_team_threads(void) { return omp_get_num_threads(); }
static inline int fo_max_threads(void) { return omp_get_max_threads(); }
#else
#  define FO_OPENMP 0
static inline int fo_thread_id(void) { return 0; }
static inline int fo_team_threads(void) { return 1; }
static inline int fo_max_threads(void) { return 1; }
#endif

/* A flag shared by the threads of one region (an early-exit "found" flag): read and
 * written atomically. OpenMP 3.1 has atomic read/write; MSVC's OpenMP 2.0 does not, and
 * there an aligned int's load/store through a volatile lvalue (whole-word on every target
 * MSVC builds for) plus a flush does the same job. */
#if !FO_OPENMP || _OPENMP >= 201107
#  define FO_ATOMIC_FLAGS_PRAGMAS 1
#else
#  define FO_ATOMIC_FLAGS_PRAGMAS 0
#endif
static inline int fo_flag_get(int *flag)
{
    int value;
#if FO_ATOMIC_FLAGS_PRAGMAS
#  pragma omp atomic read
    value = *flag;
#else
#  pragma omp flush
    value = *(volatile int *)flag;
#endif
    return value;
}
static inline void fo_flag_set(int *flag, int value)
{
#if FO_ATOMIC_FLAGS_PRAGMAS
#  pragma omp atomic write
    *flag = value;
#else
    *(volatile int *)flag = value;
#  pragma omp flush
#endif
}

/* Below this many elements an element-wise update runs on the calling thread: waking a
 * second thread costs a few microseconds, about what one core needs for this much work.
 * Measured with benchmarks/serial_threshold.py (SGD+momentum, float32, 2 cores): 2 threads
 * were 0.55-1.18x of 1 thread at 8,192 elements, 0.79-1.41x at 16,384 and 1.13-1.66x at
 * 32,768 over two runs on a busy machine, so 32,768 is where a second thread always paid. */
#ifndef FO_SERIAL_BELOW
#  define FO_SERIAL_BELOW 32768
#endif

/* Thread ranges start on multiples of this many elements (a 64-byte line of floats). */
#define FO_SPLIT_ALIGN 16

/* A cache line (x86-64, most aarch64): element loops start their vector loop on one. */
#define FO_LINE_BYTES 64

/* Reductions sum blocks of this many elements, then add the block sums in block order:
 * the result is the same bits for any number of threads. */
#define FO_REDUCE_BLOCK 4096

/* How many threads to use for `work` elements when the caller allows `requested`. */
static inline int fo_team_size(int64_t work, int requested)
{
#if FO_OPENMP
    if (requested <= 1 || work < FO_SERIAL_BELOW)
        return 1;
    const int64_t per_thread = FO_SERIAL_BELOW / 2 > 0 ? FO_SERIAL_BELOW / 2 : 1;
    int64_t useful = work / per_thread; /* each thread gets at least half the threshold */
    return useful < requested ? (int)useful : requested;
#else
    (void)work;
    (void)requested;
    return 1;
#endif
}

/* The contiguous range [*lo, *hi) of `total` elements that part `part` of `parts` owns. */
static inline void fo_split(int64_t total, int part, int parts, int64_t *lo, int64_t *hi)
{
    int64_t per = (total + parts - 1) / parts;
    per = (per + FO_SPLIT_ALIGN - 1) / FO_SPLIT_ALIGN * FO_SPLIT_ALIGN;
    int64_t a = per * part, b = a + per;
    *lo = a < total ? a : total;
    *hi = b < total ? b : total;
}

/* Index of the tensor holding global element `idx` (the last t with offsets[t] <= idx). */
static inline int64_t fo_tensor_at(const int64_t *offsets, int64_t count, int64_t idx)
{
    int64_t lo = 0, hi = count; /* invariant: offsets[lo] <= idx < offsets[hi] */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (offsets[mid] <= idx)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The work of one thread: global elements [lo, hi) of `layout`, with the kernel's own
 * arguments in `ctx`. */
typedef void (*fo_range_fn)(const fo_layout *layout, int64_t lo, int64_t hi, void *ctx);

/* Chunks per thread of a parallel multi-tensor call. A thread takes the next chunk when it
 * is done with one, so a thread that starts late (a worker still waking from sleep, which
 * costs 50-200 us on a VM, or one preempted by another process) takes fewer chunks instead
 * of holding up the call; with one fixed range per thread the call waited for it.
 * Each thread first takes the chunks of its own share, the same share every call, and only
 * then takes what is left of the others' (fo_parallel_ranges): handed out strictly in turn,
 * a chunk went to whichever thread asked, so an array that stays in cache between steps
 * (a 1e6-element float32 Adam step touches 16 MB) was read each step from the cache of the
 * core that had written it the step before (measured: the same step 1.5x slower in some
 * processes than in others on the 2-core VM, which the fixed shares do not show). */
#ifndef FO_CHUNKS_PER_THREAD
#  define FO_CHUNKS_PER_THREAD 8
#endif

/* The chunk length for `total` items (elements, or dropout's tiles) and `team` threads:
 * about total / (team * FO_CHUNKS_PER_THREAD), at least `least`, a multiple of
 * FO_SPLIT_ALIGN. Depends only on its arguments. */
static inline int64_t fo_chunk_length_least(int64_t total, int team, int64_t least)
{
    const int64_t parts = (int64_t)team * FO_CHUNKS_PER_THREAD;
    int64_t chunk = (total + parts - 1) / parts;
    if (chunk < least)
        chunk = least;
    return (chunk + FO_SPLIT_ALIGN - 1) / FO_SPLIT_ALIGN * FO_SPLIT_ALIGN;
}

/* The chunk length of a multi-tensor call: at least half the serial threshold (a chunk is
 * worth a thread's turn). */
static inline int64_t fo_chunk_length(int64_t total, int team)
{
    return fo_chunk_length_least(total, team, FO_SERIAL_BELOW / 2);
}

/* Atomically take the next chunk index of a share: *next, then one more. Relaxed order is
 * enough: it only decides who runs a chunk, and the region's closing barrier publishes the
 * chunk's writes. */
static inline int64_t fo_take_chunk(int64_t *next)
{
#if defined(_MSC_VER) && !defined(__clang__)
    return _InterlockedExchangeAdd64((volatile __int64 *)next, 1);
#else
    return __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
#endif
}

/* One thread's share of the chunks, [next, end); 64 bytes, so that the counters of two
 * shares side by side never sit on one cache line. */
typedef struct { int64_t next, end; char pad[48]; } fo_chunk_share;

/* Teams up to this size take shares (above it, chunks are handed out in turn). */
#define FO_MAX_SHARED_TEAM 64

/* The OpenMP entry of every multi-tensor kernel, written once: check the layout, choose the
 * team (serial below the threshold: no OpenMP region at all, since even an if(0) one costs
 * a team setup), hand out aligned chunks of the flat index space to the threads as they
 * ask (fo_chunk_length; each thread its own share first, see FO_CHUNKS_PER_THREAD), and
 * record the team size in layout->threads_used. An element's result does not depend on
 * which thread or chunk updates it, so an element-wise kernel gives the same bits for any
 * thread count and any timing. */
static inline int fo_parallel_ranges(fo_layout *layout, int nthreads, fo_range_fn range,
                                     void *ctx)
{
    if (!layout || layout->count < 0 || (layout->count > 0 && !layout->offsets))
        return FO_ERR_ARGUMENT;
    const int64_t total = layout->count > 0 ? layout->offsets[layout->count] : 0;
    const int team = fo_team_size(total, nthreads);
    layout->threads_used = 1;
    if (team <= 1) {
        range(layout, 0, total, ctx);
        return FO_OK;
    }
    const int64_t chunk = fo_chunk_length(total, team);
    const int chunks = (int)((total + chunk - 1) / chunk);
    if (team > FO_MAX_SHARED_TEAM) {
#pragma omp parallel num_threads(team)
        {
            if (fo_thread_id() == 0)
                layout->threads_used = fo_team_threads();
            int c; /* an int loop variable: MSVC's OpenMP 2.0 takes no other */
#pragma omp for schedule(dynamic, 1) nowait
            for (c = 0; c < chunks; ++c) {
                const int64_t lo = (int64_t)c * chunk;
                range(layout, lo, lo + chunk < total ? lo + chunk : total, ctx);
            }
        }
        return FO_OK;
    }
    fo_chunk_share shares[FO_MAX_SHARED_TEAM];
    for (int t = 0; t < team; ++t) {
        shares[t].next = (int64_t)chunks * t / team;
        shares[t].end = (int64_t)chunks * (t + 1) / team;
    }
#pragma omp parallel num_threads(team)
    {
        const int me = fo_thread_id();
        if (me == 0)
            layout->threads_used = fo_team_threads();
        /* its own share, then the others' in turn (a team the runtime made smaller than
         * asked leaves shares without an owner: they are taken here too) */
        for (int k = 0; k < team; ++k) {
            fo_chunk_share *share = &shares[(me + k) % team];
            for (int64_t c; (c = fo_take_chunk(&share->next)) < share->end;) {
                const int64_t lo = c * chunk;
                range(layout, lo, lo + chunk < total ? lo + chunk : total, ctx);
            }
        }
    }
    return FO_OK;
}

/* Iterate over the pieces of tensors that global range [lo, hi) covers:
 *   FO_FOR_EACH_PIECE(layout, lo, hi, t, begin, len) { ... tensor t, elements [begin, begin+len) }
 * Empty tensors are skipped. */
#define FO_FOR_EACH_PIECE(layout, lo, hi, t, begin, len)                                     \
    for (int64_t t = fo_tensor_at((layout)->offsets, (layout)->count, (lo)), begin = 0,        \
                 len = 0;                                                                      \
         t < (layout)->count && (layout)->offsets[t] < (hi); ++t)                              \
        if ((begin = ((lo) > (layout)->offsets[t] ? (lo) : (layout)->offsets[t])               \
                     - (layout)->offsets[t]),                                                  \
            (len = (((hi) < (layout)->offsets[t + 1] ? (hi) : (layout)->offsets[t + 1])        \
                    - (layout)->offsets[t]) - begin),                                          \
            len > 0)

#endif
