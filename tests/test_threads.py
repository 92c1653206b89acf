"""Thread policy: get/set_num_threads, threads(), OMP_NUM_THREADS and threadpoolctl."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastopt
from fastopt import _kernels

OPENMP = _kernels.build_info()["openmp"]
needs_openmp = pytest.mark.skipif(not OPENMP, reason="build without OpenMP")


def test_default_is_positive_and_capped_by_max():
    n = fastopt.get_num_threads()
    assert 1 <= n <= max(1, _kernels._max_threads())


@needs_openmp
def test_set_get_and_negative_counts():
    mx = _kernels._max_threads()
    fastopt.set_num_threads(1)
    assert fastopt.get_num_threads() == 1
    fastopt.set_num_threads(-1)
    assert fastopt.get_num_threads() == mx
    if mx >= 2:
        fastopt.set_num_threads(-2)
        assert fastopt.get_num_threads() == mx - 1
    fastopt.set_num_threads(None)
    assert fastopt.get_num_threads() >= 1


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (1.5, TypeError), ("2", TypeError),
                                      (True, TypeError), (-10_000, ValueError)])
def test_bad_thread_counts(bad, exc):
    before = fastopt.get_num_threads()
    with pytest.raises(exc, match="n"):
        fastopt.set_num_threads(bad)
    assert fastopt.get_num_threads() == before


def test_context_manager_restores():
    fastopt.set_num_threads(None)
    before = fastopt.get_num_threads()
    with fastopt.threads(1):
        assert fastopt.get_num_threads() == 1
    assert fastopt.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with fastopt.threads(1):
            raise RuntimeError("boom")
    assert fastopt.get_num_threads() == before


@needs_openmp
def test_threadpoolctl_sees_and_limits_fastopt():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    info = threadpoolctl.threadpool_info()
    assert any(i["internal_api"] == "openmp" for i in info)
    fastopt.set_num_threads(None)
    before = fastopt.get_num_threads()
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastopt.get_num_threads() == 1
        ps = [np.zeros(100_000, np.float32) for _ in range(4)]
        fastopt.kernels.sgd_step(ps, [np.ones(100_000, np.float32)] * 4, lr=1.0)
        assert fastopt.kernels.last_threads_used() == 1
    assert fastopt.get_num_threads() == before


@needs_openmp
def test_omp_num_threads_is_respected():
    code = "import fastopt; print(fastopt.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "1"


def test_planned_threads_follows_serial_threshold():
    below = _kernels.build_info()["serial_below"]
    assert fastopt.kernels.planned_threads(below - 1) == 1
    with fastopt.threads(1):
        assert fastopt.kernels.planned_threads(10 * below) == 1


# -- the default thread policy (issue 12): libgomp's wait policy and the load cap ---------

POLICY_PROBE = (
    "import os, sys, hashlib, numpy as np, fastopt\n"
    "from fastopt._config import thread_policy\n"
    "pol = thread_policy()\n"
    "rng = np.random.default_rng(3)\n"
    "ps = [rng.standard_normal(n).astype(np.float32) for n in (70_001, 9)]\n"
    "opt = fastopt.Adam(ps, lr=1e-2)\n"
    "for _ in range(3):\n"
    "    opt.step([rng.standard_normal(p.shape).astype(np.float32) for p in ps])\n"
    "print(repr((os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'),\n"
    "            pol['wait_policy'], pol['wait_source'], pol['load_cap'],\n"
    "            hashlib.sha256(b''.join(p.tobytes() for p in ps)).hexdigest())))\n")


# Makes importlib.util.find_spec("torch") answer None in the probe: torch looks absent.
NO_TORCH = "import sys\nsys.modules['torch'] = None\n"


def _probe(env_extra, pre_import=""):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMP_", "GOMP_", "FASTOPT_LOAD"))}
    env.update(env_extra)
    src = os.path.dirname(os.path.dirname(fastopt.__file__))
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", pre_import + POLICY_PROBE], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return eval(out.stdout.strip().splitlines()[-1]), out.stderr


@needs_openmp
def test_default_sets_a_short_spin_for_its_runtime_only():
    # OMP_DISPLAY_ENV makes libgomp print the settings it loaded with.
    # (as without torch: an installed torch sharing the runtime leaves libgomp's default)
    (spin, wait, policy, source, cap, _), err = _probe({"OMP_DISPLAY_ENV": "VERBOSE"},
                                                       pre_import=NO_TORCH)
    from fastopt._wait_policy import SPIN_COUNT

    assert f"GOMP_SPINCOUNT = '{SPIN_COUNT}'" in err
    assert spin is None and wait is None  # removed again: children and later libraries
    assert policy.startswith(f"GOMP_SPINCOUNT={SPIN_COUNT}")
    assert "fastopt's default" in source
    assert cap is not None


@needs_openmp
@pytest.mark.parametrize("env", [{"GOMP_SPINCOUNT": "123"}, {"OMP_WAIT_POLICY": "PASSIVE"},
                                 {"OMP_WAIT_POLICY": "active", "GOMP_SPINCOUNT": "7"}])
def test_a_users_wait_setting_is_never_overridden(env):
    (spin, wait, policy, source, _, _), err = _probe({**env, "OMP_DISPLAY_ENV": "VERBOSE"})
    assert (spin, wait) == (env.get("GOMP_SPINCOUNT"), env.get("OMP_WAIT_POLICY"))
    assert "your environment" in source
    for k, v in env.items():
        assert f"{k}={v}" in policy
    if "GOMP_SPINCOUNT" in env:
        assert f"GOMP_SPINCOUNT = '{env['GOMP_SPINCOUNT']}'" in err
    else:  # PASSIVE: libgomp's own spin count for that policy, not fastopt's
        assert "GOMP_SPINCOUNT = '0'" in err


@needs_openmp
def test_policy_not_applied_is_reported_when_the_runtime_was_loaded_first():
    # another library's libgomp.so.1 loaded before fastopt (torch's would be, were torch
    # installed: then fastopt sets nothing anyway, next test)
    pre = NO_TORCH + "import ctypes\nctypes.CDLL('libgomp.so.1')\n"
    (_, _, policy, source, _, _), _ = _probe({}, pre_import=pre)
    assert "NOT applied" in source and policy.startswith("libgomp's default")


@needs_openmp
def test_nothing_is_set_when_an_installed_torch_shares_the_runtime():
    from fastopt import _wait_policy

    if not _wait_policy.torch_shares_runtime():
        pytest.skip("no installed torch shares fastopt's OpenMP runtime")
    for pre in ("", "import torch\n"):  # imported after fastopt or before it
        (spin, wait, policy, source, _, _), err = _probe({"OMP_DISPLAY_ENV": "VERBOSE"},
                                                         pre_import=pre)
        assert (spin, wait) == (None, None)
        assert policy.startswith("libgomp's default") and "fastopt sets nothing" in source
        assert "GOMP_SPINCOUNT = '300000'" in err


@pytest.mark.parametrize("files, shares", [
    (["libgomp.so.1", "libtorch_cpu.so"], True),          # torch's wheels: the same name
    (["libgomp-a34b3233.so.1", "libtorch_cpu.so"], False),  # a private copy
    (["libtorch_cpu.so"], True),                          # links the system's runtime
    (None, False)])                                       # torch not installed
def test_torch_shares_runtime_reads_torchs_lib_folder(tmp_path, monkeypatch, files, shares):
    from types import SimpleNamespace

    from fastopt import _wait_policy

    (tmp_path / "lib").mkdir()
    for name in files or ():
        (tmp_path / "lib" / name).write_bytes(b"")
    spec = None if files is None else SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(_wait_policy.importlib.util, "find_spec",
                        lambda name: spec if name == "torch" else None)
    assert _wait_policy.torch_shares_runtime() is shares


@needs_openmp
@pytest.mark.parametrize("env, cap_on", [({}, True), ({"FASTOPT_LOAD_ADAPTIVE": "0"}, False),
                                         ({"OMP_NUM_THREADS": "2"}, False)])
def test_load_cap_is_on_by_default_and_can_be_turned_off(env, cap_on):
    if _kernels._max_threads() < 2 and not env:
        pytest.skip("one thread: nothing to cap")
    (_, _, _, _, cap, _), _ = _probe(env)
    assert (cap is not None) == cap_on


@needs_openmp
def test_results_are_bitwise_identical_under_every_policy():
    digests = {name: _probe(env)[0][-1] for name, env in {
        "default": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
        "spin0": {"GOMP_SPINCOUNT": "0"}, "no load cap": {"FASTOPT_LOAD_ADAPTIVE": "0"},
        "one thread": {"OMP_NUM_THREADS": "1"}}.items()}
    assert len(set(digests.values())) == 1, digests


def test_show_config_reports_the_policy(capsys):
    fastopt.show_config()
    out = capsys.readouterr().out
    for key in ("threads_source", "load_source", "wait_policy", "wait_source"):
        assert key in out
    from fastopt._config import thread_policy

    pol = thread_policy()
    assert pol["wait_policy"] in out and pol["threads"] == fastopt.get_num_threads()
    if OPENMP:
        assert pol["summary"].endswith(pol["wait_policy"])


@pytest.mark.parametrize("cap, rate, expected", [
    (2, 500.0, 1), (1, 500.0, 1), (8, 500.0, 4),     # busy: halve, never below 1
    (1, 0.0, 2), (2, 0.0, 2), (3, 10.0, 4),           # quiet: one more, up to the full team
    (1, 50.0, 1), (2, 50.0, 2)])                      # in between: keep
def test_load_cap_rule(cap, rate, expected):
    full = 2 if cap <= 2 else 8
    assert _kernels._load_adapt(cap, full, rate) == expected


@pytest.mark.parametrize("cap, runnable, online, expected", [
    (1, 1, 2, 2),     # only the caller runs on 2 CPUs: grow
    (1, 2, 2, 1),     # another process holds the second CPU: stay (no oscillation)
    (1, 5, 2, 1),
    (3, 5, 8, 4),     # 3 CPUs free: grow by one
    (3, 8, 8, 3),
    (1, -1, 2, 2),    # unknown: grow, as before the check existed
    (1, 2, -1, 2)])
def test_load_cap_grows_only_into_a_free_cpu(cap, runnable, online, expected):
    full = 2 if online == 2 or online < 0 else 8
    assert _kernels._load_adapt(cap, full, 0.0, runnable, online) == expected
    # a busy window halves whatever the system looks like
    assert _kernels._load_adapt(cap, full, 1e9, runnable, online) == max(1, cap // 2)


def test_runnable_threads_counts_at_least_the_caller():
    n = _kernels._runnable_threads()
    if n is None:
        pytest.skip("no /proc/loadavg here")
    assert n >= 1


def _burn_until(predicate, seconds=5.0):
    import time

    p = np.zeros(200_000, np.float32)
    g = np.ones_like(p)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        fastopt.kernels.sgd_step(p, g, lr=1e-9)
        if predicate():
            return True
    return False


@needs_openmp
def test_load_cap_follows_the_signal_and_spares_explicit_counts():
    if not _kernels._load_state()["adaptive"]:
        pytest.skip("load cap off in this process (OMP_NUM_THREADS or FASTOPT_LOAD_ADAPTIVE)")
    full = _kernels._load_state()["full"]
    n = 10 * _kernels.build_info()["serial_below"]
    fastopt.set_num_threads(None)
    old = _kernels._set_load_tuning(0.0, 0.0, -1.0, -2.0)  # every window counts as busy
    try:
        assert _burn_until(lambda: _kernels._load_state()["cap"] == 1)
        assert fastopt.kernels.planned_threads(n) == 1
        assert fastopt.get_num_threads() == full          # the setting is unchanged
        with fastopt.threads(full):                       # explicit: never capped
            assert fastopt.kernels.planned_threads(n) == full
        _kernels._set_load_tuning(0.0, 0.0, 1e300, 1e300)  # every window counts as quiet
        old_probe = _kernels._set_runnable_probe(10**6)     # ...but no CPU is free
        assert not _burn_until(lambda: _kernels._load_state()["cap"] > 1, seconds=0.3)
        _kernels._set_runnable_probe(1)                     # only this process runs
        assert _burn_until(lambda: _kernels._load_state()["cap"] == full)
        assert fastopt.kernels.planned_threads(n) == full
    finally:
        _kernels._set_load_tuning(*old)
        _kernels._set_runnable_probe(old_probe if "old_probe" in locals() else -2)


LOAD_WINDOW_PROBE = """
import resource, sys
before = resource.getrusage(resource.RUSAGE_SELF)
sum(i * i for i in range(300_000))  # CPU time the interpreter spends before the import
before = resource.getrusage(resource.RUSAGE_SELF)
from fastopt import _kernels
state = _kernels._load_state()
print(before.ru_utime + before.ru_stime, before.ru_nivcsw, state["window_cpu_s"],
      state["window_switches"])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="getrusage's counters: Linux")
def test_load_window_starts_at_import_not_at_process_start():
    # The preemptions of the interpreter's start and of the imports are not the load the
    # first kernel call meets: counted from the process's start they halved the team of
    # some quiet fresh processes at their first call.
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "FASTOPT_LOAD_ADAPTIVE")}
    out = subprocess.run([sys.executable, "-c", LOAD_WINDOW_PROBE], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    cpu_before, switches_before, window_cpu, window_switches = map(float, out.stdout.split())
    assert window_cpu >= cpu_before > 0
    assert window_switches >= switches_before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="getrusage's counters: Linux")
def test_new_load_tuning_starts_a_fresh_window():
    first = _kernels._load_state()["window_cpu_s"]
    sum(i * i for i in range(300_000))
    old = _kernels._set_load_tuning(_kernels.LOAD_WINDOW_S, _kernels.LOAD_MIN_CPU_S,
                                    _kernels.LOAD_BUSY_RATE, _kernels.LOAD_QUIET_RATE)
    try:
        assert _kernels._load_state()["window_cpu_s"] > first
    finally:
        _kernels._set_load_tuning(*old)
