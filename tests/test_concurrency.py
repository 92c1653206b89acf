"""Threads and processes: concurrent optimizers, shared optimizers, fork and spawn pools.

fastopt releases the GIL in every kernel, so Python threads really run kernels (each with
its own OpenMP team) at the same time. They must give the same bytes as running the same
work one after the other. Process pools must never hang: libgomp's thread pool does not
survive fork (see fastopt._config), so forked children run serially.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastopt
from fastopt import _kernels
from fastopt_testing.fuzz_harness import cached, fuzz_settings, native_copy, valid_calls
from fastopt_testing.fuzz_specs import KERNELS, OPTIMIZERS

OPENMP = _kernels.build_info()["openmp"]
OPTIMIZER = {s.name: s for s in OPTIMIZERS}
KERNEL = {s.name: s for s in KERNELS}
SIZES = (70_001, 40_000, 9, 0)  # two that use an OpenMP team of 2, two that do not


def _problem(seed, spec):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(np.float32 if k % 2 else np.float64)
              for k, n in enumerate(SIZES)]
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in params]
             for _ in range(4)]
    return params, grads


def _run(spec, params, grads):
    opt = spec.cls(params, **spec.example)
    for g in grads:
        opt.step(g)
    return opt


def _state_arrays(opt):
    return [a for i in sorted(opt.state) for _, a in sorted(opt.state[i].items())
            if isinstance(a, np.ndarray)]


def _concurrently(functions):
    """Run the functions in threads released together by a barrier; re-raise any error."""
    barrier = threading.Barrier(len(functions))
    errors, results = [], [None] * len(functions)

    def target(k):
        try:
            barrier.wait()
            results[k] = functions[k]()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(k,)) for k in range(len(functions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a thread did not finish in 120 s"
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("name", list(OPTIMIZER))
@pytest.mark.parametrize("nthreads", [1, 2])
def test_threads_stepping_their_own_optimizers_match_sequential(name, nthreads):
    spec = OPTIMIZER[name]
    problems = [_problem(seed, spec) for seed in range(4)]
    with fastopt.threads(nthreads):
        sequential = [_run(spec, [p.copy() for p in ps], gs) for ps, gs in problems]
        copies = [[p.copy() for p in ps] for ps, _ in problems]
        concurrent = _concurrently([lambda ps=ps, gs=gs: _run(spec, ps, gs)
                                    for ps, (_, gs) in zip(copies, problems)])
    for k, (a, b) in enumerate(zip(sequential, concurrent)):
        for x, y in zip([p for g in a.param_groups for p in g["params"]] + _state_arrays(a),
                        [p for g in b.param_groups for p in g["params"]] + _state_arrays(b)):
            assert x.tobytes() == y.tobytes(), f"{name}: problem {k} differs when concurrent"


@pytest.mark.parametrize("name", list(KERNEL))
@fuzz_settings(0.1)
@given(data=st.data())
def test_kernel_calls_from_threads_match_sequential(name, data):
    spec = KERNEL[name]
    calls = [data.draw(cached(valid_calls, spec, large=True, layouts=False, special_rate=0.0))
             for _ in range(3)]
    originals = [{k: (v if v is None else [native_copy(t) for t in
                                          (v if c.multi else [v])])
                  for k, v in c.arrays.items()} for c in calls]

    def fresh(c, orig):
        arrays = {k: (None if v is None else (list(v) if c.multi else v[0]))
                  for k, v in {k: (None if v is None else [t.copy() for t in v])
                               for k, v in orig.items()}.items()}
        return type(c)(c.spec, arrays, c.hypers, c.multi, c.count)

    one_by_one = [fresh(c, o) for c, o in zip(calls, originals)]
    together = [fresh(c, o) for c, o in zip(calls, originals)]
    with fastopt.threads(2):
        r1 = [c.invoke() for c in one_by_one]
        r2 = _concurrently([c.invoke for c in together])
    for a, b in zip(one_by_one, together):
        for x, y in zip(a.all_arrays(), b.all_arrays()):
            assert x.tobytes() == y.tobytes()
    assert _canon(r1) == _canon(r2)


def _canon(value):
    """A comparable form of a kernel's return value: array bytes, object attributes."""
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_canon(v) for v in value)
    slots = getattr(type(value), "__slots__", None)
    if slots:
        return (type(value).__name__,) + tuple(_canon(getattr(value, s)) for s in slots)
    return repr(value)


@pytest.mark.parametrize("name", list(OPTIMIZER))
def test_two_threads_stepping_one_optimizer_never_corrupt_it(name):
    """Two threads calling step() on the same optimizer: each call either raises
    RuntimeError (another thread is inside step) or applies a whole step; the result is
    exactly as many sequential steps as succeeded."""
    spec = OPTIMIZER[name]
    if "RuntimeError" not in (spec.cls.step.__doc__ or ""):
        pytest.skip("this Optimizer does not detect concurrent step() calls")
    rng = np.random.default_rng(7)
    p0 = rng.standard_normal(300_000).astype(np.float32)
    g = rng.standard_normal(p0.shape).astype(np.float32)
    params = [p0.copy()]
    opt = spec.cls(params, **spec.example)
    opt.step([g])  # state exists: later steps take the same path
    counts = {"ok": 0, "busy": 0}
    lock = threading.Lock()

    def hammer():
        for _ in range(40):
            try:
                opt.step([g])
                key = "ok"
            except RuntimeError as exc:
                assert "another thread" in str(exc)
                key = "busy"
            with lock:
                counts[key] += 1

    with fastopt.threads(2):
        _concurrently([hammer, hammer])
        assert counts["ok"] + counts["busy"] == 80
        ref = spec.cls([p0.copy()], **spec.example)
        for _ in range(1 + counts["ok"]):
            ref.step([g])
    assert params[0].tobytes() == ref.param_groups[0]["params"][0].tobytes()
    assert opt.param_groups[0]["step"] == 1 + counts["ok"]


# -- processes -----------------------------------------------------------------------------

WORKER = textwrap.dedent('''
    import multiprocessing as mp
    import sys
    import numpy as np
    import fastopt

    N = 150_000

    def work(seed, threads=None):
        if threads is not None:
            fastopt.set_num_threads(threads)
        rng = np.random.default_rng(seed)
        params = [rng.standard_normal(n).astype(np.float32) for n in (N, 999)]  # one C call
        opt = fastopt.SGD(params, lr=0.01, momentum=0.9)
        for _ in range(3):
            opt.step([rng.standard_normal(p.shape).astype(p.dtype) for p in params])
        return (fastopt.get_num_threads(), fastopt.kernels.last_threads_used(),
                b"".join(p.tobytes() for p in params),
                fastopt._config.thread_policy()["wait_source"].split(" (")[0].split(":")[0])

    if __name__ == "__main__":
        method, parent_threads, child_threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        child_threads = None if child_threads == "default" else int(child_threads)
        expected = []
        with fastopt.threads(parent_threads):
            for seed in range(4):
                expected.append(work(seed)[2])
            print("parent team", fastopt.kernels.last_threads_used(), flush=True)
        ctx = mp.get_context(method)
        with ctx.Pool(2) as pool:
            results = pool.starmap(work, [(seed, child_threads) for seed in range(4)])
        assert [r[2] for r in results] == expected, "a child computed different bytes"
        print("children", sorted(set((r[0], r[1]) for r in results)), flush=True)
        print("child wait policy", sorted(set(r[3] for r in results)), flush=True)
''')


def _run_script(tmp_path, args, timeout=90):
    """Run the worker script in its own session; kill the whole group if it hangs."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastopt.__file__)), env.get("PYTHONPATH", "")])
    env.pop("OMP_NUM_THREADS", None)
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        env.pop(name, None)
    # The load cap would let a busy test machine shrink a default team to 1: the team
    # sizes asserted here are the policy's setting, so measure them without it.
    env["FASTOPT_LOAD_ADAPTIVE"] = "0"
    proc = subprocess.Popen([sys.executable, str(script), *map(str, args)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the process pool hung (killed after {timeout} s): {args}\n{out}")
    assert proc.returncode == 0, out
    return out


def _line(out, prefix):
    return next(line for line in out.splitlines() if line.startswith(prefix))


def _default_wait_policy_line():
    """What the worker prints for a runtime loaded under fastopt's default wait policy:
    its short spin, or nothing set where an installed torch shares the runtime."""
    from fastopt import _wait_policy

    source = ("fastopt sets nothing" if _wait_policy.torch_shares_runtime()
              else "fastopt's default")
    return f"child wait policy {[source]}"


needs_two = pytest.mark.skipif(not OPENMP or _kernels._max_threads() < 2,
                               reason="needs an OpenMP build with 2 threads")


@needs_two
def test_fork_pool_after_the_parent_used_two_threads_does_not_hang(tmp_path):
    out = _run_script(tmp_path, ["fork", 2, "default"])
    assert _line(out, "parent team") == "parent team 2"
    # forked children run serially (libgomp's team does not survive fork), same bytes
    assert _line(out, "children") == "children [(1, 1)]"
    # and keep the parent's runtime, loaded with fastopt's wait policy
    assert _line(out, "child wait policy") == _default_wait_policy_line()


@needs_two
def test_fork_child_may_opt_in_to_threads_when_the_parent_never_used_a_team(tmp_path):
    out = _run_script(tmp_path, ["fork", 1, 2])
    assert _line(out, "parent team") == "parent team 1"
    assert _line(out, "children") == "children [(2, 2)]"


@needs_two
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_pools_use_threads(tmp_path, method):
    out = _run_script(tmp_path, [method, 2, "default"])
    assert _line(out, "parent team") == "parent team 2"
    assert _line(out, "children") == "children [(2, 2)]"
    # a fresh interpreter: its runtime loads with fastopt's wait policy again
    assert _line(out, "child wait policy") == _default_wait_policy_line()


def test_fork_pool_without_openmp_threads_works(tmp_path):
    out = _run_script(tmp_path, ["fork", 1, "default"])
    assert _line(out, "children") == "children [(1, 1)]"


def test_os_fork_child_starts_serial():
    if not hasattr(os, "fork"):
        pytest.skip("no os.fork")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the thread count and leave at once
        try:
            os.write(write, str(fastopt.get_num_threads()).encode())
        finally:
            os._exit(0)
    os.close(write)
    got = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert got == "1"
