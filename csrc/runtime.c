/* runtime.c — what this build of the kernels can do, for show_config(). */
#include "fastopt.h"
#include "parallel.h"

const char *fo_version(void) { return FO_VERSION; }

int fo_openmp_enabled(void) { return FO_OPENMP; }

int fo_simd_clones_enabled(void) { return FO_HAVE_CLONES; }

const char *fo_simd_target(void)
{
#if FO_HAVE_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4"))
        return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("x86-64-v3"))
        return "x86-64-v3 (AVX2+FMA)";
    return "x86-64 (baseline SSE2)";
#else
    return "baseline (no runtime dispatch in this build)";
#endif
}

const char *fo_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
    return "msvc";
#else
    return "unknown";
#endif
}
