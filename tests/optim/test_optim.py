"""fastopt.optim classes: reference updates through param groups and schedules, per-parameter
steps, state_dict round trips (pickle, np.savez), skip_if_nonfinite, threads, bad input."""

import io
import json
import operator
import pickle
import threading

import numpy as np
import pytest

import fastopt
from fastopt import SGD, Adam
from fastopt_testing import optim_reference as ref

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
#: every optimizer class (each needs its cases in CASES)
CLASSES = {name: getattr(fastopt.optim, name) for name in fastopt.optim.__all__
           if name != "Optimizer"}


def halving(step):
    """A picklable schedule: lr(step) for the number of steps already taken."""
    return 0.05 * 0.5 ** (step // 10)


# (name, options) pairs covering each optimizer's code paths through the class layer.
CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, l1=1e-3, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), amsgrad=True, weight_decay=1e-2, l1=1e-3)),
    ("Adam", dict(lr=0.01, maximize=True, eps=1e-6)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True, l1=1e-3)),
    ("Adagrad", dict(lr=0.05)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.1, weight_decay=1e-2, initial_accumulator_value=0.3,
                     l1=1e-3, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=1e-2, eps=1e-3)),
    ("RMSprop", dict(lr=0.01, eps_in_sqrt=True, momentum=0.5, maximize=True, l1=1e-3)),
    ("Adadelta", dict(lr=1.0)),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=1e-2, l1=1e-3, maximize=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.9), momentum_decay=0.01, weight_decay=1e-2, l1=1e-3,
                   maximize=True)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Lion", dict(lr=1e-3)),
    ("Lion", dict(lr=1e-3, betas=(0.8, 0.95), weight_decay=0.1, l1=1e-3, maximize=True)),
]
assert {name for name, _ in CASES} == set(CLASSES), "every class needs its cases in CASES"
CASE_IDS = [f"{n}-" + "-".join(f"{k}={v}" for k, v in o.items() if k != "lr") for n, o in CASES]
SHAPES = [(5, 3), (17,), (2, 3, 4)]


def _params(rng, dtype, shapes=SHAPES):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _grads(rng, params):
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def _state_bytes(opt):
    return {i: {k: np.asarray(v).tobytes() for k, v in s.items()} for i, s in opt.state.items()}


def _opt_bytes(opt):
    params = [p.tobytes() for g in opt.param_groups for p in g["params"]]
    return params, _state_bytes(opt), [g["step"] for g in opt.param_groups]


@pytest.mark.parametrize("case", range(len(CASES)), ids=CASE_IDS)
def test_matches_reference_for_50_steps(case, dtype, rng):
    name, options = CASES[case]
    options = dict(options, lr=lambda step, lr=options["lr"]: lr / (1 + 0.05 * step))
    params = _params(rng, dtype)
    ref_params = [p.copy() for p in params]
    opt = CLASSES[name](params, **options)
    reference = ref.ReferenceOptimizer(name, ref_params, **options)
    for step in range(50):
        grads = _grads(rng, params)
        if step % 7 == 3:
            grads[1] = None  # skipped parameter: its state and step count stay put
        assert opt.step(grads) is True
        reference.step(grads)
    for p, r in zip(params, ref_params):
        np.testing.assert_allclose(p, r, rtol=RTOL[dtype], atol=0)
        assert p.dtype == dtype
    scalars = {s.name for s in CLASSES[name].family.scalars}
    for i, expect in enumerate(reference.state):
        for key, value in expect.items():
            np.testing.assert_allclose(opt.state[i][key], value, rtol=RTOL[dtype], atol=0)
            if key not in scalars:
                assert opt.state[i][key].dtype == dtype
        if "step" in scalars:
            assert int(opt.state[i]["step"]) == reference.steps[i]
    assert opt.param_groups[0]["step"] == 50


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_param_groups_and_mixed_dtypes(name, rng):
    ps32 = _params(rng, np.float32)
    ps64 = _params(rng, np.float64)
    base = dict(lr=0.01) if name != "Adadelta" else dict(lr=1.0)
    other = dict(lr=0.02, weight_decay=1e-2) if name != "Adadelta" else dict(lr=0.5, rho=0.7)
    groups = [{"params": [ps32[0], ps64[1]]}, {"params": [ps64[0], ps32[1], ps32[2]], **other}]
    opt = CLASSES[name](groups, **base)
    ref0 = ref.ReferenceOptimizer(name, [ps32[0].copy(), ps64[1].copy()], **base)
    ref1 = ref.ReferenceOptimizer(name, [ps64[0].copy(), ps32[1].copy(), ps32[2].copy()],
                                  **{**base, **other})
    for _ in range(20):
        grads = _grads(rng, [ps32[0], ps64[1], ps64[0], ps32[1], ps32[2]])
        opt.step(grads)
        ref0.step(grads[:2])
        ref1.step(grads[2:])
    for p, r in zip([ps32[0], ps64[1], ps64[0], ps32[1], ps32[2]], ref0.params + ref1.params):
        np.testing.assert_allclose(p, r, rtol=RTOL[p.dtype.type], atol=0)


def test_schedule_sees_the_number_of_steps_taken():
    seen = []

    def schedule(step):
        seen.append(step)
        return 0.1

    opt = Adam([np.zeros(3)], lr=schedule)
    for _ in range(3):
        opt.step([np.ones(3)])
    assert seen[-3:] == [0, 1, 2]


def test_lr_change_in_group_takes_effect(rng):
    p = np.zeros(4)
    opt = SGD([p], lr=0.1)
    opt.step([np.ones(4)])
    opt.param_groups[0]["lr"] = 1.0
    opt.step([np.ones(4)])
    np.testing.assert_array_equal(p, -1.1)


def test_first_update_of_a_late_parameter_uses_its_own_step(rng):
    # torch keeps a step count per parameter: a parameter first updated at step 5 gets the
    # bias correction of t = 1, not t = 5.
    a, b = np.zeros(3), np.zeros(3)
    opt = Adam([a, b], lr=0.1)
    for _ in range(4):
        opt.step([np.ones(3), None])
    assert "step" not in opt.state.get(1, {})
    opt.step([np.ones(3), np.ones(3)])
    assert int(opt.state[0]["step"]) == 5 and int(opt.state[1]["step"]) == 1
    np.testing.assert_allclose(b, -0.1, rtol=1e-7)  # t = 1: the step is lr * g / (|g| + eps)
    opt.step([np.ones(3), np.ones(3)])  # one C call with two different step numbers
    fresh = np.zeros(3)
    ref_opt = Adam([fresh], lr=0.1)
    ref_opt.step([np.ones(3)])
    ref_opt.step([np.ones(3)])
    assert b.tobytes() == fresh.tobytes()


# -- state_dict ----------------------------------------------------------------------------

def _make(name, dtype, rng, lr=None):
    """An optimizer class, two param groups over SHAPES and the options of the second (the
    richest) case of `name` in CASES."""
    options = dict(CASES[[n for n, _ in CASES].index(name) + 1][1])
    if lr is not None:
        options["lr"] = lr
    params = _params(rng, dtype)
    second_lr = 0.5 * options["lr"] if not callable(options["lr"]) else halving
    groups = [{"params": params[:1]}, {"params": params[1:], "lr": second_lr}]
    return CLASSES[name], groups, options


def _savez_roundtrip(sd):
    """The checkpoint through np.savez/np.load (arrays) and json (numbers, options)."""
    arrays, meta = {}, {"state": {}, "param_groups": sd["param_groups"]}
    for i, slots in sd["state"].items():
        meta["state"][str(i)] = []
        for key, value in slots.items():
            arrays[f"{i}.{key}"] = np.asarray(value)
            meta["state"][str(i)].append(key)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    loaded = np.load(buf)
    meta = json.loads(json.dumps(meta))
    state = {int(i): {k: loaded[f"{i}.{k}"] for k in keys} for i, keys in meta["state"].items()}
    groups = meta["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


@pytest.mark.parametrize("via", ["direct", "pickle", "savez"])
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_resume_from_state_dict_is_bitwise_identical(name, via, dtype, rng):
    cls, groups, options = _make(name, dtype, rng, lr=halving if via == "pickle" else None)
    opt = cls(groups, **options)
    grads = [_grads(rng, [p for g in groups for p in g["params"]]) for _ in range(16)]
    for k in range(8):
        opt.step(grads[k])
    sd = opt.state_dict()
    if via == "pickle":
        sd = pickle.loads(pickle.dumps(sd))
    elif via == "savez":
        sd = _savez_roundtrip(sd)
    saved_params = [p.copy() for g in groups for p in g["params"]]
    for k in range(8, 16):
        opt.step(grads[k])
    # a new optimizer over copies of the parameters as they were at the checkpoint
    groups2 = [{**g, "params": saved_params[:1]} if i == 0 else
               {**g, "params": saved_params[1:]} for i, g in enumerate(groups)]
    opt2 = cls(groups2, **{**options, "lr": 123.0} if via != "pickle" else options)
    opt2.load_state_dict(sd)
    for k in range(8, 16):
        opt2.step(grads[k])
    assert _opt_bytes(opt2) == _opt_bytes(opt)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_pickle_the_optimizer_itself(name, rng):
    cls, groups, options = _make(name, np.float64, rng, lr=halving)
    opt = cls(groups, **options)
    grads = _grads(rng, [p for g in groups for p in g["params"]])
    opt.step(grads)
    twin = pickle.loads(pickle.dumps(opt))
    opt.step(grads)
    twin.step(grads)
    assert _opt_bytes(opt) == _opt_bytes(twin)


def _mismatches(name):
    """(description, state_dict edit, expected words) for load_state_dict's checks."""
    def shape(sd):
        key = next(k for k in sd["state"][0] if k != "step")
        sd["state"][0][key] = np.zeros((2, 2))

    def dtype(sd):
        key = next(k for k in sd["state"][0] if k != "step")
        sd["state"][0][key] = sd["state"][0][key].astype(np.float32)

    def groups(sd):
        sd["param_groups"].append(dict(sd["param_groups"][0]))

    def count(sd):
        sd["param_groups"][1]["params"] = sd["param_groups"][1]["params"][:1]

    def missing(sd):
        key = next(k for k in sd["state"][0] if k != "step")
        del sd["state"][0][key]

    def unknown_param(sd):
        sd["state"][99] = dict(sd["state"][0])

    def bad_option(sd):
        sd["param_groups"][0]["lr"] = -1.0

    cases = [("shape", shape, "shape"), ("dtype", dtype, "dtype"),
             ("group count", groups, "param groups"), ("param count", count, "parameters"),
             ("unknown param", unknown_param, "99"), ("bad option", bad_option, "lr")]
    if name != "SGD":  # (an SGD state without its one array is an empty, i.e. fresh, state)
        cases.append(("missing state", missing, "lacks"))
        def step(sd):
            sd["state"][0]["step"] = -3
        cases.append(("negative step", step, "step"))
    return cases


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_load_state_dict_mismatch_is_a_clear_error_and_changes_nothing(name, rng):
    cls, groups, options = _make(name, np.float64, rng)
    opt = cls(groups, **options)
    grads = _grads(rng, [p for g in groups for p in g["params"]])
    opt.step(grads)
    for what, edit, words in _mismatches(name):
        sd = opt.state_dict()
        edit(sd)
        before = _opt_bytes(opt)
        options_before = [{k: v for k, v in g.items() if k != "params"}
                          for g in opt.param_groups]
        with pytest.raises(ValueError, match=words):
            opt.load_state_dict(sd)
        assert _opt_bytes(opt) == before, what
        assert [{k: v for k, v in g.items() if k != "params"}
                for g in opt.param_groups] == options_before, what
    with pytest.raises(TypeError):
        opt.load_state_dict([1, 2])


def test_state_dict_is_plain_numbers_and_copies(rng):
    p = np.zeros(3)
    opt = Adam([p], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    assert type(sd["state"][0]["step"]) is int and sd["state"][0]["step"] == 1
    assert type(sd["state"]) is dict and type(sd["state"][0]) is dict
    sd["state"][0]["exp_avg"][:] = 5
    assert not (opt.state[0]["exp_avg"] == 5).any()


def test_torch_style_float_step_loads():
    p = np.zeros(3)
    opt = Adam([p], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    sd["state"][0]["step"] = np.array(1.0)
    opt.load_state_dict(sd)
    assert int(opt.state[0]["step"]) == 1


# -- cached pointer tables stay correct ------------------------------------------------------

def test_replacing_a_state_array_is_seen_by_the_next_step():
    p = np.zeros(3)
    opt = Adam([p], lr=0.1)
    opt.step([np.ones(3)])
    opt.step([np.ones(3)])
    fresh = np.zeros(3)
    opt.state[0]["exp_avg"] = fresh
    opt.step([np.ones(3)])
    assert (fresh != 0).all()


def test_replacing_a_parameter_in_a_group_is_seen_by_the_next_step():
    p = np.zeros(3)
    opt = SGD([p], lr=1.0)
    opt.step([np.ones(3)])
    q = np.zeros(3)
    opt.param_groups[0]["params"][0] = q
    opt.step([np.ones(3)])
    assert (q == -1).all() and (p == -1).all()


def test_turning_amsgrad_on_later_allocates_its_state():
    p = np.zeros(3)
    opt = Adam([p], lr=0.1)
    opt.step([np.ones(3)])
    opt.param_groups[0]["amsgrad"] = True
    opt.step([np.ones(3)])
    assert "max_exp_avg_sq" in opt.state[0]


def test_state_setter_and_clear():
    p = np.zeros(3)
    opt = fastopt.RMSprop([p], lr=0.1, momentum=0.9)
    opt.step([np.ones(3)])
    opt.state = {}
    opt.step([np.ones(3)])
    assert int(opt.state[0]["step"]) == 1
    opt.state.clear()
    opt.step([np.ones(3)])
    assert int(opt.state[0]["step"]) == 1


# -- skip_if_nonfinite -----------------------------------------------------------------------

@pytest.mark.parametrize("first", [True, False], ids=["first-step", "later-step"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_skip_if_nonfinite_changes_nothing(name, bad, first, dtype, rng):
    cls, groups, options = _make(name, dtype, rng)
    opt = cls(groups, **options)
    params = [p for g in groups for p in g["params"]]
    twin = cls([{**g, "params": [p.copy() for p in g["params"]]} for g in groups], **options)
    if not first:
        for _ in range(3):
            grads = _grads(rng, params)
            opt.step(grads)
            twin.step(grads)
    before = _opt_bytes(opt)
    grads = _grads(rng, params)
    grads[-1][(0,) * grads[-1].ndim] = bad  # the last group's last gradient
    assert opt.step(grads, skip_if_nonfinite=True) is False
    assert _opt_bytes(opt) == before
    # the run goes on exactly as if the bad step had never been attempted
    grads = _grads(rng, params)
    assert opt.step(grads, skip_if_nonfinite=True) is True
    twin.step(grads)
    assert _opt_bytes(opt) == _opt_bytes(twin)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_nonfinite_propagates_by_default(name, rng):
    cls, groups, options = _make(name, np.float64, rng)
    opt = cls(groups, **options)
    params = [p for g in groups for p in g["params"]]
    grads = _grads(rng, params)
    grads[0][0, 0] = np.nan
    assert opt.step(grads) is True
    assert np.isnan(params[0][0, 0]) and np.isfinite(params[0].ravel()[1:]).all()


def test_skip_if_nonfinite_must_be_bool():
    opt = Adam([np.zeros(2)])
    with pytest.raises(TypeError, match="skip_if_nonfinite"):
        opt.step([np.ones(2)], skip_if_nonfinite="yes")


# -- threads ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CLASSES))
def test_one_and_two_threads_bitwise_identical_3e6(name, rng):
    shapes = [(1000, 1500), (1_000_001,), (499_999,)]  # 3e6 elements, odd splits
    base = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(2)]
    _, _, options = _make(name, np.float32, rng)
    results = []
    for threads in (1, 2):
        params = [p.copy() for p in base]
        opt = CLASSES[name](params, **options)
        with fastopt.threads(threads):
            for g in grads:
                opt.step(g)
        results.append(_opt_bytes(opt))
    assert results[0] == results[1]


def test_optimizers_in_several_python_threads_match_serial_runs(rng):
    names = ["Adam", "RMSprop", "Adagrad", "Adadelta", "SGD", "AdamW"]
    data = []
    for name in names:
        _, _, options = _make(name, np.float32, rng)
        params = [rng.standard_normal(200_000).astype(np.float32),
                  rng.standard_normal((30, 30)).astype(np.float32)]
        grads = [_grads(rng, params) for _ in range(5)]
        data.append((name, options, params, grads))

    def run(name, options, params, grads, out, k, barrier=None):
        ps = [p.copy() for p in params]
        opt = CLASSES[name](ps, **options)
        if barrier is not None:
            barrier.wait()
        for g in grads:
            opt.step(g)
        out[k] = _opt_bytes(opt)

    serial = [None] * len(data)
    for k, d in enumerate(data):
        run(*d, serial, k)
    concurrent = [None] * len(data)
    barrier = threading.Barrier(len(data))
    threads = [threading.Thread(target=run, args=(*d, concurrent, k, barrier))
               for k, d in enumerate(data)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert concurrent == serial


def test_step_while_another_thread_is_inside_step_raises():
    opt = Adam([np.zeros(3)], lr=0.1)
    opt._lock.acquire()  # as if another thread were inside step()
    try:
        with pytest.raises(RuntimeError, match="another thread"):
            opt.step([np.ones(3)])
    finally:
        opt._lock.release()
    assert opt.step([np.ones(3)]) is True


def test_same_optimizer_from_two_threads_never_crashes(rng):
    p = rng.standard_normal(300_000).astype(np.float32)
    opt = Adam([p], lr=1e-3)
    g = np.ones_like(p)
    done = [0, 0]
    refused = [0, 0]

    def hammer(k):
        for _ in range(60):
            try:
                opt.step([g])
                done[k] += 1
            except RuntimeError as err:
                assert "another thread" in str(err)
                refused[k] += 1

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(done) + sum(refused) == 120
    assert int(opt.state[0]["step"]) == sum(done) == opt.param_groups[0]["step"]
    assert np.isfinite(p).all()


# -- bad input ---------------------------------------------------------------------------------

BAD_OPTIONS = [
    ("Adam", dict(lr=-1.0), ValueError, "lr"),
    ("Adam", dict(betas=(0.9, 1.0)), ValueError, "beta2"),
    ("Adam", dict(betas=(-0.1, 0.9)), ValueError, "beta1"),
    ("Adam", dict(betas=0.9), TypeError, "betas"),
    ("Adam", dict(eps=0.0), ValueError, "eps"),
    ("AdamW", dict(weight_decay=-1e-2), ValueError, "weight_decay"),
    ("Adam", dict(amsgrad=1), TypeError, "amsgrad"),
    ("Adagrad", dict(lr_decay=-1.0), ValueError, "lr_decay"),
    ("Adagrad", dict(initial_accumulator_value=-1.0), ValueError, "initial_accumulator"),
    ("Adagrad", dict(eps=-1e-10), ValueError, "eps"),
    ("RMSprop", dict(alpha=1.5), ValueError, "alpha"),
    ("RMSprop", dict(momentum=-0.5), ValueError, "momentum"),
    ("RMSprop", dict(eps_in_sqrt="no"), TypeError, "eps_in_sqrt"),
    ("Adadelta", dict(rho=-0.1), ValueError, "rho"),
    ("Adadelta", dict(l1=float("nan")), ValueError, "l1"),
    ("SGD", dict(nesterov=True), ValueError, "nesterov"),
    ("NAdam", dict(momentum_decay=-1e-3), ValueError, "^momentum_decay"),
    ("NAdam", dict(decoupled_weight_decay=0), TypeError, "^decoupled_weight_decay"),
    ("NAdam", dict(betas=(0.9, 1.0)), ValueError, "^beta2"),
    ("Lion", dict(betas=(0.9, 1.5)), ValueError, "^beta2"),
    ("Lion", dict(weight_decay=float("inf")), ValueError, "^weight_decay"),
]


@pytest.mark.parametrize("case", BAD_OPTIONS, ids=lambda c: f"{c[0]}-{list(c[1])[0]}")
def test_bad_options_raise_naming_the_option(case):
    name, options, exc, words = case
    with pytest.raises(exc, match=words):
        CLASSES[name]([np.zeros(3)], **options)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_bad_gradients_raise_and_modify_nothing(name, rng):
    cls, groups, options = _make(name, np.float64, rng)
    opt = cls(groups, **options)
    params = [p for g in groups for p in g["params"]]
    opt.step(_grads(rng, params))
    before = _opt_bytes(opt)
    good = _grads(rng, params)
    cases = [
        (good[:-1], ValueError, "expected 3 gradients"),
        (good[:2] + [np.ones(5)], ValueError, r"grads\[2\]"),
        (good[:2] + [good[2].astype(np.float32)], TypeError, r"grads\[2\]"),
        (good[:2] + ["x"], TypeError, r"grads\[2\]"),
        ([params[0]] + good[1:], ValueError, "shares memory"),
        ([None, good[1], np.ones(5)], ValueError, r"grads\[2\]"),
    ]
    for grads, exc, words in cases:
        with pytest.raises(exc, match=words):
            opt.step(grads)
        assert _opt_bytes(opt) == before


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_a_bad_schedule_in_the_second_group_leaves_the_first_untouched(name, rng):
    cls, groups, options = _make(name, np.float64, rng)
    groups[1]["lr"] = lambda step: -1.0 if step >= 1 else 0.1
    opt = cls(groups, **options)
    params = [p for g in groups for p in g["params"]]
    opt.step(_grads(rng, params))
    before = _opt_bytes(opt)
    with pytest.raises(ValueError, match="lr"):
        opt.step(_grads(rng, params))
    assert _opt_bytes(opt) == before


def test_params_must_be_writeable_contiguous_and_distinct():
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        Adam([ro])
    with pytest.raises(ValueError, match="contiguous"):
        Adam([np.zeros(6)[::2]])
    p = np.zeros(4)
    with pytest.raises(ValueError, match="shares memory"):
        Adam([p[:2], p[1:]])
    with pytest.raises(ValueError, match="more than one group"):
        Adam([{"params": [p]}, {"params": [p]}])
    with pytest.raises(TypeError, match="float32 or float64"):
        Adam([np.zeros(3, np.int64)])


def test_a_fastopt_schedule_as_lr_resumes_through_pickle(rng):
    from fastopt import schedules

    sched = schedules.warmup(schedules.cosine(0.05, T_max=20), 5)
    params = [rng.standard_normal(6) for _ in range(2)]
    copies = [p.copy() for p in params]
    grads = [_grads(rng, params) for _ in range(12)]
    opt = Adam(params, lr=sched)
    for g in grads[:6]:
        opt.step(g)
    sd = pickle.loads(pickle.dumps(opt.state_dict()))
    mid = [p.copy() for p in params]
    for g in grads[6:]:
        opt.step(g)
    twin = Adam(mid, lr=0.1)
    twin.load_state_dict(sd)
    for g in grads[6:]:
        twin.step(g)
    assert _opt_bytes(twin) == _opt_bytes(opt)
    reference = ref.ReferenceOptimizer("Adam", copies, lr=sched)
    for g in grads:
        reference.step(g)
    for p, r in zip(params, reference.params):
        np.testing.assert_allclose(p, r, rtol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_a_grad_overlapping_any_param_or_state_is_refused(seed):
    # StepPlan.bind looks each grad up among the sorted written spans (first where the
    # slot's grad was at the last bind, else a binary search); against a brute-force answer
    # over views of one buffer, in scrambled order, each slot's grad moving between binds
    rng = np.random.default_rng(seed)
    n = 40
    buf = np.zeros(4 * n * 6)
    pieces = [buf[6 * k:6 * k + 6] for k in rng.permutation(4 * n)]
    params = pieces[:n]
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step(pieces[n:2 * n])  # momentum buffers allocated: params and buffers are written
    written = [(a.__array_interface__["data"][0], a.nbytes) for a in params] + \
        [(st["momentum_buffer"].__array_interface__["data"][0], st["momentum_buffer"].nbytes)
         for st in opt.state.values()]
    outcomes = set()
    for _ in range(30):
        start = int(rng.integers(0, buf.size - 6))
        g = buf[start:start + 6]
        addr, size = g.__array_interface__["data"][0], g.nbytes
        clash = any(a < addr + size and addr < a + s for a, s in written)
        grads = list(pieces[n:2 * n])
        k = int(rng.integers(n))
        grads[k] = g
        before = buf.copy()
        outcomes.add(clash)
        if clash:
            with pytest.raises(ValueError, match=rf"^grads\[{k}\]: shares memory"):
                opt.step(grads)
            np.testing.assert_array_equal(buf, before)
        else:
            opt.step(grads)
    assert outcomes == {True, False}


def test_same_prefix_is_the_identity_test_of_the_common_prefix():
    from fastopt._kernels import same_prefix

    a, b, c = np.zeros(1), np.zeros(1), np.zeros(1)
    cases = [([a, b], [a, b]), ([a, b, c], [a, b]), ([a], [a, b]), ([b, a], [a, b]),
             ([], [a]), ([a, c], [a, b])]
    for container, snapshot in cases:
        expected = all(map(operator.is_, container, snapshot))
        assert same_prefix(container, snapshot) is expected
        view = {i: x for i, x in enumerate(container)}.values()
        assert same_prefix(view, snapshot) is expected
        assert same_prefix(tuple(container), snapshot) is expected
