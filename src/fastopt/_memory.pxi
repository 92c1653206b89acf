# _memory.pxi — advice to the kernel about memory fastopt allocates: huge pages.
#
# Uses: nothing. Used by: fastopt.torch (the state tensors it allocates).
#
# An optimizer step streams its params, gradients and state once per step; on arrays of
# megabytes, 4 KiB pages cost a TLB miss every 1,024 float32 elements per stream. numpy
# asks Linux for transparent huge pages (madvise MADV_HUGEPAGE) on every array of 4 MiB or
# more, torch does only with THP_MEM_ALLOC_ENABLE=1; fastopt.torch asks for the state
# tensors it allocates, as numpy would (measured: a 4e6-element float32 Adam step about
# 25% faster on huge pages than on 4 KiB pages).

cdef extern from *:
    """
    #include <stddef.h>
    #include <stdint.h>
    #if defined(__linux__)
    #  include <sys/mman.h>
    #  include <unistd.h>
    #endif
    /* MADV_HUGEPAGE on the whole pages of [p, p + n); 1 if the advice was taken. */
    static int fo_advise_hugepages(void *p, size_t n)
    {
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        long page = sysconf(_SC_PAGESIZE);
        if (page <= 0)
            return 0;
        uintptr_t mask = (uintptr_t)page - 1;
        uintptr_t lo = ((uintptr_t)p + mask) & ~mask;
        uintptr_t hi = ((uintptr_t)p + n) & ~mask;
        if (hi <= lo)
            return 0;
        return madvise((void *)lo, hi - lo, MADV_HUGEPAGE) == 0;
    #else
        (void)p;
        (void)n;
        return 0;
    #endif
    }
    """
    int fo_advise_hugepages(void *p, size_t n) nogil

#: numpy's threshold: arrays of at least this many bytes are given huge pages.
HUGEPAGE_BYTES = 1 << 22


def advise_hugepages(cnp.ndarray a):
    """Ask for transparent huge pages (Linux madvise MADV_HUGEPAGE) on the whole pages of
    the memory of C-contiguous array `a`, if it holds at least HUGEPAGE_BYTES; best before
    the memory is first written. Returns whether the advice was taken (False elsewhere:
    other systems, smaller arrays, THP disabled). Only advice: contents never change."""
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError("a: expected a C-contiguous array")
    if cnp.PyArray_NBYTES(a) < HUGEPAGE_BYTES:
        return False
    return bool(fo_advise_hugepages(cnp.PyArray_DATA(a), <size_t>cnp.PyArray_NBYTES(a)))
