"""Runtime configuration: thread count, build facts, include directory.

Processes and threads
---------------------
fastopt's kernels release the GIL, so Python threads may step *their own* optimizers (or
call kernels on their own arrays) concurrently; the results are the same bytes as running
them one after the other. One optimizer must not be stepped by two threads at once.

``fork`` and OpenMP: GNU libgomp (GCC's OpenMP runtime) is not fork-safe. Once a process
has run a parallel region with two or more threads, a child created by ``fork`` that opens
a parallel region with two or more threads waits forever for the parent's worker threads,
which do not exist in the child (checked with GCC 12's libgomp; see GCC bug 60035). This is
what ``multiprocessing`` does by default on Linux before Python 3.14, and what
``multiprocessing.Pool``/``ProcessPoolExecutor``/joblib's "multiprocessing" backend do with
the "fork" start method.

fastopt therefore makes every child created by ``os.fork()`` run its kernels on one thread
(as if it had called ``set_num_threads(1)``): the child cannot hang in fastopt, and its
results are the same bits (every kernel gives the same result for any thread count). To
use several threads in worker processes:

- start them with the "spawn" or "forkserver" method
  (``multiprocessing.get_context("forkserver").Pool(...)``, joblib's default loky backend):
  they start with fastopt's normal thread policy; or
- call ``fastopt.set_num_threads(n)`` in the forked child yourself -- safe only if the
  parent never ran a multi-threaded OpenMP region (from fastopt or any other library using
  libgomp, such as scikit-learn), otherwise that child hangs.

Another library's OpenMP code running in a forked child is not covered by this (its own
thread setting applies); ``OMP_NUM_THREADS=1`` in the child's environment, or
threadpoolctl's ``threadpool_limits(1)`` in the child, covers it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator

import numpy as np

from fastopt import _kernels

__all__ = ["get_num_threads", "set_num_threads", "threads", "show_config", "get_include",
           "get_library_dir"]


def _physical_cores() -> int:
    """Physical cores this process may run on (hyper-thread siblings counted once)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        path = f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
        try:
            with open(path) as f:
                cores.add(f.read().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


#: FASTOPT_LOAD_ADAPTIVE=0 turns the default team's load cap off (README, Configuration).
LOAD_ADAPTIVE_VARIABLE = "FASTOPT_LOAD_ADAPTIVE"

_kernels._init_thread_policy(_physical_cores(), "OMP_NUM_THREADS" in os.environ,
                             os.environ.get(LOAD_ADAPTIVE_VARIABLE, "1").strip() != "0")


def thread_policy() -> dict:
    """The thread policy in force and why: team size and the OpenMP runtime's waiting.

    Keys: ``threads`` (the setting), ``threads_source``, ``load_cap`` (the default team's
    cap now, or None when it is not load-adapted), ``load_source``, ``wait_policy``,
    ``wait_source`` and ``summary`` (one line).
    """
    from fastopt import _wait_policy

    openmp = bool(_kernels.build_info()["openmp"])
    user = _kernels._get_user_threads()
    threads = get_num_threads()
    load = _kernels._load_state()
    if not openmp:
        source = "build without OpenMP"
    elif user:
        source = "set_num_threads()/threads() in this process"
    elif "OMP_NUM_THREADS" in os.environ:
        source = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    else:
        source = "default: one per physical core"
    if load["adaptive"] and not user:
        cap = load["cap"]
        rate = load["rate"]
        load_source = (f"default team capped at {cap} while this process's threads are "
                       "preempted often ("
                       + ("no rate measured yet" if rate is None
                          else f"now {rate:.0f} preemptions per CPU-second")
                       + "; halves above "
                       f"{load['busy_rate']:.0f}, grows below {load['quiet_rate']:.0f} "
                       "while the system has a CPU free"
                       + ("" if load["runnable"] is None else
                          f": {load['runnable']} runnable on {load['online_cpus']} at the "
                          "last look")
                       + "); "
                       f"{LOAD_ADAPTIVE_VARIABLE}=0 or an explicit thread count turns it off")
    else:
        cap = None
        if not openmp or threads <= 1:
            load_source = "off (one thread)"
        elif user or "OMP_NUM_THREADS" in os.environ:
            load_source = "off (explicit thread count)"
        elif os.environ.get(LOAD_ADAPTIVE_VARIABLE, "1").strip() == "0":
            load_source = f"off ({LOAD_ADAPTIVE_VARIABLE}=0)"
        else:
            load_source = "off (no load signal on this platform)"
    wait = _wait_policy.describe(openmp)
    summary = (f"{threads if cap is None else f'{cap} of {threads}'} thread(s), "
               f"load cap {'on' if cap is not None else 'off'}, wait {wait['wait_policy']}")
    return {"threads": threads, "threads_source": source, "load_cap": cap,
            "load_source": load_source, "wait_policy": wait["wait_policy"],
            "wait_source": wait["source"], "summary": summary}


def _serial_after_fork() -> None:
    """In a child made by os.fork(): one thread (libgomp's pool does not survive a fork)."""
    _kernels._set_user_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_serial_after_fork)

get_num_threads = _kernels.get_num_threads
set_num_threads = _kernels.set_num_threads


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Context manager: run the enclosed kernel calls with `n` threads, then restore.

    ``with fastopt.threads(1): opt.step(grads)``. The setting is process-wide (not per
    Python thread).

    Parameters
    ----------
    n : int or None
        Thread count, as :func:`set_num_threads` takes it (None: OpenMP's maximum; a
        negative n counts back from it).

    Examples
    --------
    >>> import fastopt
    >>> before = fastopt.get_num_threads()
    >>> with fastopt.threads(1):
    ...     fastopt.get_num_threads()
    1
    >>> fastopt.get_num_threads() == before
    True
    """
    previous = _kernels._get_user_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        _kernels._set_user_threads(previous)


def get_include() -> str:
    """Directory holding fastopt's C headers (``fastopt.h`` and the headers it includes).

    C code adds this directory to its include path (``python -m fastopt config --cflags``
    prints the flag). Cython code finds ``fastopt/_kernels.pxd`` through the installed
    package itself (``cimport fastopt._kernels``).

    Returns
    -------
    str
        The directory: ``fastopt/include`` of an installed package, or the source tree's
        ``csrc`` for an in-place build.

    Examples
    --------
    >>> import os
    >>> import fastopt
    >>> os.path.isfile(os.path.join(fastopt.get_include(), "fastopt.h"))
    True
    """
    here = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(here, "include")
    if os.path.isfile(os.path.join(installed, "fastopt.h")):
        return installed
    # editable/in-place builds: src/fastopt/ -> the checkout's csrc/
    source_tree = os.path.join(os.path.dirname(os.path.dirname(here)), "csrc")
    if os.path.isfile(os.path.join(source_tree, "fastopt.h")):
        return source_tree
    raise FileNotFoundError("fastopt's C headers are not installed with this copy")


def get_library_dir() -> str:
    """Directory holding fastopt's kernels as a static C library, and ``pkgconfig/fastopt.pc``.

    The library (``libfastopt.a``; ``fastopt.lib`` with MSVC) holds the same kernel objects
    as ``fastopt._kernels``, built with the same flags, position-independent and free of
    Python. Built with OpenMP (see ``show_config()``), a program that links it must link
    the OpenMP runtime too (``-fopenmp`` with GCC); ``python -m fastopt config --libs``
    prints every flag, and ``fastopt.pc`` holds the same for pkg-config. A build with
    ``FASTOPT_NO_OPENMP=1`` gives a serial library that needs no OpenMP.

    Returns
    -------
    str
        The directory: ``fastopt/lib`` of the installed package (or of an in-place build).

    Raises
    ------
    FileNotFoundError
        If this copy of fastopt has no static library (an in-place build from before it
        existed: rebuild with ``python setup.py build_ext --inplace``).

    Examples
    --------
    >>> import os
    >>> import fastopt
    >>> os.path.isfile(os.path.join(fastopt.get_library_dir(), "pkgconfig", "fastopt.pc"))
    True
    """
    lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
    for name in ("libfastopt.a", "fastopt.lib"):
        if os.path.isfile(os.path.join(lib, name)):
            return lib
    raise FileNotFoundError(
        "fastopt's static library is not built in this copy "
        "(`python setup.py build_ext --inplace` builds it into src/fastopt/lib)")


def config_dict() -> dict:
    """The facts show_config() prints, as a dict."""
    from fastopt import __version__

    info = _kernels.build_info()
    return {
        "fastopt": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "openmp": info["openmp"],
        "openmp_runtime": _openmp_runtime(),
        "max_threads": _kernels._max_threads(),
        "threads_now": get_num_threads(),
        **{f"thread_{k}" if not k.startswith(("threads", "load", "wait")) else k: v
           for k, v in thread_policy().items() if k not in ("threads", "summary")},
        "physical_cores": _physical_cores(),
        "serial_below_elements": info["serial_below"],
        "compiler": info["compiler"],
        "simd_clones": info["simd_clones"],
        "simd_target": info["simd_target"],
    }


def _openmp_runtime() -> str:
    """Name of the OpenMP library loaded into this process (e.g. libgomp), if any."""
    try:
        with open(f"/proc/{os.getpid()}/maps") as f:
            maps = f.read()
    except OSError:
        return "unknown"
    for name in ("libgomp", "libiomp5", "libomp"):
        if name in maps:
            for line in maps.splitlines():
                if name in line:
                    return os.path.basename(line.split()[-1])
    return "none"


def show_config() -> None:
    """Print fastopt's version, OpenMP status, threads, the thread policy in force and why,
    compiler and SIMD target.

    ``python -m fastopt config`` prints the same.

    Examples
    --------
    >>> import fastopt
    >>> fastopt.show_config()  # doctest: +NORMALIZE_WHITESPACE, +ELLIPSIS
    fastopt: ...
    python: ...
    numpy: ...
    openmp: ...
    """
    for key, value in config_dict().items():
        print(f"{key:>22}: {value}")


