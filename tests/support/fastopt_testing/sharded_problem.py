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


class Part:
    """One part (a, t) of the problem of size n, with work arrays reused from call to call
    (fresh 8 MB temporaries per operation made page faults dominate at n = 1e7)."""

    def __init__(self, a, t, n):
        self.a, self.t, self.n = a, t, n
        self.tt = float(np.dot(t, t))
        self.r, self.q, self.w, self.u = (np.empty_like(t) for _ in range(4))

    def sums(self, x):
        """This part's share of f's separable terms and of sum x^2 - sum t^2 (float64)."""
        r, q, w, u = self.r, self.q, self.w, self.u
        np.subtract(x, self.t, out=r)
        np.multiply(r, r, out=q)
        np.add(q, 1.0, out=w)
        np.sqrt(w, out=w)                         # sqrt(1 + r^2)
        np.add(w, 1.0, out=u)
        np.divide(q, u, out=u)                    # h(r) = r^2 / (1 + sqrt(1 + r^2))
        return np.array([0.5 * np.dot(self.a, q) + np.sum(u, dtype=np.float64),
                         np.dot(x, x) - self.tt], dtype=np.float64)

    def value_and_gradient(self, x, sums):
        """f and this part's gradient at the x of the last :meth:`sums`, from the sums over
        the whole vector."""
        separable, excess = sums
        f = separable + KAPPA * excess * excess / (4 * self.n)
        g = np.multiply(self.a, self.r)
        np.divide(self.r, self.w, out=self.u)     # h'(r)
        g += self.u
        np.multiply(x, KAPPA * excess / self.n, out=self.u)
        g += self.u
        return float(f), g


def whole(a, t):
    """fun(x) -> (f, g) on the whole vector, in one process."""
    part = Part(a, t, a.size)

    def fun(x):
        return part.value_and_gradient(x, part.sums(x))
    return fun


def split(comm, a, t, n):
    """fun(x_local) -> (f, g_local) on this rank's part (a, t) of a problem of size n: one
    Allreduce of the two partial sums per call."""
    from mpi4py import MPI
    part = Part(a, t, n)

    def fun(x):
        sums = part.sums(x)
        comm.Allreduce(MPI.IN_PLACE, sums)
        return part.value_and_gradient(x, sums)
    return fun


def bounds(n, fractions):
    """Where the ranks' parts start, from fractions of n."""
    return [round(f * n) for f in fractions]
