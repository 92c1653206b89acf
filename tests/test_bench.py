"""python -m fastopt bench: the CLI, its JSON report, its errors and its numpy references."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import fastopt
from fastopt import bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--quick", "--repeats", "2", "--target", "0.0005", "--gap", "0", "--no-progress"]

RESULT_KEYS = {"kernel", "case", "tensors", "shape", "elements", "dtype", "minimal_bytes",
               "times_s", "bandwidth_gbs", "effective_gbs", "elements_per_s", "ratios",
               "spread", "median_s", "fastest_s", "noise", "notes"}
TIME_KEYS = {"fastopt", "fastopt_class", "numpy", "torch", "torch_fused", "copy", "triad",
             "limit"}
RATIO_KEYS = {"vs_numpy", "vs_torch", "vs_torch_fused", "fraction_of_bandwidth",
              "class_vs_torch_fused"}


def _positive_finite(x):
    return isinstance(x, float) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def cli_report(tmp_path_factory):
    """One real `python -m fastopt bench` run in a subprocess (without torch: importing it
    twice would double this file's time; torch columns are checked in process below)."""
    out = tmp_path_factory.mktemp("bench") / "report.json"
    cmd = [sys.executable, "-m", "fastopt", "bench", *TINY, "--only", "sgd", "--no-torch",
           "--sizes", "2000,40000,3x500", "--json", str(out), "--threads", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(fastopt.__file__)))
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text())


def test_cli_writes_json_with_documented_keys(cli_report):
    proc, report = cli_report
    assert report["schema"] == "fastopt-bench/1"
    assert {"created", "machine", "versions", "settings", "results", "skipped"} <= set(report)
    assert {"cpu", "physical_cores", "logical_cpus", "platform", "loadavg"} <= set(
        report["machine"])
    assert report["versions"]["fastopt"] == fastopt.__version__
    assert report["versions"]["numpy"] == np.__version__
    s = report["settings"]
    assert s["threads"] == 1 and s["repeats"] == 2 and s["quick"] is True
    assert s["only"] == ["sgd"] and s["dtype"] == "float32"
    assert [r["case"] for r in report["results"]] == ["2000", "40000", "3x500"]
    for r in report["results"]:
        assert RESULT_KEYS <= set(r), RESULT_KEYS - set(r)
        assert TIME_KEYS <= set(r["times_s"]) and RATIO_KEYS <= set(r["ratios"])
        assert r["kernel"] == "sgd"
        assert r["minimal_bytes"] == 5 * 4 * r["elements"]
    assert report["results"][2]["tensors"] == 3 and report["results"][2]["shape"] == [500]
    for r in report["results"]:  # --stat median (the default): times are the medians
        assert r["times_s"]["fastopt"] == r["median_s"]["fastopt"]
        assert r["fastest_s"]["fastopt"] <= r["median_s"]["fastopt"]


def test_ratios_and_times_are_positive_finite(cli_report):
    _, report = cli_report
    for r in report["results"]:
        for key in ("fastopt", "numpy", "copy", "triad", "limit"):
            assert _positive_finite(r["times_s"][key]), (key, r["times_s"][key])
        for key in ("bandwidth_gbs", "effective_gbs", "elements_per_s"):
            assert _positive_finite(r[key])
        assert _positive_finite(r["ratios"]["vs_numpy"])
        assert _positive_finite(r["ratios"]["fraction_of_bandwidth"])
        for key, value in r["ratios"].items():  # torch ratios exist only with torch
            assert value is None or _positive_finite(value), key
        assert r["ratios"]["vs_torch"] is None and r["times_s"]["torch"] is None
    assert report["versions"]["torch"] is None and report["settings"]["torch"] is False


def test_torch_columns_when_torch_is_importable():
    pytest.importorskip("torch")
    report = bench.run(["sgd", "adam"], threads=1, repeats=2, target=0.0005, gap=0.0,
                       sizes=["3000", "2x500"], progress=False)
    assert report["versions"]["torch"]
    assert len(report["results"]) == 4
    for r in report["results"]:
        for key in ("vs_torch", "vs_torch_fused", "class_vs_torch_fused"):
            assert _positive_finite(r["ratios"][key]), (r["kernel"], key)
    json.dumps(report)  # serialisable as it is


def test_stat_min_uses_the_fastest_repeat():
    report = bench.run(["sgd"], threads=1, repeats=3, target=0.0005, gap=0.0, use_torch=False,
                       sizes=["1000"], progress=False, stat="min")
    r = report["results"][0]
    assert report["settings"]["stat"] == "min"
    assert r["times_s"]["numpy"] == r["fastest_s"]["numpy"] <= r["median_s"]["numpy"]
    assert "fastest of 3" in bench.format_table(report)


def test_table_and_progress(cli_report):
    proc, report = cli_report
    out = proc.stdout
    assert "fastopt bench" in out and "machine:" in out and "threads: 1" in out
    assert "BLAS pinned to 1 thread" in out or "NOT pinned" in out
    assert f"numpy {np.__version__}" in out
    rows = [line for line in out.splitlines() if line.startswith("sgd ")]
    assert len(rows) == 3


def test_progress_counter_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    bar = bench._Progress(2, True)
    bar.step("sgd 1e4")
    bar.step("sgd 1e6")
    bar.close()
    assert capsys.readouterr().err.splitlines() == ["[1/2] sgd 1e4", "[2/2] sgd 1e6"]


def test_unknown_only_name_exits_2_with_message(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--only", "adam,nosuchkernel"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--only" in err and "'nosuchkernel'" in err and "sgd" in err


def test_unknown_only_name_through_python_m():
    proc = subprocess.run([sys.executable, "-m", "fastopt", "bench", "--only", "bogus"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown kernel name(s) 'bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, words", [(["--threads", "0"], "--threads"),
                                         (["--repeats", "0"], "--repeats"),
                                         (["--sizes", "abc"], "--sizes"),
                                         (["--only", ","], "--only")])
def test_bad_arguments_exit_2(args, words, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(args)
    assert exc.value.code == 2
    assert words in capsys.readouterr().err


def test_unavailable_kernel_is_skipped_with_a_note(monkeypatch):
    def missing(label, ctx):
        raise bench.Unavailable("fastopt.kernels.nothing_step is not in this installation")

    entry = bench.KernelEntry("ghost", "optim", ["1e3"], missing, "not built")
    monkeypatch.setitem(bench.KERNELS, "ghost", entry)
    report = bench.run(["ghost", "sgd"], threads=1, repeats=1, target=0.0005, gap=0.0,
                       use_torch=False, sizes=["1000"], progress=False)
    assert report["skipped"] == [{"kernel": "ghost", "case": "1000",
                                  "reason": "fastopt.kernels.nothing_step is not in this "
                                            "installation"}]
    assert [r["kernel"] for r in report["results"]] == ["sgd"]
    assert report["results"][0]["times_s"]["torch"] is None
    table = bench.format_table(report)
    assert "skipped ghost 1000: fastopt.kernels.nothing_step" in table
    assert "torch disabled" in table


def test_every_registered_kernel_runs_or_skips_cleanly():
    """Each registry entry either measures or reports why not (never an exception)."""
    report = bench.run(None, threads=1, repeats=1, target=0.0002, gap=0.0, use_torch=False,
                       sizes=["600", "2x300"], progress=False)
    done = {(r["kernel"], r["case"]) for r in report["results"]}
    skipped = {(s["kernel"], s["case"]) for s in report["skipped"]}
    assert done | skipped == {(k, c) for k in bench.KERNELS for c in ("600", "2x300")}
    assert not done & skipped
    assert ("sgd", "600") in done
    for s in report["skipped"]:
        assert s["reason"]


def test_minimal_bytes_table_matches_the_asv_suite():
    path = os.path.join(ROOT, "benchmarks", "common.py")
    if not os.path.exists(path):
        pytest.skip("benchmarks/ not in this checkout")
    spec = importlib.util.spec_from_file_location("_asv_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.MINIMAL_BYTES == bench.MINIMAL_BYTES


def test_size_parsing():
    assert bench.parse_optimizer_size("1e6") == bench.Layout("1e6", 1, (1_000_000,))
    lay = bench.parse_optimizer_size("2000x64x64")
    assert (lay.tensors, lay.shape, lay.elements) == (2000, (64, 64), 2000 * 4096)
    assert bench.parse_array_size("1024x4096").shape == (1024, 4096)
    assert bench.parse_array_size("1e6", 2).elements == 1_000_000


# -- the numpy references compute the same update as the libraries they stand in for --

def _torch_reference_step(torch, name, p0, g, steps):
    spec = bench.OPTIMIZERS[name]
    tp = torch.tensor(p0.copy())
    tp.grad = torch.tensor(g)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # NAdam's mu_product in double, as the others'
    try:
        opt = getattr(torch.optim, spec.torch_class)([tp], **spec.torch_kwargs)
        for _ in range(steps):
            opt.step()
    finally:
        torch.set_default_dtype(before)
    return tp.numpy()


@pytest.mark.parametrize("name", list(bench.OPTIMIZERS))
def test_numpy_reference_matches_torch(name, rng):
    torch = pytest.importorskip("torch")
    spec = bench.OPTIMIZERS[name]
    if spec.torch_class is None:
        pytest.skip(f"torch.optim has no {spec.fo_class}")
    p0 = rng.standard_normal(257)
    g = rng.standard_normal(257)
    p = p0.copy()
    states = [np.zeros_like(p) for _ in spec.states]
    scratch = [np.empty_like(p) for _ in range(spec.scratch)]
    for step in range(1, 4):
        spec.numpy_step(p, g, states, scratch, step, spec.hyper)
    np.testing.assert_allclose(p, _torch_reference_step(torch, name, p0, g, 3),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(bench.OPTIMIZERS))
def test_numpy_reference_matches_fastopt_kernel(name, rng):
    spec = bench.OPTIMIZERS[name]
    try:
        call = bench._fastopt_optimizer_call(spec)
    except bench.Unavailable as exc:
        pytest.skip(str(exc))
    p0 = rng.standard_normal(257)
    g = rng.standard_normal(257)
    p, states = p0.copy(), [np.zeros_like(p0) for _ in spec.states]
    q, qstates = p0.copy(), [np.zeros_like(p0) for _ in spec.states]
    scratch = [np.empty_like(p0) for _ in range(spec.scratch)]
    for step in range(1, 4):
        call(p, g, states, step)
        spec.numpy_step(q, g, qstates, scratch, step, spec.hyper)
    np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-12)


def test_numpy_two_loop_matches_fastopt_kernel():
    two_loop = getattr(fastopt._kernels, "lbfgs_two_loop", None)
    if two_loop is None:
        pytest.skip("fastopt._kernels.lbfgs_two_loop is not in this build")
    n, m = 1000, bench.LBFGS_MEMORY
    g, S, Y, rho, gamma = bench.lbfgs_problem(n, np.dtype(np.float64), m)
    q, tmp, alpha = np.empty(n), np.empty(n), np.empty(m)
    bench._np_two_loop(g, S, Y, rho, gamma, q, tmp, alpha)
    np.testing.assert_allclose(two_loop(g, S, Y, rho, gamma, m, m - 1), q, rtol=1e-10,
                               atol=1e-12)


# -- DeepSpeedCPUAdam column (optional) ------------------------------------------------


def test_deepspeed_column_off_or_without_torch_is_skipped_with_a_reason():
    assert bench.deepspeed_cpu_adam("off", object()) == (None, "deepspeed off (--deepspeed off)")
    cls, note = bench.deepspeed_cpu_adam("auto", None)
    assert cls is None and "needs torch" in note


def test_deepspeed_not_installed_is_a_note(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "deepspeed" else real(name, *a))
    cls, note = bench.deepspeed_cpu_adam("auto", object())
    assert cls is None and "not installed" in note


def test_deepspeed_column_when_its_op_is_built():
    torch = pytest.importorskip("torch")
    cls, note = bench.deepspeed_cpu_adam("auto", torch)
    if cls is None:
        pytest.skip(note)
    report = bench.run(["adam"], threads=1, repeats=1, target=0.0005, gap=0.0,
                       sizes=["3000", "2x500"], progress=False)
    assert report["versions"]["deepspeed"]
    for r in report["results"]:
        assert _positive_finite(r["times_s"]["deepspeed"])
        assert _positive_finite(r["ratios"]["vs_deepspeed"])
    header = next(line for line in bench.format_table(report).splitlines()
                  if line.startswith("kernel"))
    assert "deepspeed" in header and "x ds" in header
    # same update as fastopt's Adam (DeepSpeed's fp32 op may differ in the last bits)
    p0 = np.linspace(-1, 1, 3000, dtype=np.float32)
    g = np.cos(np.arange(3000, dtype=np.float32))
    tp = torch.from_numpy(p0.copy())
    tp.grad = torch.from_numpy(g)
    opt = cls([tp], lr=1e-2)
    p = p0.copy()
    ref = fastopt.Adam([p], lr=1e-2)
    for _ in range(3):
        opt.step()
        ref.step([g])
    np.testing.assert_allclose(tp.numpy(), p, rtol=1e-5, atol=1e-6)


def test_table_has_no_deepspeed_column_without_it(cli_report):
    proc, _ = cli_report  # --only sgd: no Adam, so no DeepSpeedCPUAdam column
    header = next(line for line in proc.stdout.splitlines() if line.startswith("kernel"))
    assert "deepspeed" not in header and "x ds" not in header


# -- the loop scenario -------------------------------------------------------------------


def test_numpy_adam_of_the_loop_matches_fastopt(rng):
    from fastopt.bench_loop import NumpyAdam

    ps = [rng.standard_normal(s).astype(np.float32) for s in (100, (7, 3))]
    qs = [p.copy() for p in ps]
    a, b = NumpyAdam(ps, lr=1e-2), fastopt.Adam(qs, lr=1e-2)
    for _ in range(4):
        gs = [rng.standard_normal(p.shape).astype(np.float32) for p in ps]
        a.step(gs)
        b.step(gs)
    for p, q in zip(ps, qs):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)


def test_mlp_gradients_match_finite_differences():
    from fastopt.bench_loop import MLP

    model = MLP(batch=8, dtype=np.float64)
    model.loss_and_grads()
    grads = [g.copy() for g in model.grads]
    for which, idx in ((3, (4,)), (2, (5, 1)), (1, (17,)), (0, (300, 17))):
        p = model.params[which]
        old = p[idx]
        losses = []
        for delta in (1e-6, -1e-6):
            p[idx] = old + delta
            model.count = 0
            losses.append(model.loss_and_grads())
        p[idx] = old
        assert (losses[0] - losses[1]) / 2e-6 == pytest.approx(grads[which][idx], rel=1e-4,
                                                               abs=1e-9)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_background_load_is_stopped_on_an_exception():
    from fastopt.bench_loop import background_load

    with pytest.raises(KeyboardInterrupt):
        with background_load(1, 60) as pids:
            assert len(pids) == 1 and _alive(pids[0])
            raise KeyboardInterrupt
    assert not _alive(pids[0])


def test_background_load_stops_by_itself():
    from fastopt.bench_loop import _SPIN

    proc = subprocess.run([sys.executable, "-c", _SPIN, "0.3"], timeout=30)
    assert proc.returncode == 0


def test_loop_scenario_reports_both_conditions():
    from fastopt.bench_loop import format_loop, run_loop

    report = run_loop(repeats=1, steps=1, busy=True, max_load_seconds=30)
    assert set(report["conditions"]) == {"quiet", "busy"}
    for c in report["conditions"].values():
        assert set(c["times_s"]) == {"numpy", "fastopt", "fastopt_threads1"}
        for t in c["times_s"].values():
            assert _positive_finite(t["median"]) and 0 < t["optimizer"] < t["median"]
        assert all(_positive_finite(r) for r in c["ratios"].values())
    assert report["policy"]["wait_policy"]
    for c in report["conditions"].values():
        assert c["repeats_done"] == 1
        for name, (q1, q3) in c["ratio_quartiles"].items():
            assert q1 <= c["ratios"][name] <= q3
        t = c["times_s"]
        assert c["ratios"]["fastopt"] == pytest.approx(
            t["numpy"]["samples"][0] / t["fastopt"]["samples"][0])
        assert c["default_vs_best"]["median"] == pytest.approx(
            t["fastopt"]["samples"][0] / t["fastopt_threads1"]["samples"][0])
        assert t["fastopt_threads1"]["threads_used"] == [1]
        assert len(t["fastopt"]["threads_used"]) == 1 and "threads_used" not in t["numpy"]
    table = format_loop(report)
    assert "busy (+1 busy process)" in table and "x fastopt" in table
    assert "busy: default within 1.2x of threads(1): " in table


def test_paired_ratio_takes_the_median_of_per_repeat_ratios():
    from fastopt.bench_loop import paired_ratio

    # Both contenders jump between a fast and a slow mode together: the ratio of the two
    # medians (10 / 1.5 = 6.7) says nothing, the per-repeat ratios all say 2.
    num = [2.0, 2.0, 40.0, 2.0, 40.0]
    den = [1.0, 1.0, 20.0, 20.0 / 20.0, 20.0]
    r = paired_ratio(num, den)
    assert r == {"median": 2.0, "q1": 2.0, "q3": 2.0, "low": 2.0, "high": 2.0}
    r = paired_ratio([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)
    assert (r["q1"], r["median"], r["q3"]) == (2.0, 3.0, 4.0)
    assert (r["low"], r["high"]) == (1.0, 5.0)  # 5 repeats: no 95% interval narrower


def test_median_interval_matches_the_binomial_order_statistics():
    from scipy import stats

    from fastopt.bench_loop import median_interval

    for n in (6, 9, 31, 100):
        values = [float(v) for v in range(1, n + 1)]
        low, high = median_interval(values)
        k = int(low)
        assert high == n + 1 - k
        # k is the largest order statistic whose lower tail stays within 2.5%
        assert stats.binom.cdf(k - 1, n, 0.5) <= 0.025 or k == 1
        assert stats.binom.cdf(k, n, 0.5) > 0.025
    assert median_interval([float(v) for v in range(1, 32)]) == (10.0, 22.0)
    # it narrows as repeats are added, where the quartiles would not
    wide = median_interval([float(v % 10) for v in range(20)])
    narrow = median_interval([float(v % 10) for v in range(200)])
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


@pytest.mark.parametrize("low, median, high, expected", [
    (0.9, 1.0, 1.1, "yes"), (0.9, 1.0, 1.2, "yes"), (1.3, 1.5, 2.0, "no"),
    (1.0, 1.1, 1.3, "undecided"), (1.1, 1.3, 1.4, "undecided")])
def test_verdict_is_decided_by_the_interval_of_the_median(low, median, high, expected):
    from fastopt.bench_loop import verdict

    # the quartiles (the spread of single repeats) do not enter the verdict
    ratio = {"median": median, "low": low, "high": high, "q1": 0.1, "q3": 9.0}
    assert verdict(ratio, 1.2).split()[0] == expected


def test_measure_loop_stops_at_its_time_bound_after_three_repeats():
    from fastopt.bench_loop import MLP, NumpyAdam, measure_loop

    built = MLP(batch=8)
    contenders = {"numpy": lambda: (built, NumpyAdam(built.params))}
    times = measure_loop(contenders, repeats=50, steps=1, max_seconds=0.0)
    assert len(times["numpy"]["samples"]) == 3
    times = measure_loop(contenders, repeats=4, steps=1, max_seconds=None)
    assert len(times["numpy"]["samples"]) == 4


def test_loop_scenario_cli_rejects_kernel_options(capsys):
    with pytest.raises(SystemExit) as exc:
        from fastopt.__main__ import main
        main(["bench", "--scenario", "loop", "--only", "adam"])
    assert exc.value.code == 2
    assert "--only" in capsys.readouterr().err


def test_rotated_orders_each_round_from_another_contender():
    from fastopt.bench_loop import rotated

    names = ["a", "b", "c"]
    assert [rotated(names, r) for r in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert rotated([], 3) == [] and rotated(("x",), 5) == ["x"]
    assert names == ["a", "b", "c"]        # the caller's list is not changed
