# _memory.pxi — memory fastopt allocates: huge-page advice, and large new outputs on
# whole huge pages.
#
# Uses: nothing. Used by: fastopt.torch (the state tensors it allocates), _nn.pxi (the
# arrays dropout and batch norm return when no `out` is given).
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


# -- large new outputs on whole huge pages -----------------------------------------------------
#
# A kernel that returns a new array of megabytes (dropout's y, its backward's dx) spends
# much of its time in the page faults of that array's first write: numpy mallocs it (glibc
# maps it at a 4 KiB boundary) and advises huge pages, so the 2 MiB-aligned middle gets
# huge pages but the unaligned head and tail, up to 2 MiB, take one fault per 4 KiB (1,134
# faults for dropout + backward on 1024x4096 float32). fastopt allocates such an output
# through a numpy memory handler (NEP 49) that maps it starting on a 2 MiB boundary, whole
# huge pages advised: 16 faults, and the call 8.4 -> 6.9 ms on the 2-core VM. The array
# owns its memory as any numpy array does (numpy calls the handler's free). The kernel's
# threads then first-touch the pages they write, so the zeroing is split between them.
#
# The zeroing is most of what remains (the kernel clears every fresh page: 32 MB a call
# there), so a freed block is kept for the next output of the same size, as jemalloc keeps
# dirty pages: at most HUGE_CACHE_BLOCKS blocks and HUGE_CACHE_BYTES in all, marked
# MADV_FREE so that under memory pressure the kernel takes their pages back instead of
# swapping (a write to a page it did not take costs nothing; one it took faults in zeroed).
# A loop that allocates the same outputs every step then writes pages already there: no
# page faults at all, dropout forward + backward 5.9 -> 4.1 ms (load average 2).

cdef extern from *:
    """
    #include <stdlib.h>
    #include <string.h>
    #include <numpy/arrayobject.h>
    #if defined(__linux__)
    #  include <sys/mman.h>
    #endif
    #if defined(__linux__) && defined(MADV_HUGEPAGE) && defined(MAP_ANONYMOUS)
    #  define FO_HUGE_OUTPUTS 1
    #else
    #  define FO_HUGE_OUTPUTS 0
    #endif
    #define FO_HUGE_PAGE ((size_t)2 << 20)
    #define FO_BLOCK_HEADER ((size_t)4096)  /* the page before the data: what munmap needs */
    #define FO_BLOCK_MAGIC 0x66616f7068756765ULL

    typedef struct { unsigned long long magic; size_t mapped, size; } fo_block_header;

    /* Freed blocks kept for reuse (see the comment above): at most FO_CACHE_BLOCKS of them,
     * FO_CACHE_BYTES of data in all. */
    #define FO_CACHE_BLOCKS 4
    #define FO_CACHE_BYTES ((size_t)64 << 20)
    #if FO_HUGE_OUTPUTS
    #  include <pthread.h>
    static struct { char *data; size_t bytes; } fo_cache[FO_CACHE_BLOCKS];
    static int fo_cache_count;
    static size_t fo_cache_total;
    static pthread_mutex_t fo_cache_lock = PTHREAD_MUTEX_INITIALIZER;

    /* A kept block of exactly `data` bytes, or NULL. */
    static char *fo_cache_take(size_t data)
    {
        char *d = NULL;
        pthread_mutex_lock(&fo_cache_lock);
        for (int i = 0; i < fo_cache_count; ++i)
            if (fo_cache[i].bytes == data) {
                d = fo_cache[i].data;
                fo_cache_total -= data;
                fo_cache[i] = fo_cache[--fo_cache_count];
                break;
            }
        pthread_mutex_unlock(&fo_cache_lock);
        return d;
    }

    /* Keep the block at `d` (`data` bytes) if there is room; 1 if kept. */
    static int fo_cache_put(char *d, size_t data)
    {
        int kept = 0;
        pthread_mutex_lock(&fo_cache_lock);
        if (fo_cache_count < FO_CACHE_BLOCKS && fo_cache_total + data <= FO_CACHE_BYTES) {
    #  if defined(MADV_FREE)
            madvise(d, data, MADV_FREE);  /* reclaimable under pressure; kept pages stay */
    #  endif
            fo_cache[fo_cache_count].data = d;
            fo_cache[fo_cache_count].bytes = data;
            ++fo_cache_count;
            fo_cache_total += data;
            kept = 1;
        }
        pthread_mutex_unlock(&fo_cache_lock);
        return kept;
    }
    #endif

    /* Unmap every kept block. */
    static void fo_cache_release(void)
    {
    #if FO_HUGE_OUTPUTS
        pthread_mutex_lock(&fo_cache_lock);
        for (int i = 0; i < fo_cache_count; ++i) {
            fo_block_header *h = (fo_block_header *)(fo_cache[i].data - FO_BLOCK_HEADER);
            h->magic = 0;
            munmap(h, h->mapped);
        }
        fo_cache_count = 0;
        fo_cache_total = 0;
        pthread_mutex_unlock(&fo_cache_lock);
    #endif
    }

    /* Blocks and bytes kept now (tests). */
    static void fo_cache_state(int *blocks, size_t *bytes)
    {
    #if FO_HUGE_OUTPUTS
        pthread_mutex_lock(&fo_cache_lock);
        *blocks = fo_cache_count;
        *bytes = fo_cache_total;
        pthread_mutex_unlock(&fo_cache_lock);
    #else
        *blocks = 0;
        *bytes = 0;
    #endif
    }

    /* The bytes mapped for `size` bytes of data: whole huge pages when rounding up to them
     * adds at most an eighth (4e6 bytes -> 4 MiB), else whole 4 KiB pages, the partial
     * last huge page then on 4 KiB pages (THP fills only 2 MiB ranges inside a mapping). */
    static size_t fo_huge_block_data(size_t size)
    {
        const size_t huge = (size + FO_HUGE_PAGE - 1) / FO_HUGE_PAGE * FO_HUGE_PAGE;
        if (huge - size <= size / 8)
            return huge;
        return (size + FO_BLOCK_HEADER - 1) / FO_BLOCK_HEADER * FO_BLOCK_HEADER;
    }

    /* `size` bytes starting on a 2 MiB boundary, huge pages advised; one page before them
     * holds the header. Zeroed (a fresh mapping) unless `reuse` allows a kept block, whose
     * contents are unset. NULL on failure. */
    static void *fo_huge_block(size_t size, int reuse)
    {
    #if FO_HUGE_OUTPUTS
        if (size == 0)
            size = 1;
        if (size > (size_t)-1 - 2 * FO_HUGE_PAGE - FO_BLOCK_HEADER)
            return NULL;
        const size_t data = fo_huge_block_data(size);
        char *kept = reuse ? fo_cache_take(data) : NULL;
        if (kept) {
            ((fo_block_header *)(kept - FO_BLOCK_HEADER))->size = size;
            return kept;
        }
        const size_t length = FO_BLOCK_HEADER + data + FO_HUGE_PAGE;
        char *base = (char *)mmap(NULL, length, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == (char *)MAP_FAILED)
            return NULL;
        char *d = (char *)(((uintptr_t)base + FO_BLOCK_HEADER + FO_HUGE_PAGE - 1)
                           & ~(uintptr_t)(FO_HUGE_PAGE - 1));
        char *start = d - FO_BLOCK_HEADER, *end = d + data;
        if (start > base)
            munmap(base, (size_t)(start - base));
        if (base + length > end)
            munmap(end, (size_t)(base + length - end));
        madvise(d, data, MADV_HUGEPAGE);  /* advice: without it the block still works */
        fo_block_header *h = (fo_block_header *)start;
        h->magic = FO_BLOCK_MAGIC;
        h->mapped = FO_BLOCK_HEADER + data;
        h->size = size;
        return d;
    #else
        (void)size;
        return NULL;
    #endif
    }

    static void fo_huge_block_free(void *p)
    {
    #if FO_HUGE_OUTPUTS
        if (!p)
            return;
        fo_block_header *h = (fo_block_header *)((char *)p - FO_BLOCK_HEADER);
        if (h->magic != FO_BLOCK_MAGIC)
            abort();  /* not one of ours: freeing it any other way would corrupt memory */
        if (fo_cache_put((char *)p, h->mapped - FO_BLOCK_HEADER))
            return;
        h->magic = 0;
        munmap(h, h->mapped);
    #else
        (void)p;
    #endif
    }

    static void *fo_handler_malloc(void *ctx, size_t size)
    {
        (void)ctx;
        return fo_huge_block(size, 1);
    }
    static void *fo_handler_calloc(void *ctx, size_t n, size_t size)
    {
        (void)ctx;
        if (size && n > (size_t)-1 / size)
            return NULL;
        return fo_huge_block(n * size, 0);  /* a fresh mapping: zeros */
    }
    static void *fo_handler_realloc(void *ctx, void *p, size_t size)
    {
        (void)ctx;
        if (!p)
            return fo_huge_block(size, 1);
        void *q = fo_huge_block(size, 1);
        if (!q)
            return NULL;
        const size_t old = ((fo_block_header *)((char *)p - FO_BLOCK_HEADER))->size;
        memcpy(q, p, old < size ? old : size);
        fo_huge_block_free(p);
        return q;
    }
    static void fo_handler_free(void *ctx, void *p, size_t size)
    {
        (void)ctx;
        (void)size;
        fo_huge_block_free(p);
    }

    static PyDataMem_Handler fo_huge_handler = {
        "fastopt_huge_pages", 1,
        {NULL, fo_handler_malloc, fo_handler_calloc, fo_handler_realloc, fo_handler_free}};

    static PyObject *fo_huge_handler_capsule(void)
    {
        return PyCapsule_New(&fo_huge_handler, "mem_handler", NULL);
    }
    """
    int FO_HUGE_OUTPUTS, FO_CACHE_BLOCKS
    size_t FO_CACHE_BYTES
    void fo_cache_state(int *blocks, size_t *nbytes)
    void fo_cache_release()
    object fo_huge_handler_capsule()
    object PyDataMem_SetHandler(object handler)

#: Outputs of at least this many bytes (one huge page) start on a huge page; numpy
#: advises huge pages only from 4 MiB, so a 1e6-element float32 output faulted in 977
#: 4 KiB pages on every call.
HUGE_OUTPUT_BYTES = 1 << 21
#: Freed huge-page outputs kept for reuse: at most this many blocks, this many bytes.
HUGE_CACHE_BLOCKS = FO_CACHE_BLOCKS
HUGE_CACHE_BYTES = FO_CACHE_BYTES
cdef object _huge_handler = fo_huge_handler_capsule() if FO_HUGE_OUTPUTS else None


cdef object _new_output_like(cnp.ndarray ref):
    """A new C-ordered array like `ref` (np.empty_like), on whole huge pages when it is
    large (Linux); its contents are unset, as np.empty_like's."""
    if _huge_handler is None or cnp.PyArray_NBYTES(ref) < HUGE_OUTPUT_BYTES:
        return np.empty_like(ref, order="C")
    previous = PyDataMem_SetHandler(_huge_handler)
    try:
        return np.empty_like(ref, order="C")
    finally:
        PyDataMem_SetHandler(previous)


def new_output_like(cnp.ndarray ref):
    """The array a kernel returns when it is given no `out` (tests): np.empty_like(ref,
    order="C"), on whole huge pages when it holds at least HUGE_OUTPUT_BYTES (Linux)."""
    return _new_output_like(ref)


def release_huge_output_cache():
    """Unmap the freed huge-page outputs kept for reuse (their memory goes back to the
    system now instead of when the kernel needs it)."""
    fo_cache_release()


def huge_output_cache():
    """(blocks, bytes) of freed huge-page outputs kept for reuse now (tests)."""
    cdef int blocks = 0
    cdef size_t nbytes = 0
    fo_cache_state(&blocks, &nbytes)
    return blocks, nbytes
