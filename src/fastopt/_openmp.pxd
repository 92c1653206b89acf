# The one guarded OpenMP shim: nothing else in fastopt cimports openmp directly.
# parallel.h defines these with or without OpenMP (1 thread, FO_OPENMP == 0, without it).
cdef extern from "parallel.h" nogil:
    int FO_OPENMP
    int FO_SERIAL_BELOW
    int FO_REDUCE_BLOCK
    int fo_max_threads() noexcept
    int fo_team_size(long long work, int requested) noexcept
