# _threads.pxi — the thread policy (DEVELOPING.md): how many threads a kernel call may use.
#
# None/unset: OpenMP's maximum, capped at the physical cores unless OMP_NUM_THREADS is set.
# set_num_threads(n): n threads; a negative n counts back from the maximum (-1 = all).
# A lower OpenMP limit set later in this thread (threadpoolctl.threadpool_limits, or
# omp_set_num_threads) always wins, so threadpoolctl limits fastopt like any OpenMP library.

from fastopt._openmp cimport FO_OPENMP, fo_max_threads, fo_team_size

cdef int _user_threads = 0      # 0: not set
cdef int _default_threads = 1   # the unset policy, fixed at import
cdef int _omp_baseline = 1      # omp_get_max_threads() at import


def _init_thread_policy(int physical_cores, bint omp_env_set):
    """Called once by fastopt._config at import."""
    global _default_threads, _omp_baseline
    _omp_baseline = fo_max_threads()
    if omp_env_set or physical_cores < 1:
        _default_threads = _omp_baseline
    else:
        _default_threads = min(_omp_baseline, physical_cores)


cdef inline int current_threads() noexcept nogil:
    if not FO_OPENMP:
        return 1
    cdef int n = _user_threads if _user_threads > 0 else _default_threads
    cdef int limit = fo_max_threads()
    if limit < _omp_baseline and limit < n:
        n = limit
    return n if n > 0 else 1


def get_num_threads():
    """Number of threads the next kernel call may use (1 in a build without OpenMP)."""
    return current_threads()


def _max_threads():
    return _omp_baseline if FO_OPENMP else 1


def _get_user_threads():
    return _user_threads


def _set_user_threads(int n):
    global _user_threads
    _user_threads = n


def set_num_threads(n):
    """Set how many threads fastopt's kernels use.

    Parameters
    ----------
    n : int or None
        A positive count; a negative count counts back from OpenMP's maximum
        (-1 means all of them); None restores the default (OpenMP's maximum, capped at the
        physical cores unless OMP_NUM_THREADS is set). 0 is an error.
    """
    global _user_threads
    if n is None:
        _user_threads = 0
        return
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n: expected an int or None, got {type(n).__name__}")
    v = int(n)  # a Python int: no overflow for huge counts
    if v == 0:
        raise ValueError("n: expected a positive or negative thread count, got 0")
    if v < 0:
        v = _omp_baseline + v + 1
        if v < 1:
            raise ValueError(f"n: {n} counts back past the first of the {_omp_baseline} "
                             "available threads")
    _user_threads = <int>min(v, 1 << 20)


def planned_threads(total_elements):
    """Threads a kernel over `total_elements` elements would use now (serial threshold applied)."""
    if isinstance(total_elements, (bool, np.bool_)) or not isinstance(
            total_elements, (int, np.integer)):
        raise TypeError(f"total_elements: expected an int, got {type(total_elements).__name__}")
    if total_elements < 0:
        raise ValueError(f"total_elements: expected a count >= 0, got {total_elements}")
    return fo_team_size(<long long>min(int(total_elements), 1 << 62), current_threads())
