# _threads.pxi — the thread policy (DEVELOPING.md): how many threads a kernel call may use.
#
# None/unset: OpenMP's maximum, capped at the physical cores unless OMP_NUM_THREADS is set,
# and, while the cores are oversubscribed, fewer (the load cap below).
# set_num_threads(n): n threads, always; a negative n counts back from the maximum (-1 = all).
# A lower OpenMP limit set later in this thread (threadpoolctl.threadpool_limits, or
# omp_set_num_threads) always wins, so threadpoolctl limits fastopt like any OpenMP library.

from fastopt._openmp cimport FO_OPENMP, fo_max_threads, fo_team_size

cdef extern from "load.h" nogil:
    int FO_HAVE_LOAD_SIGNAL
    int fo_preemptions(long long *switches, double *cpu_seconds) noexcept
    double fo_monotonic_seconds() noexcept
    int fo_runnable_threads() noexcept
    int fo_online_cpus() noexcept

cdef int _user_threads = 0      # 0: not set
cdef int _default_threads = 1   # the unset policy, fixed at import
cdef int _omp_baseline = 1      # omp_get_max_threads() at import

# The load cap of the default team (benchmarks/thread_policy.py measured why): a team
# whose threads are preempted waits at every barrier for a scheduler slice, so while this
# process's threads are preempted often (load.h: involuntary switches per CPU-second) the
# default team halves, and it grows back by one thread per quiet window in which the system
# has a CPU free for it (load.h: runnable threads against online CPUs; without that check
# a team cut to fit beside one busy process, and so no longer preempted, regrew at once and
# oscillated: L-BFGS at n = 1e6 ran 1.6x slower than with one thread). Explicit thread
# counts (set_num_threads, threads(), OMP_NUM_THREADS) are never capped.
LOAD_WINDOW_S = 0.02        # at most one getrusage per window
LOAD_MIN_CPU_S = 0.004      # a rate needs this much CPU time of the process
LOAD_BUSY_RATE = 100.0      # preemptions per CPU-second above which the team halves
LOAD_QUIET_RATE = 25.0      # and below which it grows by one
cdef double _window_s = LOAD_WINDOW_S, _min_cpu_s = LOAD_MIN_CPU_S
cdef double _busy_rate = LOAD_BUSY_RATE, _quiet_rate = LOAD_QUIET_RATE
cdef bint _load_adaptive = False
cdef int _load_cap = 1
cdef double _sample_time = -1e300, _sample_cpu = 0.0, _last_rate = -1.0
cdef long long _sample_switches = 0
cdef int _online_cpus = -1
cdef int _runnable_probe = -2   # -2: read the system; else a fixed answer (tests)
cdef int _last_runnable = -1


def _init_thread_policy(int physical_cores, bint omp_env_set, bint load_adaptive=True):
    """Called once by fastopt._config at import."""
    global _default_threads, _omp_baseline, _load_adaptive, _load_cap, _online_cpus
    _omp_baseline = fo_max_threads()
    _online_cpus = fo_online_cpus()
    if omp_env_set or physical_cores < 1:
        _default_threads = _omp_baseline
    else:
        _default_threads = min(_omp_baseline, physical_cores)
    _load_adaptive = (load_adaptive and not omp_env_set and FO_OPENMP and FO_HAVE_LOAD_SIGNAL
                      and _default_threads > 1)
    _load_cap = _default_threads
    _start_load_window()


cdef void _start_load_window() noexcept:
    """Count preemptions from now on: the first window's rate then excludes what came
    before (counted from the process's start, the interpreter's and the imports' own
    preemptions read 64-104 per CPU-second on the 2-core VM, quiet, and one fresh process
    in twelve halved its team at its first call and kept one thread for some 100 ms)."""
    global _sample_time, _sample_cpu, _sample_switches
    cdef long long switches
    cdef double cpu
    _sample_time = -1e300
    if fo_preemptions(&switches, &cpu):
        _sample_cpu, _sample_switches = cpu, switches


cdef inline bint _wants_growth(int cap, int full, double rate) noexcept nogil:
    return rate < _quiet_rate and cap < full


cdef inline int _adapt(int cap, int full, double rate, int runnable, int online) noexcept nogil:
    """The next load cap: halve on a busy window; one more thread on a quiet one if a CPU is
    free for it (`runnable`, the caller included, + 1 <= `online`; -1: unknown, grow)."""
    if rate > _busy_rate:
        return cap // 2 if cap > 1 else 1
    if _wants_growth(cap, full, rate):
        if runnable < 0 or online < 0 or runnable + 1 <= online:
            return cap + 1
        return cap
    return cap if cap <= full else full


cdef int _runnable() noexcept nogil:
    global _last_runnable
    _last_runnable = fo_runnable_threads() if _runnable_probe == -2 else _runnable_probe
    return _last_runnable


cdef int load_cap() noexcept nogil:
    """The default team's current cap, sampled at most once per window. Python threads may
    race here: the state is a few scalars and a lost update only delays a decision."""
    global _load_cap, _sample_time, _sample_cpu, _sample_switches, _last_rate
    cdef double now = fo_monotonic_seconds(), cpu
    cdef long long switches
    if now - _sample_time < _window_s:
        return _load_cap
    _sample_time = now
    if not fo_preemptions(&switches, &cpu):
        return _load_cap
    if cpu - _sample_cpu >= _min_cpu_s and cpu > _sample_cpu:  # else keep the baseline
        _last_rate = (switches - _sample_switches) / (cpu - _sample_cpu)
        _load_cap = _adapt(_load_cap, _default_threads, _last_rate,
                           _runnable() if _wants_growth(_load_cap, _default_threads, _last_rate)
                           else -1, _online_cpus)
        _sample_cpu = cpu
        _sample_switches = switches
    return _load_cap


cdef inline int configured_threads() noexcept nogil:
    if not FO_OPENMP:
        return 1
    cdef int n = _user_threads if _user_threads > 0 else _default_threads
    cdef int limit = fo_max_threads()
    if limit < _omp_baseline and limit < n:
        n = limit
    return n if n > 0 else 1


cdef inline int current_threads() noexcept nogil:
    """Threads the next kernel call may use: the setting, and the load cap when unset."""
    cdef int n = configured_threads()
    if _load_adaptive and _user_threads == 0 and n > 1:
        n = min(n, load_cap())
    return n


def get_num_threads():
    """Number of threads kernel calls may use (1 in a build without OpenMP).

    The setting (:func:`set_num_threads`, or the default). Under the default, a call may
    use fewer while this process's threads are being preempted (another busy process, or
    another spinning thread pool): :func:`fastopt.kernels.last_threads_used` tells what a
    call used, ``fastopt.show_config()`` the policy.

    Examples
    --------
    >>> import fastopt
    >>> with fastopt.threads(1):
    ...     fastopt.get_num_threads()
    1
    """
    return configured_threads()


def _load_state():
    """The load cap's state (for show_config and tests)."""
    return {"adaptive": bool(_load_adaptive), "cap": _load_cap, "full": _default_threads,
            "rate": None if _last_rate < 0 else _last_rate, "window_s": _window_s,
            "busy_rate": _busy_rate, "quiet_rate": _quiet_rate,
            "runnable": None if _last_runnable < 0 else _last_runnable,
            "online_cpus": None if _online_cpus < 0 else _online_cpus,
            "window_cpu_s": _sample_cpu, "window_switches": _sample_switches}


def _load_adapt(int cap, int full, double rate, int runnable=-1, int online=-1):
    """The load cap's rule (tests)."""
    return _adapt(cap, full, rate, runnable, online)


def _runnable_threads():
    """Runnable threads on the system now, the caller included (None: unknown)."""
    n = fo_runnable_threads()
    return None if n < 0 else n


def _set_runnable_probe(int value):
    """Make the load cap see `value` runnable threads (tests; -2: the system's); returns
    the old setting."""
    global _runnable_probe
    old = _runnable_probe
    _runnable_probe = value
    return old


def _set_load_tuning(double window_s, double min_cpu_s, double busy_rate, double quiet_rate):
    """Change the load cap's constants (tests and benchmarks) and start a fresh window;
    returns the old constants."""
    global _window_s, _min_cpu_s, _busy_rate, _quiet_rate
    old = (_window_s, _min_cpu_s, _busy_rate, _quiet_rate)
    _window_s, _min_cpu_s, _busy_rate, _quiet_rate = window_s, min_cpu_s, busy_rate, quiet_rate
    _start_load_window()
    return old


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

    See Also
    --------
    fastopt.threads : the same setting for a ``with`` block, restored on exit.

    Examples
    --------
    >>> import fastopt
    >>> fastopt.set_num_threads(1)
    >>> fastopt.get_num_threads()
    1
    >>> fastopt.set_num_threads(None)   # back to the default
    >>> fastopt.set_num_threads(0)
    Traceback (most recent call last):
    ...
    ValueError: n: expected a positive or negative thread count, got 0
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
    """Threads a kernel over `total_elements` elements would use now (serial threshold applied).

    Examples
    --------
    >>> from fastopt.kernels import planned_threads
    >>> planned_threads(10)          # below the serial threshold: one thread
    1
    """
    if isinstance(total_elements, (bool, np.bool_)) or not isinstance(
            total_elements, (int, np.integer)):
        raise TypeError(f"total_elements: expected an int, got {type(total_elements).__name__}")
    if total_elements < 0:
        raise ValueError(f"total_elements: expected a count >= 0, got {total_elements}")
    return fo_team_size(<long long>min(int(total_elements), 1 << 62), current_threads())
