"""Training problems for the convergence checks of low-precision optimizer state and of
bfloat16 parameters (tests/optim/test_lowprec_convergence.py,
tests/optim/test_bf16params_convergence.py): a 2-layer MLP on scikit-learn's digits and a
large synthetic least-squares problem."""

import numpy as np

import fastopt

#: optimizer name -> (class, options)
OPTIMIZERS = {
    "Adam": (fastopt.Adam, dict(lr=2e-3)),
    "AdamW": (fastopt.AdamW, dict(lr=2e-3, weight_decay=1e-2)),
    "SGD-momentum": (fastopt.SGD, dict(lr=0.05, momentum=0.9)),
}


def digits_data(seed=0):
    """scikit-learn's digits, scaled to [0, 1]: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=seed,
                                              stratify=y)
    return x_tr, y_tr, x_te, y_te


class MLP:
    """64 -> hidden -> 10, ReLU, softmax cross-entropy, float32 math (params may be stored
    as bfloat16: they are decoded to float32 for each pass, the grads are float32)."""

    def __init__(self, d_in, hidden, classes, seed):
        rng = np.random.default_rng(seed)
        self.params = [
            (rng.standard_normal((d_in, hidden)) * np.sqrt(2.0 / d_in)).astype(np.float32),
            np.zeros(hidden, np.float32),
            (rng.standard_normal((hidden, classes)) * np.sqrt(1.0 / hidden)).astype(np.float32),
            np.zeros(classes, np.float32),
        ]

    def weights(self):
        return [np.asarray(p, dtype=np.float32) for p in self.params]

    def scores(self, x):
        w1, b1, w2, b2 = self.weights()
        self._x, self._h = x, np.maximum(x @ w1 + b1, 0)
        return self._h @ w2 + b2

    def loss_grads(self, x, y):
        s = self.scores(x)
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(len(y)), y]).mean()
        d = p
        d[np.arange(len(y)), y] -= 1
        d /= len(y)
        w1, b1, w2, b2 = self.weights()
        dh = (d @ w2.T) * (self._h > 0)
        return float(loss), [self._x.T @ dh, dh.sum(0), self._h.T @ d, d.sum(0)]

    def loss(self, x, y):
        return self.loss_grads(x, y)[0]

    def accuracy(self, x, y):
        return float((self.scores(x).argmax(1) == y).mean())


def train_digits(name, state_dtype, epochs=40, seed=0, batch=32, param_rounding=None):
    """Final (training loss, test accuracy) of the MLP trained with optimizer `name`, its
    state stored as `state_dtype` (every state array, whatever its size); with a
    `param_rounding` ("stochastic", "nearest") the params are bfloat16, rounded so."""
    x_tr, y_tr, x_te, y_te = digits_data()
    model = MLP(64, 128, 10, seed)
    cls, options = OPTIMIZERS[name]
    if param_rounding is not None:
        import ml_dtypes

        model.params = [p.astype(ml_dtypes.bfloat16) for p in model.params]
        options = dict(options, param_rounding=param_rounding)
    opt = cls(model.params, state_dtype=state_dtype, min_lowprec_size=0, **options)
    rng = np.random.default_rng(seed + 1)
    with fastopt.threads(1):
        for _ in range(epochs):
            order = rng.permutation(len(x_tr))
            for k in range(0, len(order) - batch + 1, batch):
                idx = order[k:k + batch]
                opt.step(model.loss_grads(x_tr[idx], y_tr[idx])[1])
    return model.loss(x_tr, y_tr), model.accuracy(x_te, y_te)


def synthetic_problem(n_features=2048, n_outputs=512, n_rows=4096, seed=0):
    """A noisy linear regression with n_features * n_outputs (1M) weights: (x, y)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, n_features)).astype(np.float32)
    w = (rng.standard_normal((n_features, n_outputs)) / np.sqrt(n_features)).astype(np.float32)
    y = x @ w + np.float32(0.1) * rng.standard_normal((n_rows, n_outputs)).astype(np.float32)
    return x, y


def train_synthetic(name, state_dtype, steps, x, y, batch=256, seed=0, callback=None):
    """Minibatch mean-squared error of a linear model (1M weights) after `steps` steps; the
    final full-data loss."""
    rng = np.random.default_rng(seed)
    w = np.zeros((x.shape[1], y.shape[1]), np.float32)
    cls, options = OPTIMIZERS[name]
    options = dict(options, lr=options["lr"] * (0.5 if name != "SGD-momentum" else 0.02))
    opt = cls([w], state_dtype=state_dtype, **options)
    for t in range(steps):
        idx = rng.integers(0, len(x), batch)
        xb = x[idx]
        r = xb @ w - y[idx]
        opt.step([(xb.T @ r) * np.float32(2.0 / r.size)])
        if callback is not None:
            callback(t, w)
    r = x @ w - y
    return float((r * r).mean())
