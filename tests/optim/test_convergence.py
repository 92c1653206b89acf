"""The cs231n assignment's update formulas reproduced through fastopt, and convergence smoke
tests (a 10-D ill-conditioned quadratic and the 2-D Rosenbrock function)."""

import numpy as np
import pytest

import fastopt


def rel_error(x, y):
    """cs231n's relative error."""
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


# -- cs231n (assignment 2, optim.py), transcribed ---------------------------------------------

N, D = 4, 5
W = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
DW = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)


def cs231n_sgd_momentum(w, dw, config):
    v = config["momentum"] * config["velocity"] - config["learning_rate"] * dw
    return w + v, v


def cs231n_rmsprop(w, dw, config):
    cache = config["decay_rate"] * config["cache"] + (1 - config["decay_rate"]) * dw ** 2
    return w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"]), cache


def cs231n_adam(w, dw, config):
    t = config["t"] + 1  # incremented before use
    m = config["beta1"] * config["m"] + (1 - config["beta1"]) * dw
    v = config["beta2"] * config["v"] + (1 - config["beta2"]) * dw ** 2
    mt = m / (1 - config["beta1"] ** t)
    vt = v / (1 - config["beta2"] ** t)
    return w - config["learning_rate"] * mt / (np.sqrt(vt) + config["epsilon"]), m, v, t


def _with_state(opt, state):
    sd = opt.state_dict()
    sd["state"] = {0: state}
    opt.load_state_dict(sd)


def test_cs231n_sgd_momentum():
    velocity = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    config = dict(learning_rate=1e-3, momentum=0.9, velocity=velocity)
    expected_w, expected_v = cs231n_sgd_momentum(W, DW, config)
    # cs231n's velocity is v = mu*v - lr*dw, w += v; torch's (and fastopt's) buffer is
    # b = mu*b + dw, w -= lr*b. With constant lr, v = -lr*b: start from b = -v/lr.
    w = W.copy()
    opt = fastopt.SGD([w], lr=1e-3, momentum=0.9)
    _with_state(opt, {"momentum_buffer": -velocity / 1e-3})
    opt.step([DW.copy()])
    assert rel_error(w, expected_w) < 1e-8
    assert rel_error(-1e-3 * opt.state[0]["momentum_buffer"], expected_v) < 1e-8


def test_cs231n_rmsprop():
    cache = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    config = dict(learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8, cache=cache)
    expected_w, expected_cache = cs231n_rmsprop(W, DW, config)
    # cs231n adds eps outside the square root, as torch does: eps_in_sqrt=False (the
    # default); decay_rate is RMSprop's alpha; its cache is the square_avg state.
    w = W.copy()
    opt = fastopt.RMSprop([w], lr=1e-2, alpha=0.99, eps=1e-8, eps_in_sqrt=False)
    _with_state(opt, {"step": 0, "square_avg": cache.copy()})
    opt.step([DW.copy()])
    assert rel_error(w, expected_w) < 1e-8
    assert rel_error(opt.state[0]["square_avg"], expected_cache) < 1e-8


def test_cs231n_adam():
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    config = dict(learning_rate=1e-2, beta1=0.9, beta2=0.999, epsilon=1e-8, m=m, v=v, t=5)
    expected_w, expected_m, expected_v, t = cs231n_adam(W, DW, config)
    # cs231n's t is incremented before use, like fastopt's per-parameter step: a state
    # with step = 5 makes this the 6th update. Its eps is added to sqrt(v / (1 - beta2^t)),
    # i.e. to the bias-corrected root, which is fastopt's and torch's placement.
    w = W.copy()
    opt = fastopt.Adam([w], lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    _with_state(opt, {"step": 5, "exp_avg": m.copy(), "exp_avg_sq": v.copy()})
    opt.step([DW.copy()])
    assert int(opt.state[0]["step"]) == t == 6
    assert rel_error(w, expected_w) < 1e-8
    assert rel_error(opt.state[0]["exp_avg"], expected_m) < 1e-8
    assert rel_error(opt.state[0]["exp_avg_sq"], expected_v) < 1e-8


def test_cs231n_adam_through_the_functional_kernel():
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    config = dict(learning_rate=1e-2, beta1=0.9, beta2=0.999, epsilon=1e-8, m=m, v=v, t=5)
    expected_w = cs231n_adam(W, DW, config)[0]
    w = W.copy()
    fastopt.kernels.adam_step(w, DW, m.copy(), v.copy(), step=6, lr=1e-2)
    assert rel_error(w, expected_w) < 1e-8


# -- convergence smoke -------------------------------------------------------------------------

LAMBDA = np.logspace(0, 2, 10)  # eigenvalues 1 .. 100: condition number 100


def quadratic(x):
    return 0.5 * np.sum(LAMBDA * x * x), LAMBDA * x


def rosenbrock(z):
    x, y = z
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2, \
        np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


# (optimizer, tuned options, steps, quadratic: f below, Rosenbrock: max |x - 1| below).
# Tuned by a small grid search; the schedules are plain decays of the step count.
CONVERGENCE = [
    ("SGD", dict(lr=1e-3, momentum=0.95, nesterov=True), 3000, 1e-20, 1e-8),
    ("Adam", dict(lr=0.05), 3000, 1e-20, 1e-6),
    ("AdamW", dict(lr=0.05, weight_decay=1e-4), 3000, 1e-20, 2e-3),  # decay biases x*
    ("Adagrad", dict(lr=1.0), 10000, 1e-20, 2e-3),
    ("RMSprop", dict(lr=lambda s: 3e-3 * 0.998 ** s, momentum=0.9), 3000, 1e-8, 1e-5),
    ("Adadelta", dict(lr=lambda s: 0.999 ** s, rho=0.9), 5000, 1e-8, 2e-2),
]


@pytest.mark.parametrize("case", CONVERGENCE, ids=[c[0] for c in CONVERGENCE])
def test_converges_on_quadratic_and_rosenbrock(case):
    name, options, steps, quad_tol, rosen_tol = case
    for fun, x0, check in ((quadratic, np.ones(10), lambda x: quadratic(x)[0] < quad_tol),
                           (rosenbrock, np.array([-1.2, 1.0]),
                            lambda x: np.abs(x - 1).max() < rosen_tol)):
        x = x0.copy()
        opt = getattr(fastopt, name)([x], **options)
        for _ in range(steps):
            opt.step([fun(x)[1]])
        assert check(x), (name, fun.__name__, x, fun(x)[0])
