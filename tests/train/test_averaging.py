"""fastopt.train.averaging: EMA and ensemble_average."""

import pickle

import numpy as np
import pytest

from fastopt.train import EMA, ensemble_average


def test_ema_closed_form():
    rng = np.random.default_rng(1)
    d = 0.9
    p0 = rng.standard_normal((3, 2))
    seq = [rng.standard_normal((3, 2)) for _ in range(7)]
    param = p0.copy()
    ema = EMA([param], decay=d)
    for s in seq:
        param[...] = s
        ema.update([param])
    k = len(seq)
    expected = d**k * p0 + sum((1 - d) * d ** (k - 1 - j) * seq[j] for j in range(k))
    np.testing.assert_allclose(ema.shadow[0], expected, rtol=1e-12, atol=1e-14)
    assert ema.num_updates == k


def test_ema_warmup_decays():
    d = 0.99
    p0 = np.array([10.0])
    seq = [np.array([float(v)]) for v in [1, 2, 3, 4, 5]]
    ema = EMA([p0.copy()], decay=d, warmup=True)
    decays = []
    for s in seq:
        decays.append(ema.current_decay())
        ema.update([s])
    assert decays == pytest.approx([min(d, (1 + n) / (10 + n)) for n in range(5)])
    assert decays[0] == pytest.approx(0.1)
    # closed form with per-step decays d_n
    k = len(seq)
    expected = np.prod(decays) * p0
    for j in range(k):
        expected = expected + (1 - decays[j]) * np.prod(decays[j + 1 :]) * seq[j]
    np.testing.assert_allclose(ema.shadow[0], expected, rtol=1e-12)


def test_ema_warmup_is_capped_by_decay():
    ema = EMA([np.zeros(1)], decay=0.5, warmup=True)
    for _ in range(20):
        assert ema.current_decay() <= 0.5
        ema.update([np.ones(1)])
    assert ema.current_decay() == 0.5


def test_ema_shadow_is_independent_readonly_copy():
    p = np.ones(3)
    ema = EMA([p], decay=0.5)
    p[:] = 5.0
    np.testing.assert_array_equal(ema.shadow[0], 1.0)
    with pytest.raises(ValueError):
        ema.shadow[0][0] = 2.0


def test_ema_decay_one_and_zero():
    ema1 = EMA([np.ones(2)], decay=1.0)
    ema0 = EMA([np.ones(2)], decay=0.0)
    for ema in (ema1, ema0):
        ema.update([np.full(2, 3.0)])
    np.testing.assert_array_equal(ema1.shadow[0], 1.0)
    np.testing.assert_array_equal(ema0.shadow[0], 3.0)


def test_ema_copy_to_and_average_parameters():
    params = [np.zeros(2), np.zeros((2, 2), dtype=np.float32)]
    ema = EMA(params, decay=0.5)
    for p in params:
        p[...] = 4.0
    ema.update(params)  # shadow = 2
    with ema.average_parameters(params):
        for p in params:
            np.testing.assert_array_equal(p, 2.0)
    for p in params:
        np.testing.assert_array_equal(p, 4.0)
    with pytest.raises(KeyError):
        with ema.average_parameters(params):
            raise KeyError("evaluation failed")
    for p in params:
        np.testing.assert_array_equal(p, 4.0)  # restored on error too
    target = [np.zeros(2), np.zeros((2, 2), dtype=np.float32)]
    ema.copy_to(target)
    assert target[1].dtype == np.float32
    for t in target:
        np.testing.assert_array_equal(t, 2.0)


def test_ema_float64_shadow_for_float32_params():
    p = np.zeros(1, dtype=np.float32)
    ema32 = EMA([p], decay=0.9999)
    ema64 = EMA([p], decay=0.9999, dtype=np.float64)
    one = np.ones(1, dtype=np.float32)
    for _ in range(2000):
        ema32.update([one])
        ema64.update([one])
    exact = 1 - 0.9999**2000
    assert ema64.shadow[0].dtype == np.float64
    assert abs(ema64.shadow[0][0] - exact) < 1e-12
    assert ema32.shadow[0].dtype == np.float32
    assert abs(ema32.shadow[0][0] - exact) < 1e-3


def test_ema_state_dict_roundtrip():
    rng = np.random.default_rng(2)
    seq = [rng.standard_normal(4) for _ in range(6)]
    full = EMA([np.zeros(4)], decay=0.8, warmup=True)
    for s in seq:
        full.update([s])
    part = EMA([np.zeros(4)], decay=0.8, warmup=True)
    for s in seq[:3]:
        part.update([s])
    sd = pickle.loads(pickle.dumps(part.state_dict()))
    resumed = EMA([np.full(4, 9.0)], decay=0.1)
    resumed.load_state_dict(sd)
    for s in seq[3:]:
        resumed.update([s])
    np.testing.assert_array_equal(resumed.shadow[0], full.shadow[0])
    assert resumed.num_updates == 6 and resumed.decay == 0.8 and resumed.warmup


def test_ema_validation_changes_nothing():
    ema = EMA([np.zeros(3), np.zeros(2)], decay=0.5)
    before = ema.state_dict()
    with pytest.raises(ValueError, match=r"^params\[1\]: expected shape \(2,\), got \(4,\)"):
        ema.update([np.ones(3), np.ones(4)])
    with pytest.raises(ValueError, match="^params: expected 2 arrays, got 1"):
        ema.update([np.ones(3)])
    with pytest.raises(TypeError, match=r"^params\[0\]: expected a floating dtype"):
        ema.update([np.ones(3, dtype=int), np.ones(2)])
    sd = ema.state_dict()
    sd["shadow"] = [np.ones(3), np.ones(5)]
    with pytest.raises(ValueError, match=r"^state_dict\['shadow'\]\[1\]: expected shape"):
        ema.load_state_dict(sd)
    sd = ema.state_dict()
    sd["warmup"] = 1
    with pytest.raises(TypeError, match=r"^state_dict\['warmup'\]: expected True or False"):
        ema.load_state_dict(sd)
    after = ema.state_dict()
    assert after["num_updates"] == before["num_updates"]
    for a, b in zip(after["shadow"], before["shadow"]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"^decay: expected a value in \[0, 1\], got 1.5"):
        EMA([np.zeros(1)], decay=1.5)
    with pytest.raises(TypeError, match="^decay: expected a real number, got None"):
        EMA([np.zeros(1)], decay=None)
    with pytest.raises(TypeError, match="^dtype: expected a floating dtype, got int64"):
        EMA([np.zeros(1)], dtype=np.int64)
    with pytest.raises(TypeError, match=r"^params\[0\]: expected a numpy array"):
        EMA(np.zeros(1).tolist())
    with pytest.raises(TypeError, match="^warmup: expected True or False, got 1"):
        EMA([np.zeros(1)], warmup=1)
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"^params\[0\]: expected a writeable array.*read-only"):
        ema.copy_to([ro, np.zeros(2)])


def test_ema_decay_as_0d_array_is_its_scalar():
    """np.array(0.9) is 0.9 everywhere in fastopt (schedules and optimizers too)."""
    a, b = EMA([np.zeros(2)], decay=np.array(0.9)), EMA([np.zeros(2)], decay=0.9)
    assert a.decay == 0.9 and type(a.decay) is float
    a.update([np.ones(2)])
    b.update([np.ones(2)])
    np.testing.assert_array_equal(a.shadow[0], b.shadow[0])


# =============================================================================
# ensemble_average
# =============================================================================
def test_ensemble_mean_and_weighted_mean():
    rng = np.random.default_rng(3)
    probs = [rng.dirichlet(np.ones(4), size=5) for _ in range(3)]
    np.testing.assert_allclose(ensemble_average(probs), np.mean(probs, axis=0), rtol=1e-14)
    w = [1.0, 2.0, 0.5]
    np.testing.assert_allclose(
        ensemble_average(probs, weights=w), np.average(probs, axis=0, weights=w), rtol=1e-14
    )
    # averaged probabilities still sum to one
    np.testing.assert_allclose(ensemble_average(probs, w).sum(axis=1), 1.0)


def test_ensemble_dtypes():
    a = np.array([0.25, 0.75], dtype=np.float32)
    out = ensemble_average([a, a])
    assert out.dtype == np.float32
    assert ensemble_average([a, a.astype(np.float64)]).dtype == np.float64
    votes = ensemble_average([np.array([1, 0]), np.array([0, 1]), np.array([1, 0])])
    assert votes.dtype == np.float64
    np.testing.assert_allclose(votes, [2 / 3, 1 / 3])


def test_ensemble_beats_its_members():
    """The lecture's point: averaging independent models reduces variance."""
    rng = np.random.default_rng(4)
    n, k, models = 4000, 5, 7
    y = rng.integers(k, size=n)
    probs = []
    for _ in range(models):
        logits = 1.0 * np.eye(k)[y] + rng.standard_normal((n, k))
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs.append(e / e.sum(axis=1, keepdims=True))
    member_acc = [np.mean(p.argmax(axis=1) == y) for p in probs]
    ens_acc = np.mean(ensemble_average(probs).argmax(axis=1) == y)
    assert ens_acc > max(member_acc) + 0.05


@pytest.mark.parametrize(
    "args, exc, match",
    [
        (([],), ValueError, "^prob_list: expected at least one array"),
        ((np.ones((2, 3)),), TypeError, "^prob_list: expected a list or tuple of arrays"),
        (([np.ones(3), np.ones(4)],), ValueError, r"^prob_list\[1\]: expected shape \(3,\)"),
        (([np.array(["a"])],), TypeError, r"^prob_list\[0\]: expected real values"),
        (([np.ones(3), np.ones(3)], [1.0]), ValueError, r"^weights: expected shape \(2,\)"),
        (([np.ones(3), np.ones(3)], [1.0, -1.0]), ValueError, "^weights: expected finite values"),
        (([np.ones(3), np.ones(3)], [0.0, 0.0]), ValueError, "^weights: expected finite values"),
        (([np.ones(3), np.ones(3)], [1.0, np.nan]), ValueError, "^weights: expected finite"),
    ],
)
def test_ensemble_validation(args, exc, match):
    with pytest.raises(exc, match=match):
        ensemble_average(*args)
