"""fastopt.nn: gradient checks (central differences), mask statistics and reproducibility,
the Dropout/BatchNorm layers, and comparisons with torch when it is installed."""

import types

import numpy as np
import pytest

import fastopt
from fastopt import nn

# -- a small central-difference gradient check ----------------------------------------------

def numerical_grad(f, x, h=1e-5):
    """d f() / d x by central differences, perturbing x in place (float64)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f()
        x[idx] = old - h
        fm = f()
        x[idx] = old
        grad[idx] = (fp - fm) / (2 * h)
    return grad


def rel_error(a, b):
    return np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))


# -- dropout -------------------------------------------------------------------------------

def test_dropout_gradient_check(rng):
    x = rng.standard_normal((6, 7))
    w = rng.standard_normal(x.shape)  # loss = sum(w * y)
    _, mask = nn.dropout(x, 0.4, seed=11)

    def loss():
        return float(np.sum(w * nn.dropout(x, 0.4, seed=11)[0]))

    assert rel_error(nn.dropout_backward(w, mask), numerical_grad(loss, x)) < 1e-7


def test_dropconnect_gradient_check(rng):
    x, w = rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    up = rng.standard_normal((5, 3))  # loss = sum(up * (x @ w_masked))
    wm, mask = nn.dropconnect(w, 0.5, seed=3)

    def loss():
        return float(np.sum(up * (x @ nn.dropconnect(w, 0.5, seed=3)[0])))

    dw = nn.dropconnect_backward(x.T @ up, mask)
    assert rel_error(dw, numerical_grad(loss, w)) < 1e-7
    keep = mask.keep()
    np.testing.assert_array_equal(wm, np.where(keep, w * 2.0, 0.0))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_fraction_within_4_sigma(p):
    n = 1_000_000
    y, mask = nn.dropout(np.ones(n, np.float32), p, seed=2024)
    kept = np.count_nonzero(y)
    sigma = np.sqrt(n * p * (1 - p))
    assert abs(kept - n * (1 - p)) < 4 * sigma
    assert np.all((y == 0) | (y == np.float32(1 / (1 - p))))
    assert kept == mask.keep().sum()


def test_masks_reproducible_and_seed_dependent(rng):
    x = rng.standard_normal(10_000).astype(np.float32)
    a = nn.dropout(x, 0.5, seed=1)[1].keep()
    assert np.array_equal(a, nn.dropout(x, 0.5, seed=1)[1].keep())
    assert (a != nn.dropout(x, 0.5, seed=2)[1].keep()).mean() > 0.4
    assert (a != nn.dropout(x, 0.5, seed=1, stream=1)[1].keep()).mean() > 0.4
    assert (a != nn.dropout(x, 0.5)[1].keep()).mean() > 0.4  # seed=None: a fresh seed
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    assert np.array_equal(nn.dropout(x, 0.5, seed=g1)[1].keep(),
                          nn.dropout(x, 0.5, seed=g2)[1].keep())


def test_masks_independent_of_thread_count():
    x = np.ones((300, 1000), np.float32)
    with fastopt.threads(1):
        y1, m1 = nn.dropout(x, 0.3, seed=8)
    with fastopt.threads(2):
        y2, m2 = nn.dropout(x, 0.3, seed=8)
    assert y1.tobytes() == y2.tobytes() and m1.bits.tobytes() == m2.bits.tobytes()


def test_packed_and_regenerated_masks_agree(rng):
    x = rng.standard_normal((17, 33))
    y1, packed = nn.dropout(x, 0.3, seed=4)
    y2, regen = nn.dropout(x, 0.3, seed=4, pack=False)
    assert regen.bits is None and regen.nbytes == 0 and packed.nbytes == 9 * 8
    assert y1.tobytes() == y2.tobytes()
    np.testing.assert_array_equal(packed.keep(), regen.keep())
    dy = rng.standard_normal(x.shape)
    assert nn.dropout_backward(dy, packed).tobytes() == nn.dropout_backward(dy, regen).tobytes()


def test_eval_mode_is_identity_with_keep_all_mask(rng):
    x = rng.standard_normal((3, 4))
    y, mask = nn.dropout(x, 0.5, training=False)
    assert y is x and mask.p == 0.0 and mask.keep().all()
    assert nn.dropout_backward(x, mask) is x


def test_dropout_rejects_bad_arguments():
    x = np.ones(10)
    with pytest.raises(ValueError, match=r"^p: expected a value in \[0, 1\), got 1.0"):
        nn.dropout(x, 1.0)
    with pytest.raises(ValueError, match="^p: expected"):
        nn.dropout(x, -0.5, training=False)  # validated in eval mode too
    with pytest.raises(TypeError, match="^seed: expected None, a numpy Generator or an int"):
        nn.dropout(x, 0.5, seed="1")
    with pytest.raises(ValueError, match=r"^seed: expected an int in \[0, 18446744073709551616\)"):
        nn.dropout(x, 0.5, seed=-3)
    with pytest.raises(ValueError, match="^stream: expected an int in"):
        nn.dropout(x, 0.5, seed=1, stream=-1, training=False)
    with pytest.raises(TypeError, match="^training: expected True or False, got 1"):
        nn.dropout(x, 0.5, training=1)
    with pytest.raises(TypeError, match="mask"):
        nn.dropout_backward(x, np.ones(10, bool))
    with pytest.raises(ValueError, match="dy"):
        nn.dropout_backward(np.ones(11), nn.dropout(x, 0.5, seed=1)[1])


def test_dropout_layer_fresh_masks_and_exact_resume(rng):
    x = rng.standard_normal((8, 64))
    layer = nn.Dropout(0.5, seed=77)
    first = layer.forward(x)
    second = layer.forward(x)
    assert (first != second).any() and layer.stream == 2
    state = layer.state_dict()
    third = layer.forward(x)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx != 0, third != 0)
    resumed = nn.Dropout(0.1)
    resumed.load_state_dict(state)
    assert resumed.forward(x).tobytes() == third.tobytes()
    assert layer.forward(x, training=False) is x and layer.stream == 3
    with pytest.raises(RuntimeError):
        nn.Dropout(0.5).backward(x)
    with pytest.raises(ValueError, match="p"):
        nn.Dropout(1.5)


# -- batch norm ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 3, 4)], ids=str)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_batch_norm_gradient_check(shape, training, affine, rng):
    c = shape[1]
    x = rng.standard_normal(shape) * 1.5 + 0.3
    gamma = rng.uniform(0.5, 1.5, c) if affine else None
    beta = rng.standard_normal(c) if affine else None
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    w = rng.standard_normal(shape)  # loss = sum(w * y)

    def loss():
        y, _ = nn.batch_norm(x, gamma, beta, rm.copy(), rv.copy(), training)
        return float(np.sum(w * y))

    _, cache = nn.batch_norm(x, gamma, beta, rm.copy(), rv.copy(), training)
    dx, dgamma, dbeta = nn.batch_norm_backward(w, cache)
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-7
    if affine:
        assert rel_error(dgamma, numerical_grad(loss, gamma)) < 1e-7
        assert rel_error(dbeta, numerical_grad(loss, beta)) < 1e-7
    else:
        assert dgamma is None and dbeta is None


def test_batch_norm_cache_holds_only_statistics(rng):
    x = rng.standard_normal((16, 8, 4, 4)).astype(np.float32)
    _, cache = nn.batch_norm(x, np.ones(8, np.float32), None, None, None)
    assert cache.x is x and cache.nbytes == 16 * 8


def test_batchnorm_layer_grads_in_place_with_an_optimizer(rng):
    bn = nn.BatchNorm(6, dtype=np.float32)
    grads = bn.grads
    opt = fastopt.SGD(bn.params, lr=0.1)
    x = rng.standard_normal((32, 6, 5, 5)).astype(np.float32)
    bn.forward(x)
    dx = bn.backward(rng.standard_normal(x.shape).astype(np.float32))
    assert dx.shape == x.shape and bn.grads[0] is grads[0] and np.any(grads[0] != 0)
    gamma_before = bn.gamma.copy()
    opt.step(bn.grads)
    np.testing.assert_allclose(bn.gamma, gamma_before - np.float32(0.1) * grads[0], rtol=1e-6)
    assert bn.num_batches_tracked == 1
    bn.forward(x, training=False)
    assert bn.num_batches_tracked == 1
    plain = nn.BatchNorm(6, affine=False)
    assert plain.params == [] and plain.grads == []


def test_batchnorm_layer_state_dict_exact_resume(rng):
    xs = [rng.standard_normal((10, 3)) * (k + 1) for k in range(4)]
    a = nn.BatchNorm(3, momentum=None)
    for x in xs[:2]:
        a.forward(x)
        a.backward(np.ones_like(x))
        a.gamma -= 0.1 * a.dgamma
    state = a.state_dict()
    b = nn.BatchNorm(3, momentum=None)
    b.load_state_dict(state)
    for x in xs[2:]:
        ya, yb = a.forward(x), b.forward(x)
        assert ya.tobytes() == yb.tobytes()
    assert a.running_var.tobytes() == b.running_var.tobytes()
    assert b.num_batches_tracked == a.num_batches_tracked == 4
    np.testing.assert_allclose(a.running_mean, np.mean([x.mean(0) for x in xs], 0), rtol=1e-12)
    bad = dict(state, gamma=np.ones(4))
    before = b.state_dict()
    with pytest.raises(ValueError, match="gamma"):
        b.load_state_dict(bad)
    assert all(np.array_equal(before[k], v) for k, v in b.state_dict().items())


def test_batchnorm_layer_rejects_bad_construction():
    with pytest.raises(ValueError, match=r"^num_features: expected an int in \[1, inf\), got 0"):
        nn.BatchNorm(0)
    with pytest.raises(TypeError, match="^num_features: expected an int, got True"):
        nn.BatchNorm(True)
    with pytest.raises(TypeError, match="^dtype: expected one of the dtypes float32, float64"):
        nn.BatchNorm(3, dtype=np.float16)
    with pytest.raises(TypeError, match="^affine: expected True or False"):
        nn.BatchNorm(3, affine=1)
    with pytest.raises(ValueError, match="^convention: expected one of 'torch', 'cs231n'"):
        nn.BatchNorm(3, convention="keras")
    with pytest.raises(ValueError, match=r"^momentum: expected a value in \[0, 1\]"):
        nn.BatchNorm(3, momentum=2.0)
    with pytest.raises(ValueError, match="^momentum: expected a number with convention='cs231n'"):
        nn.BatchNorm(3, momentum=None, convention="cs231n")
    with pytest.raises(RuntimeError):
        nn.BatchNorm(3).backward(np.ones((2, 3)))
    bn = nn.BatchNorm(3)
    with pytest.raises(TypeError, match="dtype float64"):
        bn.forward(np.ones((4, 3), np.float32))
    assert bn.num_batches_tracked == 0


# -- against torch (optional) ----------------------------------------------------------------

@pytest.mark.parametrize("shape", [(64, 32), (8, 4, 6, 5)], ids=str)
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_batch_norm_matches_torch(shape, dtype_name, rng):
    torch = pytest.importorskip("torch")
    dtype = np.dtype(dtype_name)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    gamma, beta = rng.uniform(0.5, 1.5, c).astype(dtype), rng.standard_normal(c).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    trm, trv = torch.zeros(c, dtype=getattr(torch, dtype_name)), torch.ones(c, dtype=getattr(torch, dtype_name))
    tx = torch.tensor(x, requires_grad=True)
    tg, tb = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    for training in (True, False):
        y, cache = nn.batch_norm(x, gamma, beta, rm, rv, training, 0.1, 1e-5)
        ty = torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training, 0.1, 1e-5)
        ty.backward(torch.tensor(dy))
        dx, dgamma, dbeta = nn.batch_norm_backward(dy, cache)
        np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
        np.testing.assert_allclose(rm, trm.numpy(), **tol)
        np.testing.assert_allclose(rv, trv.numpy(), **tol)
        np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)
        np.testing.assert_allclose(dgamma, tg.grad.numpy(), rtol=tol["rtol"], atol=10 * tol["atol"])
        np.testing.assert_allclose(dbeta, tb.grad.numpy(), rtol=tol["rtol"], atol=10 * tol["atol"])
        for t in (tx, tg, tb):
            t.grad = None


def test_batchnorm_layer_matches_torch_module_over_steps(rng):
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm(5, momentum=None)
    theirs = torch.nn.BatchNorm1d(5, momentum=None, dtype=torch.float64)
    for _ in range(3):
        x = rng.standard_normal((20, 5)) * 3
        np.testing.assert_allclose(ours.forward(x), theirs(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
    assert ours.num_batches_tracked == int(theirs.num_batches_tracked)


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_dropout_statistics_match_torch(p):
    torch = pytest.importorskip("torch")
    n = 400_000
    ours, _ = nn.dropout(np.ones(n, np.float32), p, seed=1)
    theirs = torch.nn.functional.dropout(torch.ones(n), p, training=True).numpy()
    assert set(np.unique(ours)) == set(np.unique(theirs))  # {0, 1/(1-p)} in float32
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(np.mean(ours != 0) - np.mean(theirs != 0)) < 6 * sigma


def test_seeds_and_counts_follow_the_package_rules():
    """fastopt._validation: a 0-d array is its scalar, an integral float an int, a state may
    be any mapping; bool is never a number."""
    x = np.ones(64)
    y_ref, _ = nn.dropout(x, 0.5, seed=7, stream=2)
    for seed, stream in [(np.array(7), np.uint8(2)), (7.0, 2.0)]:
        y, mask = nn.dropout(x, 0.5, seed=seed, stream=stream)
        np.testing.assert_array_equal(y, y_ref)
        assert type(mask.seed) is int and mask.seed == 7
    assert nn.Dropout(0.5, seed=np.array(7)).seed == 7
    with pytest.raises(TypeError, match="^seed: expected None, a numpy Generator or an int"):
        nn.Dropout(0.5, seed=True)
    d = nn.Dropout(0.5, seed=1)
    d.load_state_dict(types.MappingProxyType({"p": 0.25, "seed": 5.0, "stream": np.int64(3)}))
    assert (d.p, d.seed, d.stream) == (0.25, 5, 3) and type(d.seed) is int
    bn = nn.BatchNorm(3.0)
    assert bn.num_features == 3 and type(bn.num_features) is int
    bn.load_state_dict(dict(bn.state_dict(), num_batches_tracked=4.0))
    assert bn.num_batches_tracked == 4 and type(bn.num_batches_tracked) is int
