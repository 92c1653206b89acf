r"""The objective of the distributed L-BFGS tests and benchmark, whole or split by rank:

    f(x) = sum_i a_i r_i^2 / 2 + h(r_i) + kappa (sum_i x_i^2 - sum_i t_i^2)^2 / (4 n),

r = x - t, h(r) = sqrt(1 + r^2) - 1 (pseudo-Huber, written without cancellation). Convex,
not quadratic, conditioned by a_i in [0.1, 10], and every variable is coupled to all others
through sum x^2 -- one reduction per evaluation when x is split. The minimum is f(t) = 0,
so f's rounding stays below the iterations' decrease down to small gradients."""

import numpy as np

KAPPA = 1.0


def data(n, dtype=np.float64, seed=3):
    """(a, t) of the problem of size n."""
    rng = np.random.default_rng(seed)
    a = np.exp(rng.uniform(np.log(0.1), np.log(10.0), n)).astype(dtype)
    t = rng.standard_normal(n).astype(dtype)
    return a, t


def start(n, dtype=np.float64):
    """x0: 1 at even positions, 0 elsewhere."""
    x0 = np.zeros(n, dtype)
    x0[::2] = 1.0
    return x0


def partial_sums(x, a, t):
    """This part's share of f's separable terms and of sum x^2 - sum t^2 (float64)."""
    r = x - t
    huber = r * r / (1.0 + np.sqrt(1.0 + r * r))
    return np.array([0.5 * np.dot(a * r, r) + np.sum(huber, dtype=np.float64),
                     np.dot(x, x) - np.dot(t, t)], dtype=np.float64)


def value_and_gradient(x, a, t, sums, n):
    """f and this part's gradient, from the sums over the whole vector."""
    separable, excess = sums
    f = separable + KAPPA * excess * excess / (4 * n)
    r = x - t
    g = a * r + r / np.sqrt(1.0 + r * r) + (KAPPA * excess / n) * x
    return f, g.astype(x.dtype, copy=False)


def whole(a, t):
    """fun(x) -> (f, g) on the whole vector, in one process."""
    def fun(x):
        return value_and_gradient(x, a, t, partial_sums(x, a, t), a.size)
    return fun


def split(comm, a, t, n):
    """fun(x_local) -> (f, g_local) on this rank's part (a, t) of a problem of size n: one
    Allreduce of the two partial sums per call."""
    from mpi4py import MPI

    def fun(x):
        sums = partial_sums(x, a, t)
        comm.Allreduce(MPI.IN_PLACE, sums)
        return value_and_gradient(x, a, t, sums, n)
    return fun


def bounds(n, fractions):
    """Where the ranks' parts start, from fractions of n."""
    return [round(f * n) for f in fractions]
