"""fastopt.save_state / load_state: checkpoints through np.savez without pickle, bit-exact."""

import io
import json
import math

import numpy as np
import pytest

import fastopt
import fastopt.schedules as S
from fastopt.checkpoint import load_state, save_state


def _roundtrip(state, **kw):
    buf = io.BytesIO()
    save_state(buf, state, **kw)
    buf.seek(0)
    return load_state(buf)


def assert_identical(a, b, path="state"):
    """Equal in type, structure and bits (NaN == NaN, -0.0 != 0.0)."""
    assert type(a) is type(b), (path, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            assert_identical(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert a.tobytes() == np.ascontiguousarray(b).tobytes(), path
    elif isinstance(a, (float, complex, np.generic)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), path
    elif isinstance(a, S.Schedule):
        assert repr(a) == repr(b), path
        assert_identical(a.__getstate__(), b.__getstate__(), path)
        steps = np.arange(0, 300, 7)
        assert a(steps).tobytes() == b(steps).tobytes(), path
    else:
        assert a == b, path


def test_plain_data_roundtrips_bit_exact():
    rng = np.random.default_rng(0)
    state = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f64 strided": rng.standard_normal((4, 6))[:, ::2],
        "ints": np.arange(-3, 3, dtype=np.int16), "bools": np.array([True, False]),
        "big-endian": np.arange(3, dtype=">f8"), "empty": np.zeros((0, 3)),
        "scalars": (np.float32(1.1), np.int64(-7), np.bool_(True), np.float64(2.5)),
        "floats": [0.1, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308],
        "ints py": [0, -1, 2**64 + 1, -(10**30), True, False],
        "complex": 1.5 - 2.25j, "text": "ü €", "none": None,
        0: "int key", (1, "a"): "tuple key", 2.5: "float key", None: "None key",
        "nested": {"list": [[1, (2, 3)], {"x": np.ones(2)}], "tuple": (1, [2.0])},
    }
    back = _roundtrip(state)
    assert_identical(state["f64 strided"].copy(), back["f64 strided"])
    state["f64 strided"] = state["f64 strided"].copy()
    assert_identical(state, back)


def test_file_path_compression_and_no_pickle(tmp_path):
    state = {"w": np.linspace(0, 1, 1000), "lr": S.cosine(0.1, 10)}
    save_state(tmp_path / "ckpt", state, compress=True)  # as np.savez: .npz appended
    path = tmp_path / "ckpt.npz"
    assert_identical(state, load_state(path))
    with np.load(path, allow_pickle=False) as data:  # plain entries: arrays and a JSON text
        header = json.loads(data["__fastopt_state__"].tobytes())
        assert header["format"] == "fastopt-state"
        assert all(data[k].dtype != object for k in data.files)


def _every_schedule():
    plateau = S.ReduceLROnPlateau(0.1, patience=1, cooldown=1)
    for m in [3, 2, 2, 2, 2, 1, float("nan")]:
        plateau.update(m)
    return [
        S.constant(0.1, 0.5, 3), S.step_decay(0.1, 7, 0.5), S.multistep(0.1, [3, 9], 0.3),
        S.exponential(0.1, 0.97), S.cosine(0.1, 17, 0.001, clamp=True),
        S.cosine_restarts(0.1, 3, 2, 0.001, decay=0.5), S.linear(0.1, 0.1, 0.9, 13),
        S.polynomial(0.1, 20, 2.0, end_lr=0.01), S.inverse_sqrt(1.0, 10, d_model=64),
        S.inverse_sqrt(0.1, 10, normalize=True), S.one_cycle(0.5, 50, three_phase=True),
        S.cyclic(0.01, 0.1, 5, 3, "exp_range", 0.97), S.cyclic(0.01, 0.1, 4, mode="triangular2"),
        S.warmup(S.cosine(0.1, 20), 5, 0.1), S.warmup(0.1, 5, shift=True),
        S.sequential([S.linear(0.1, 0.1, 1.0, 5), S.cosine(0.1, 20), 0.001], [5, 25]),
        S.chain(0.1, S.constant(1.0, 0.5, 4), S.exponential(1.0, 0.9)),
        S.scale_lr_for_batch(S.cosine(0.1, 30), 256, 1024, "sqrt"), plateau,
        S.one_cycle_momentum(50, 0.25, "linear", 0.8, 0.97, three_phase=True),
        S.cyclic_momentum(0.85, 0.95, 4, 2, "exp_range", 0.97),
    ]


def test_every_schedule_class_is_covered():
    classes = {type(s) for s in _every_schedule()}
    defined = {c for c in vars(S).values()
               if isinstance(c, type) and issubclass(c, S.Schedule) and c is not S.Schedule}
    assert defined <= classes, sorted(c.__name__ for c in defined - classes)


@pytest.mark.parametrize("schedule", _every_schedule(), ids=repr)
def test_every_schedule_roundtrips(schedule):
    back = _roundtrip({"lr": schedule})["lr"]
    assert back is not schedule
    assert_identical(schedule, back)
    if isinstance(schedule, S.ReduceLROnPlateau):
        assert back.state_dict() == schedule.state_dict() or math.isnan(schedule.best)
        assert back.update(0.5) == schedule.update(0.5)


OPTIMIZERS = [
    (fastopt.SGD, dict(lr=S.step_decay(0.1, 3), momentum=0.9, nesterov=True)),
    (fastopt.Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.2)),
    (fastopt.RMSprop, dict(lr=S.cosine(0.01, 20), centered=True, momentum=0.5)),
    (fastopt.Adam, dict(lr=S.warmup(S.cosine(0.01, 20), 3), amsgrad=True)),
    (fastopt.AdamW, dict(lr=S.one_cycle(0.01, 20), weight_decay=0.1)),
    (fastopt.Adadelta, dict(lr=S.ReduceLROnPlateau(1.0, patience=0))),
]


@pytest.mark.parametrize("cls, options", OPTIMIZERS, ids=[c.__name__ for c, _ in OPTIMIZERS])
def test_optimizer_resumes_bit_exact(cls, options, dtype):
    rng = np.random.default_rng(1)
    shapes = [(4, 3), (5,)]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(12)]
    ref_params = [np.full(s, 0.5, dtype) for s in shapes]
    ref = cls([{"params": ref_params[:1]}, {"params": ref_params[1:], "weight_decay": 0.01}],
              **options)
    for g in grads:
        ref.step(g)
    params = [np.full(s, 0.5, dtype) for s in shapes]
    opt = cls([{"params": params[:1]}, {"params": params[1:], "weight_decay": 0.01}],
              **options)
    for g in grads[:6]:
        opt.step(g)
    ckpt = _roundtrip({"params": params, "optimizer": opt.state_dict(), "epoch": 6})
    assert_identical(opt.state_dict(), ckpt["optimizer"])
    fresh_params = ckpt["params"]
    fresh = cls([{"params": fresh_params[:1]}, {"params": fresh_params[1:]}], lr=0.5)
    fresh.load_state_dict(ckpt["optimizer"])
    for g in grads[6:]:
        fresh.step(g)
    for a, b in zip(ref_params, fresh_params):
        assert a.tobytes() == b.tobytes()


def test_layers_resume_bit_exact():
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((8, 3)) for _ in range(6)]

    def run(bn, drop, batches):
        return [drop(bn(x)) for x in batches]

    bn, drop = fastopt.nn.BatchNorm(3), fastopt.nn.Dropout(0.3, seed=2**63 + 5)
    ref = run(bn, drop, xs)
    bn2, drop2 = fastopt.nn.BatchNorm(3), fastopt.nn.Dropout(0.3, seed=2**63 + 5)
    run(bn2, drop2, xs[:3])
    ckpt = _roundtrip({"bn": bn2.state_dict(), "dropout": drop2.state_dict()})
    bn3, drop3 = fastopt.nn.BatchNorm(3), fastopt.nn.Dropout(0.5, seed=0)
    bn3.load_state_dict(ckpt["bn"])
    drop3.load_state_dict(ckpt["dropout"])
    for a, b in zip(ref[3:], run(bn3, drop3, xs[3:])):
        assert a.tobytes() == b.tobytes()


def _custom_scale(x):
    return 1.0 / (1.0 + x)


class _MySchedule(S.Schedule):
    def _value(self, step):
        return 0.1


@pytest.mark.parametrize("state, match", [
    ({"opt": {"param_groups": [{"lr": lambda t: 0.1}]}},
     r"state\['opt'\]\['param_groups'\]\[0\]\['lr'\]: .*lambda.*function"),
    ({"lr": S.cyclic(0.01, 0.1, 5, scale_fn=_custom_scale)}, r"scale_fn.*_custom_scale"),
    ({"lr": _MySchedule()}, "not one of fastopt.schedules' own"),
    ({"opt": fastopt.Adam([np.zeros(2)])}, r"state\['opt'\]: an object of type Adam; save its state_dict"),
    ({"x": np.array([object()])}, "dtype object"),
    ({"x": {1, 2}}, "cannot save a set"),
    ({frozenset(): 1}, "dict key of type frozenset"),
])
def test_unsavable_values_are_refused_by_path(state, match):
    buf = io.BytesIO()
    with pytest.raises(TypeError, match=match):
        save_state(buf, state)
    assert buf.getvalue() == b""  # nothing written


def _forged(tree):
    buf = io.BytesIO()
    header = json.dumps({"format": "fastopt-state", "version": 1, "tree": tree}).encode()
    np.savez(buf, __fastopt_state__=np.frombuffer(header, np.uint8), a0=np.zeros(2))
    buf.seek(0)
    return buf


@pytest.mark.parametrize("tree, match", [
    ({"schedule": "Schedule", "fields": {"dict": []}}, "cannot be rebuilt"),
    ({"schedule": "np", "fields": {"dict": []}}, "not a fastopt.schedules schedule"),
    ({"schedule": "_Cosine", "fields": {"dict": [["base_lr", 0.1]]}}, "cannot be rebuilt"),
    ({"array": 3}, "missing array"),
    ({"pickle": "cos\nsystem"}, "unknown entry"),
    ({"dict": [[[1], 2]]}, "unhashable"),
])
def test_damaged_or_forged_files_are_refused(tree, match):
    with pytest.raises(ValueError, match=match):
        load_state(_forged(tree))


def test_foreign_files_are_refused():
    buf = io.BytesIO()
    np.savez(buf, w=np.zeros(3))
    buf.seek(0)
    with pytest.raises(ValueError, match="not written by fastopt.save_state"):
        load_state(buf)


def test_torch_tensors_roundtrip_and_torch_checkpoints_travel():
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    params = [torch.nn.Parameter(torch.linspace(-1, 1, 6).reshape(2, 3))]
    opt = ft.AdamW(params, lr=0.01)
    for step in range(3):
        params[0].grad = torch.full((2, 3), 0.1 * (step + 1))
        opt.step()
    sd = opt.state_dict()
    back = _roundtrip({"optimizer": sd})["optimizer"]
    for k, entry in sd["state"].items():
        for name, t in entry.items():
            assert back["state"][k][name].dtype == t.dtype
            assert torch.equal(back["state"][k][name], t)
    other = torch.optim.AdamW([torch.nn.Parameter(params[0].detach().clone())], lr=0.01)
    other.load_state_dict(back)
    assert float(other.state_dict()["state"][0]["step"]) == 3.0

