/* config.h — compiler feature macros and status codes shared by every kernel. */
#ifndef FASTOPT_CONFIG_H
#define FASTOPT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* The version is written once, in src/fastopt/_version.py: setup.py compiles the kernels with
 * -DFO_VERSION="x.y.z" and writes it into the installed copy of this header (the line below).
 * A build from csrc/ alone, without setup.py, reports "unknown" unless it passes the define. */
#ifndef FO_VERSION
#  define FO_VERSION "unknown"
#endif

/* Runtime SIMD dispatch: GCC on x86-64 Linux builds each block kernel three times
 * (AVX-512, AVX2/FMA, baseline) and an ifunc resolver picks one when the library loads.
 * With -ffp-contract=off all three give the same bits. Elsewhere: baseline only. glibc
 * only: musl's loader has no ifunc (musllinux wheels), and __GLIBC__ comes with stdint.h. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && defined(__GLIBC__) && !defined(FO_NO_CLONES) && !defined(__SANITIZE_ADDRESS__) \
    && defined(__has_attribute)
#  if __has_attribute(target_clones)
#    define FO_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#    define FO_HAVE_CLONES 1
#  endif
#endif
#ifndef FO_CLONES
#  define FO_CLONES
#  define FO_HAVE_CLONES 0
#endif

/* FO_ALIGNED(n) before a variable's type aligns it to n bytes (GCC/clang and MSVC). */
#if defined(_MSC_VER)
#  define FO_ALIGNED(n) __declspec(align(n))
#else
#  define FO_ALIGNED(n) __attribute__((aligned(n)))
#endif

#if defined(__GNUC__)
#  define FO_API __attribute__((visibility("default")))
#else
#  define FO_API
#endif

/* Every kernel returns one of these; the Python boundary turns them into exceptions. */
enum fo_status {
    FO_OK = 0,
    FO_ERR_ARGUMENT = 1, /* an argument a C caller passed is invalid (NULL, negative size) */
    FO_ERR_NOMEM = 2     /* a scratch allocation failed */
};

/* A list of tensors as one flat index space: tensor t holds global elements
 * [offsets[t], offsets[t+1]). Multi-tensor kernels split that space between threads,
 * so 2,000 small tensors use every core just like one large one. */
typedef struct fo_layout {
    int64_t count;          /* number of tensors */
    const int64_t *offsets; /* count + 1 prefix sums of the element counts */
    int threads_used;       /* out: size of the thread team the kernel ran with */
} fo_layout;

#endif
