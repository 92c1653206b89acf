"""Exact resume, across every optimizer class: run(2k) == run(k) -> save -> load -> run(k).

Checkpoints go through three round trips: kept in memory while the original run goes on
(the checkpoint must be a snapshot), pickle, and np.savez (flattened to arrays, the way
a user stores a checkpoint without pickle). Loading into fresh objects and continuing must
give the same bits as the uninterrupted run, for params, state and step counts. Loading a
checkpoint of a different model fails loudly and changes nothing.
"""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

import fastopt
from fastopt import nn, schedules
from fastopt_testing.fuzz_harness import Snapshot, state_bytes
from fastopt_testing.fuzz_specs import OPTIMIZERS

OPTIMIZER = {s.name: s for s in OPTIMIZERS}
K = 5
SHAPES = [[(5, 3), (7,)], [(4,), ()]]  # two param groups
DTYPES = [[np.float32, np.float64], [np.float32, np.float64]]


def _params(seed=0, shapes=SHAPES, dtypes=DTYPES):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(d) for s, d in zip(ss, dd)]
            for ss, dd in zip(shapes, dtypes)]


def _grads(groups, steps, seed=1):
    rng = np.random.default_rng(seed)
    flat = [p for g in groups for p in g]
    out = []
    for t in range(steps):
        gs = [rng.standard_normal(p.shape).astype(p.dtype) for p in flat]
        if t < 2:
            gs[-1] = None  # the last param gets its state late (lazy allocation)
        if t == 3:
            gs[0] = None
        out.append(gs)
    return out


def _make(spec, groups, lr1=None):
    """The optimizer under test: group 0 with the class's example options, group 1 with a
    schedule (picklable: fastopt.schedules objects) unless `lr1` is given."""
    lr0 = spec.example.get("lr", 1e-2)
    lr1 = lr1 if lr1 is not None else schedules.warmup(schedules.cosine(lr0, 20), 3)
    return spec.cls([{"params": groups[0]}, {"params": groups[1], "lr": lr1}], **spec.example)


def _flat_arrays(opt):
    params = [p for g in opt.param_groups for p in g["params"]]
    state = [np.asarray(v) for i in sorted(opt.state) for _, v in sorted(opt.state[i].items())]
    return params + state


def _is_number(x):
    return isinstance(x, (bool, int, float, np.generic))


def _flatten(sd, prefix=""):
    """A state_dict as {key: ndarray} for np.savez; callables (schedules) are left out.
    Keys are paths of 'kind:name' parts (kind: str or int dict keys, list or tuple
    items); numbers and arrays are leaves, as are lists/tuples of numbers."""
    out = {}
    if isinstance(sd, dict):
        for k, v in sd.items():
            out.update(_flatten(v, f"{prefix}{type(k).__name__}:{k}/"))
    elif isinstance(sd, (list, tuple)) and not all(_is_number(x) for x in sd):
        for i, v in enumerate(sd):
            out.update(_flatten(v, f"{prefix}{type(sd).__name__}:{i}/"))
    elif isinstance(sd, (list, tuple)):
        out[prefix + type(sd).__name__] = np.asarray(sd)
    elif callable(sd):
        pass
    else:
        out[prefix + "value"] = np.asarray(sd)
    return out


def _unflatten(flat):
    root: dict = {}
    for key, value in flat.items():
        *path, leaf = key.split("/")
        node = root
        for part in path:
            kind, name = part.split(":", 1)
            name = name if kind == "str" else int(name)
            node = node.setdefault((kind, name), {})
        value = np.asarray(value)
        if leaf == "value":
            node["\0"] = value if value.ndim else value.item()
        else:
            node["\0"] = (list if leaf == "list" else tuple)(value.tolist())

    def fix(node):
        if set(node) == {"\0"}:
            return node["\0"]
        kinds = {kind for kind, _ in node}
        if kinds <= {"list", "tuple"}:
            items = [fix(node[key]) for key in sorted(node, key=lambda kn: kn[1])]
            return tuple(items) if kinds == {"tuple"} else items
        return {name: fix(v) for (kind, name), v in node.items()}
    return fix(root)


def _savez_round_trip(sd):
    buf = io.BytesIO()
    np.savez(buf, **_flatten(sd))
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        return _unflatten({k: data[k] for k in data.files})


@pytest.mark.parametrize("name", list(OPTIMIZER))
@pytest.mark.parametrize("trip", ["memory", "pickle", "savez"])
def test_resume_is_bitwise_identical(name, trip):
    spec = OPTIMIZER[name]
    grads = _grads(_params(), 2 * K)
    whole = _make(spec, _params())
    for g in grads:
        whole.step(g)

    groups = _params()
    first = _make(spec, groups)
    for g in grads[:K]:
        first.step(g)
    sd = first.state_dict()
    saved_params = [[p.copy() for p in ps] for ps in groups]
    if trip == "memory":  # the run goes on; the checkpoint must not follow it
        for g in grads[K:]:
            first.step(g)
    elif trip == "pickle":
        sd, saved_params = pickle.loads(pickle.dumps((sd, saved_params)))
    else:
        sd = _savez_round_trip(sd)

    resumed = _make(spec, saved_params)
    resumed.load_state_dict(sd)
    for g in grads[K:]:
        resumed.step(g)
    for a, b in zip(_flat_arrays(whole), _flat_arrays(resumed), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    assert [g["step"] for g in whole.param_groups] == [g["step"] for g in resumed.param_groups]
    assert state_bytes(whole) == state_bytes(resumed)


@pytest.mark.parametrize("name", list(OPTIMIZER))
@pytest.mark.parametrize("trip", ["memory", "pickle"])
def test_resume_with_a_stateful_schedule(name, trip):
    """ReduceLROnPlateau holds state (best, bad epochs, current lr) inside param_groups."""
    spec = OPTIMIZER[name]
    metrics = [5.0, 4.0, 4.5, 4.6, 4.7, 3.0, 3.1, 3.2, 3.3, 3.4]
    grads = _grads(_params(), len(metrics))

    def plateau():
        return schedules.ReduceLROnPlateau(0.05, patience=1, factor=0.5)

    def run(opt, gs, ms):
        for g, m in zip(gs, ms):
            opt.step(g)
            opt.param_groups[1]["lr"].update(m)

    whole = _make(spec, _params(), lr1=plateau())
    run(whole, grads, metrics)
    groups = _params()
    first = _make(spec, groups, lr1=plateau())
    run(first, grads[:K], metrics[:K])
    sd = first.state_dict()
    saved_params = [[p.copy() for p in ps] for ps in groups]
    if trip == "memory":
        run(first, grads[K:], metrics[K:])
    else:
        sd, saved_params = pickle.loads(pickle.dumps((sd, saved_params)))
    resumed = _make(spec, saved_params, lr1=plateau())
    resumed.load_state_dict(sd)
    run(resumed, grads[K:], metrics[K:])
    assert whole.param_groups[1]["lr"](0) != 0.05, "the schedule never reduced the lr"
    assert whole.param_groups[1]["lr"](0) == resumed.param_groups[1]["lr"](0)
    for a, b in zip(_flat_arrays(whole), _flat_arrays(resumed), strict=True):
        assert a.tobytes() == b.tobytes()


MISMATCHES = {
    "a param of another shape": ([[(5, 3), (8,)], [(4,), ()]], DTYPES),
    "a param of another dtype": (SHAPES, [[np.float64, np.float64], [np.float32, np.float64]]),
    "a param fewer": ([[(5, 3)], [(4,), ()]], [[np.float32], [np.float32, np.float64]]),
    "a param more": ([[(5, 3), (7,), (2,)], [(4,), ()]],
                     [[np.float32, np.float64, np.float32], [np.float32, np.float64]]),
}


@pytest.mark.parametrize("name", list(OPTIMIZER))
@pytest.mark.parametrize("what", list(MISMATCHES))
def test_loading_a_checkpoint_of_another_model_fails_and_changes_nothing(name, what):
    spec = OPTIMIZER[name]
    source = _make(spec, _params())
    for g in _grads(_params(), 3, seed=2):
        source.step([g_ if g_ is not None else None for g_ in g])
    sd = source.state_dict()
    shapes, dtypes = MISMATCHES[what]
    groups = _params(seed=3, shapes=shapes, dtypes=dtypes)
    target = _make(spec, groups)
    target.step(_grads(groups, 4, seed=4)[3])
    before, params = state_bytes(target), Snapshot([p for g in groups for p in g])
    with pytest.raises((ValueError, TypeError), match="state_dict"):
        target.load_state_dict(sd)
    assert state_bytes(target) == before and params.unchanged()


@pytest.mark.parametrize("name", list(OPTIMIZER))
@pytest.mark.parametrize("bad", ["not a dict", "no state", "one group", "state of a ghost"])
def test_malformed_checkpoints_fail_and_change_nothing(name, bad):
    spec = OPTIMIZER[name]
    opt = _make(spec, _params())
    opt.step(_grads(_params(), 4)[3])
    sd = opt.state_dict()
    if bad == "not a dict":
        sd = [sd]
    elif bad == "no state":
        del sd["state"]
    elif bad == "one group":
        sd["param_groups"] = sd["param_groups"][:1]
    else:
        sd["state"][99] = dict(next(iter(sd["state"].values())))
    before = state_bytes(opt)
    with pytest.raises((ValueError, TypeError), match="state_dict"):
        opt.load_state_dict(sd)
    assert state_bytes(opt) == before


# -- layers: Dropout's RNG position and BatchNorm's running statistics ----------------------

needs_nn = pytest.mark.skipif(not hasattr(nn, "BatchNorm"), reason="fastopt.nn not on main")


class _Net:
    """x -> BatchNorm -> Dropout -> sum: the layers' state and an optimizer over gamma/beta
    (Adam when available, with a schedule)."""

    def __init__(self, seed=0):
        self.bn = nn.BatchNorm(3, momentum=0.2)
        self.drop = nn.Dropout(0.3, seed=1234 + seed)
        cls = getattr(fastopt, "Adam", fastopt.SGD)
        self.opt = cls(self.bn.params, lr=schedules.warmup(schedules.cosine(0.05, 20), 3))

    def step(self, x):
        y = self.drop.forward(self.bn.forward(x, training=True))
        dx = self.bn.backward(self.drop.backward(np.ones_like(y)))
        self.opt.step(self.bn.grads)
        return y, dx

    def state(self):
        return {"bn": self.bn.state_dict(), "drop": self.drop.state_dict(),
                "opt": self.opt.state_dict()}

    def load(self, state):
        self.bn.load_state_dict(state["bn"])
        self.drop.load_state_dict(state["drop"])
        self.opt.load_state_dict(state["opt"])


def _batches(n):
    rng = np.random.default_rng(5)
    return [rng.standard_normal((8, 3, 2)) for _ in range(n)]


@needs_nn
@pytest.mark.parametrize("trip", ["memory", "pickle", "savez"])
def test_layers_resume_bitwise(trip):
    xs = _batches(2 * K)
    whole = _Net()
    outs = [whole.step(x) for x in xs]
    first = _Net()
    for x in xs[:K]:
        first.step(x)
    sd = first.state()
    if trip == "memory":
        for x in xs[K:]:
            first.step(x)
    elif trip == "pickle":
        sd = pickle.loads(pickle.dumps(sd))
    else:
        sd = _savez_round_trip(sd)
    resumed = _Net(seed=99)  # another dropout seed: the checkpoint must restore it
    resumed.load(sd)
    for x, (y, dx) in zip(xs[K:], outs[K:]):
        y2, dx2 = resumed.step(x)
        assert y.tobytes() == y2.tobytes() and dx.tobytes() == dx2.tobytes()
    for a, b in zip([whole.bn.gamma, whole.bn.beta, whole.bn.running_mean,
                     whole.bn.running_var],
                    [resumed.bn.gamma, resumed.bn.beta, resumed.bn.running_mean,
                     resumed.bn.running_var]):
        assert a.tobytes() == b.tobytes()
    assert whole.bn.num_batches_tracked == resumed.bn.num_batches_tracked
    assert whole.drop.state_dict() == resumed.drop.state_dict()


@needs_nn
@pytest.mark.parametrize("bad", ["other features", "missing", "negative count", "not a dict"])
def test_batchnorm_rejects_a_checkpoint_of_another_layer(bad):
    bn = nn.BatchNorm(3)
    bn.forward(_batches(1)[0])
    sd = nn.BatchNorm(4).state_dict()
    if bad == "missing":
        sd = bn.state_dict()
        del sd["running_var"]
    elif bad == "negative count":
        sd = dict(bn.state_dict(), num_batches_tracked=-1)
    elif bad == "not a dict":
        sd = [sd]
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v)
              for k, v in bn.state_dict().items()}
    with pytest.raises((ValueError, TypeError), match="state"):
        bn.load_state_dict(sd)
    after = bn.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


@needs_nn
@pytest.mark.parametrize("bad", [{"seed": -1}, {"seed": 1.5}, {"stream": 2**64}, {"p": 1.0},
                                 "missing"])
def test_dropout_rejects_a_bad_checkpoint(bad):
    d = nn.Dropout(0.5, seed=3)
    d.forward(np.ones(4))
    sd = d.state_dict()
    if bad == "missing":
        del sd["stream"]
    else:
        sd.update(bad)
    before = d.state_dict()
    with pytest.raises((ValueError, TypeError), match="state|p"):
        d.load_state_dict(sd)
    assert d.state_dict() == before
