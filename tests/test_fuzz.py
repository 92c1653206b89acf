"""Property-based fuzzing of every public kernel and optimizer class (see fuzz_harness.py).

For each entry of fuzz_specs.KERNELS and fuzz_specs.OPTIMIZERS: valid inputs match the
numpy reference; every invalid array or hyperparameter raises TypeError/ValueError whose
message starts with the argument's name; a raising call changes no byte of any array (nor
an optimizer's state); a kernel call big enough for an OpenMP team gives the same bits
with 1 and 2 threads.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastopt
from fastopt import _kernels
from fastopt_testing.fuzz_harness import (
    LAYOUTS,
    NAN,
    Snapshot,
    _assert_close,
    _written_corruptions,
    assert_names,
    broken_array_calls,
    broken_hyper_calls,
    cached,
    canonical,
    fuzz_settings,
    hyper_values,
    native_copy,
    relayout,
    run_broken,
    run_valid,
    state_bytes,
    valid_calls,
)
from fastopt_testing.fuzz_specs import KERNELS, OPTIMIZERS

# Parametrized by name (hypothesis prints the arguments of a falsifying example; a name
# is readable, a spec is not).
KERNEL = {s.name: s for s in KERNELS}
OPTIMIZER = {s.name: s for s in OPTIMIZERS}
kernel_specs = pytest.mark.parametrize("name", list(KERNEL))
optimizer_specs = pytest.mark.parametrize("name", list(OPTIMIZER))


# -- kernels -------------------------------------------------------------------------------


def _draw(data, factory, name, **kwargs):
    """One example of factory(KERNEL[name], **kwargs) (the strategy is built once)."""
    return data.draw(cached(factory, KERNEL[name], **kwargs), label=factory.__name__)


@kernel_specs
@fuzz_settings(2.0)
@given(data=st.data())
def test_kernel_valid_inputs_match_reference(name, data):
    run_valid(_draw(data, valid_calls, name))


@kernel_specs
@fuzz_settings(2.0)
@given(data=st.data())
def test_kernel_invalid_arrays_raise_and_modify_nothing(name, data):
    if not KERNEL[name].args:
        pytest.skip(f"{name} has no array arguments")
    run_broken(_draw(data, broken_array_calls, name))


@kernel_specs
@fuzz_settings(1.0)
@given(data=st.data())
def test_kernel_invalid_hyperparameters_raise_and_modify_nothing(name, data):
    if not KERNEL[name].hypers and not KERNEL[name].invalid_combos:
        pytest.skip(f"{name} has no hyperparameters")
    run_broken(_draw(data, broken_hyper_calls, name))


@kernel_specs
@pytest.mark.skipif(not _kernels.build_info()["openmp"] or _kernels._max_threads() < 2,
                    reason="needs OpenMP and 2 threads")
@fuzz_settings(0.1)
@given(data=st.data())
def test_kernel_one_and_two_threads_give_the_same_bits(name, data):
    """A call of spec.large_shape (above the serial threshold), on its own copies of the
    arrays with 1 and with 2 threads: every array and the result, bit for bit."""
    call = _draw(data, valid_calls, name, large=True, layouts=False)
    outcomes = []
    for threads in (1, 2):
        c = call.copy()
        with fastopt.threads(threads):
            result = c.invoke()
        outcomes.append((canonical(result), [a.tobytes() for a in c.all_arrays()]))
    assert outcomes[0] == outcomes[1], f"{name}: 1 and 2 threads differ"


# -- optimizer classes ---------------------------------------------------------------------


def _params(draw, rng, count):
    shapes = st.sampled_from([(), (0,), (1,), (3,), (2, 3), (4, 1, 2), (17,)])
    return [rng.uniform(-2, 2, draw(shapes)).astype(draw(st.sampled_from([np.float32,
                                                                           np.float64])))
            for _ in range(count)]


@st.composite
def optimizer_setups(draw, spec):
    """(constructor args, reference groups, flat params): 1-2 groups of 1-2 params each."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ngroups = draw(st.integers(1, 2))
    groups, ref_groups = [], []
    defaults = draw(cached(hyper_values, spec))
    for k in range(ngroups):
        params = _params(draw, rng, draw(st.integers(1, 2)))
        opts = dict(defaults) if k == 0 else draw(cached(hyper_values, spec))
        if draw(st.booleans()):  # an lr schedule instead of a constant
            lr0 = float(opts["lr"])
            opts["lr"] = lambda step, lr0=lr0: lr0 / (1.0 + step)
        groups.append((params, opts))
        ref_groups.append(([p.copy() for p in params], opts))
    if ngroups == 1 and draw(st.booleans()):
        args = (groups[0][0], spec.kwargs(groups[0][1]))
    else:
        args = ([{"params": ps, **spec.kwargs(o)} for ps, o in groups], spec.kwargs(defaults))
    flat = [p for ps, _ in groups for p in ps]
    return args, ref_groups, flat, defaults


def _grads(draw, rng, params, none_ok=True):
    out = []
    for p in params:
        if none_ok and draw(st.integers(0, 4)) == 0:
            out.append(None)
            continue
        g = rng.uniform(-3, 3, p.shape).astype(p.dtype)
        if g.size and draw(st.integers(0, 5)) == 0:
            g.flat[0] = draw(st.sampled_from([NAN, np.inf, -np.inf, 0.0]))
        out.append(relayout(g, draw(st.sampled_from(LAYOUTS))))
    return out


def _compare(spec, params, ref_params, what):
    for i, (p, r) in enumerate(zip(params, ref_params)):
        _assert_close(p, r, spec, f"{spec.name}: {what} param {i}")


def _optimizer_and_reference(spec, data):
    """A drawn optimizer setup: (optimizer, numpy reference, its params, the reference's
    params, a seeded generator for the gradients)."""
    (params_arg, kwargs), ref_groups, flat, _ = data.draw(cached(optimizer_setups, spec), label="setup")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    opt = spec.cls(params_arg, **kwargs)
    ref = spec.reference(ref_groups)
    ref_flat = [p for ps, _ in ref.groups for p in ps]
    return opt, ref, flat, ref_flat, rng


@optimizer_specs
@fuzz_settings(1.0)
@given(data=st.data())
def test_optimizer_matches_reference(name, data):
    spec = OPTIMIZER[name]
    opt, ref, flat, ref_flat, rng = _optimizer_and_reference(spec, data)
    for k in range(data.draw(st.integers(1, 4), label="steps")):
        grads = _grads(data.draw, rng, flat)
        ref.step([native_copy(g) for g in grads])
        inputs = Snapshot(grads)
        assert opt.step(grads) is True
        assert inputs.unchanged(), "step() wrote to a gradient"
        _compare(spec, flat, ref_flat, f"after step {k}")


@optimizer_specs
@fuzz_settings(1.0)
@given(data=st.data())
def test_optimizer_invalid_hyperparameters_raise(name, data):
    spec = OPTIMIZER[name]
    _, _, flat, defaults = data.draw(cached(optimizer_setups, spec), label="setup")
    options = [(hp.name, v, exc) for hp in spec.hypers for v, exc in hp.domain.invalid()]
    options += [(None, combo, name) for combo, name in spec.invalid_combos]
    name, value, exc = data.draw(st.sampled_from(options), label="invalid")
    if name is None:
        bad, names, exc = dict(value), {exc}, (TypeError, ValueError)
    else:
        bad, names = {name: value}, {name}
    kwargs = spec.kwargs({**defaults, **bad})
    where = data.draw(st.sampled_from(["constructor", "group"]), label="where")
    snap = Snapshot(flat)
    with pytest.raises(exc) as info:
        if where == "constructor":
            spec.cls(flat, **kwargs)
        else:
            spec.cls([{"params": flat, **kwargs}])
    assert_names(str(info.value), names, f"{spec.name}({where}, {bad})")
    assert snap.unchanged()


@st.composite
def broken_grads(draw, spec, flat, rng):
    """(grads, how, expected exception types): one step's gradients, made invalid."""
    grads = _grads(draw, rng, flat, none_ok=True)
    k = draw(st.integers(0, len(flat) - 1))
    p = flat[k]
    g = rng.uniform(-1, 1, p.shape).astype(p.dtype)
    options = [("a Python float", 1.5, (TypeError,)), ("a string", "x", (TypeError,))]
    for dt in ("int64", "float16", "complex128", "object", "bool", "longdouble"):
        options.append((f"dtype {dt}", g.astype(dt), (TypeError,)))
    other = np.float64 if p.dtype == np.float32 else np.float32
    options.append(("the other float dtype", g.astype(other), (TypeError,)))
    options.append(("a longer shape", np.zeros(p.shape + (2,), p.dtype), (ValueError,)))
    targets = [q for q in flat if q.size]
    if targets and g.size:
        q = draw(st.sampled_from(targets))
        if q.dtype == p.dtype and q.size >= p.size:
            view = q.reshape(-1)[: p.size].reshape(p.shape)  # contiguous: shares a param's memory
            options.append(("memory shared with a parameter", view, (ValueError,)))
    how, value, exc = draw(st.sampled_from(options))
    grads[k] = value
    return grads, f"grads[{k}] = {how}", exc


@optimizer_specs
@fuzz_settings(1.0)
@given(data=st.data())
def test_optimizer_invalid_grads_raise_and_change_nothing(name, data):
    spec = OPTIMIZER[name]
    opt, ref, flat, ref_flat, rng = _optimizer_and_reference(spec, data)
    for _ in range(data.draw(st.integers(0, 2), label="warmup")):
        grads = _grads(data.draw, rng, flat)
        opt.step(grads)
        ref.step([native_copy(g) for g in grads])
    kind = data.draw(st.sampled_from(["element", "length", "container"]), label="kind")
    if kind == "element":
        grads, how, exc = data.draw(broken_grads(spec, flat, rng), label="grads")
    elif kind == "length":
        grads, how, exc = [np.zeros_like(p) for p in flat] + [None], "one grad too many", \
            (ValueError,)
    else:
        grads, how, exc = {0: np.zeros_like(flat[0])}, "a dict", (TypeError, ValueError)
    params_before = Snapshot(flat)
    state_before = state_bytes(opt)
    with pytest.raises(exc) as info:
        opt.step(grads)
    assert_names(str(info.value), {"grads"}, f"{spec.name}.step with {how}")
    assert params_before.unchanged(), f"{spec.name}.step with {how} modified a parameter"
    assert state_bytes(opt) == state_before, f"{spec.name}.step with {how} changed the state"
    # the optimizer is not damaged: the next valid step still matches the reference
    grads = _grads(data.draw, rng, flat)
    opt.step(grads)
    ref.step([native_copy(g) for g in grads])
    _compare(spec, flat, ref_flat, "after a failed step")


@optimizer_specs
def test_optimizer_schedule_returning_an_invalid_lr_changes_nothing(name):
    spec = OPTIMIZER[name]
    a, b = np.ones(3), np.ones(4, np.float32)

    def schedule(step):
        return 0.1 if step < 1 else -1.0

    opt = spec.cls([{"params": [a], "lr": 0.1}, {"params": [b], "lr": schedule}])
    grads = [np.ones(3), np.ones(4, np.float32)]
    opt.step(grads)
    before, state = Snapshot([a, b]), state_bytes(opt)
    with pytest.raises(ValueError, match="^lr"):
        opt.step(grads)
    assert before.unchanged() and state_bytes(opt) == state


def test_written_corruptions_are_really_invalid_layouts():
    """Self-test of the harness: each corruption of a written array breaks a flag."""
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    for how, bad in _written_corruptions(a):
        assert (not bad.flags.writeable or not bad.flags.c_contiguous
                or not bad.flags.aligned or not bad.dtype.isnative), how
        np.testing.assert_array_equal(bad, a)
    for kind in LAYOUTS:
        np.testing.assert_array_equal(relayout(a, kind), a)


# -- layer classes (fastopt.nn.Dropout, fastopt.nn.BatchNorm) --------------------------------

nn = getattr(__import__("fastopt"), "nn", None)
needs_nn = pytest.mark.skipif(nn is None or not hasattr(nn, "BatchNorm"),
                              reason="fastopt.nn not on main")
LAYER_ARGS = {
    "Dropout": (lambda **kw: nn.Dropout(**{"p": 0.5, "seed": 1, **kw}), [
        ("p", -0.1, ValueError), ("p", 1.0, ValueError), ("p", "0.5", TypeError),
        ("p", float("nan"), ValueError), ("seed", -1, ValueError), ("seed", 1.5, TypeError),
        ("seed", 2**64, ValueError), ("pack", "no", TypeError), ("pack", 1, TypeError)]),
    "BatchNorm": (lambda **kw: nn.BatchNorm(**{"num_features": 3, **kw}), [
        ("num_features", 0, ValueError), ("num_features", 2.5, TypeError),
        ("num_features", True, TypeError), ("eps", 0.0, ValueError),
        ("eps", float("inf"), ValueError), ("eps", "1e-5", TypeError),
        ("momentum", 1.5, ValueError), ("momentum", float("nan"), ValueError),
        ("convention", "keras", ValueError), ("dtype", np.int32, TypeError),
        ("affine", "yes", TypeError), ("affine", None, TypeError)]),
}


@needs_nn
@pytest.mark.parametrize("layer", list(LAYER_ARGS))
def test_layer_constructors_check_every_argument(layer):
    make, bad = LAYER_ARGS[layer]
    make()  # the defaults are fine
    for name, value, exc in bad:
        with pytest.raises(exc) as info:
            make(**{name: value})
        assert_names(str(info.value), {name}, f"{layer}({name}={value!r})")


def _layer_state(layer):
    sd = layer.state_dict()
    return repr({k: (v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in sd.items()})


@needs_nn
@pytest.mark.parametrize("layer", list(LAYER_ARGS))
@fuzz_settings(0.5)
@given(data=st.data())
def test_layer_forward_with_bad_input_changes_nothing(layer, data):
    make, _ = LAYER_ARGS[layer]
    obj = make()
    x = np.random.default_rng(0).standard_normal((4, 3, 2))
    obj.forward(x)  # some state to protect
    bad_inputs = [x.astype(np.int64), x.astype(np.float16), x.astype(complex), x.tolist(),
                  None, "x", x.astype(object)]
    if layer == "BatchNorm":
        bad_inputs += [x[:, :2], x[:1, :, :1], x.astype(np.float32), x[0]]
    bad = data.draw(st.sampled_from(bad_inputs), label="x")
    before = _layer_state(obj)
    snap = Snapshot([x, bad])
    with pytest.raises((TypeError, ValueError)) as info:
        obj.forward(bad, training=data.draw(st.booleans(), label="training") or
                    layer == "BatchNorm")
    assert_names(str(info.value), {"x", "gamma", "beta", "running_mean", "running_var"},
                 f"{layer}.forward")
    assert _layer_state(obj) == before and snap.unchanged()


# -- fastopt.minimize: x0 is only read; bad arguments are TypeError/ValueError -------------

minimize = getattr(__import__("fastopt"), "minimize", None)


@pytest.mark.skipif(minimize is None, reason="fastopt.minimize not on main")
@fuzz_settings(0.5)
@given(data=st.data())
def test_minimize_reads_x0_in_any_layout_and_never_writes_it(data):
    n = data.draw(st.integers(1, 6), label="n")
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.int64]), label="dtype")
    kind = data.draw(st.sampled_from(LAYOUTS), label="layout")
    method = data.draw(st.sampled_from(["BFGS", "L-BFGS"]), label="method")
    x0 = relayout(np.arange(n).astype(dtype), kind)
    snap = Snapshot([x0])
    target = np.linspace(-1, 1, n)

    def fun(x):
        d = np.asarray(x, np.float64) - target
        return float(d @ d), 2 * d

    res = minimize(fun, x0, jac=True, method=method)
    assert snap.unchanged(), "minimize wrote to x0"
    assert res.success and np.allclose(np.asarray(res.x, np.float64), target, atol=1e-4)


@pytest.mark.skipif(minimize is None, reason="fastopt.minimize not on main")
@pytest.mark.parametrize("kwargs, exc", [
    (dict(method="nope"), ValueError), (dict(tol=-1.0), ValueError), (dict(tol="a"), TypeError),
    (dict(options={"maxiter": -1}), ValueError), (dict(options={"maxiter": "1"}), TypeError),
    (dict(x0=np.zeros(3, complex)), TypeError), (dict(x0="x"), TypeError),
    (dict(x0=np.zeros(0)), ValueError)])
def test_minimize_bad_arguments_raise(kwargs, exc):
    x0 = kwargs.pop("x0", np.zeros(3))
    snap = Snapshot([x0])
    with pytest.raises(exc):
        minimize(lambda x: (float(x @ x), 2 * x), x0, jac=True, **kwargs)
    assert snap.unchanged()
