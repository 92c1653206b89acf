"""The quasi-Newton vector kernels (csrc/linalg.c) against the numpy that does the same.

``time_*`` per call over size x dtype x threads (the gate); each class has a numpy twin
(``*Numpy``, threads ignored) so the ratio can be read off at every size. The L-BFGS
memory holds ``M`` pairs, as ``fastopt.minimize``'s default.
"""

import numpy as np

from .common import DTYPES, THREADS, elements, set_threads

SIZES = ["1e4", "1e5", "1e6"]
M = 10


def _vectors(size, dtype, count, seed=0):
    rng = np.random.default_rng(seed)
    n = elements(size)
    return [rng.standard_normal(n).astype(dtype) for _ in range(count)]


def _ring(size, dtype, seed=1):
    """M + 1 rows of pairs with s.y > 0 (y = A s, A > 0 diagonal), the newest in row M-1."""
    rng = np.random.default_rng(seed)
    n = elements(size)
    A = rng.uniform(0.5, 3.0, n)
    S = rng.standard_normal((M + 1, n)).astype(dtype)
    Y = (S * A).astype(dtype)
    rho = 1.0 / np.einsum("ij,ij->i", S.astype(np.float64), Y.astype(np.float64))
    return S, Y, rho


class _Grid:
    params = (SIZES, DTYPES, THREADS)
    param_names = ["size", "dtype", "threads"]
    timeout = 120


class Dot(_Grid):
    """fastopt._kernels.dot: float64 accumulation over fixed blocks."""

    def setup(self, size, dtype, threads):
        set_threads(threads)
        from fastopt import _kernels

        self.dot = _kernels.dot
        self.x, self.y = _vectors(size, dtype, 2)

    def time_dot(self, size, dtype, threads):
        self.dot(self.x, self.y)


class DotNumpy(Dot):
    def time_dot(self, size, dtype, threads):
        np.dot(self.x, self.y)


class LbfgsPair(_Grid):
    """fastopt._kernels.lbfgs_pair: s = x1 - x0, y = g1 - g0, s.y and y.y in one pass."""

    def setup(self, size, dtype, threads):
        set_threads(threads)
        from fastopt import _kernels

        self.pair = _kernels.lbfgs_pair
        self.x1, self.x0, self.g1, self.g0, self.s, self.y = _vectors(size, dtype, 6)

    def time_pair(self, size, dtype, threads):
        self.pair(self.x1, self.x0, self.g1, self.g0, self.s, self.y)


class LbfgsPairNumpy(LbfgsPair):
    def time_pair(self, size, dtype, threads):
        np.subtract(self.x1, self.x0, out=self.s)
        np.subtract(self.g1, self.g0, out=self.y)
        np.dot(self.s, self.y), np.dot(self.y, self.y)


class LbfgsTrial(_Grid):
    """fastopt._kernels.lbfgs_trial: a line-search trial point's candidate pair, g.d, s.y,
    y.y and max|g| in one pass."""

    def setup(self, size, dtype, threads):
        set_threads(threads)
        from fastopt import _kernels

        self.trial = _kernels.lbfgs_trial
        self.x1, self.x0, self.g1, self.g0, self.d, self.s, self.y = _vectors(size, dtype, 7)

    def time_trial(self, size, dtype, threads):
        self.trial(self.x1, self.x0, self.g1, self.g0, self.d, self.s, self.y)


class LbfgsTrialSeparate(LbfgsTrial):
    """The passes lbfgs_trial replaces: dot, lbfgs_pair and the max-norm."""

    def setup(self, size, dtype, threads):
        super().setup(size, dtype, threads)
        from fastopt import _kernels

        self.k = _kernels

    def time_trial(self, size, dtype, threads):
        self.k.dot(self.g1, self.d)
        self.k.lbfgs_pair(self.x1, self.x0, self.g1, self.g0, self.s, self.y)
        self.k.norm_reduce(self.g1, np.inf)


class LbfgsTwoLoop(_Grid):
    """fastopt._kernels.lbfgs_two_loop: d = -H g from M pairs (2M + 1 fused passes)."""

    def setup(self, size, dtype, threads):
        set_threads(threads)
        from fastopt import _kernels

        self.two_loop = _kernels.lbfgs_two_loop
        self.S, self.Y, self.rho = _ring(size, dtype)
        (self.g,) = _vectors(size, dtype, 1)
        self.out = np.empty_like(self.g)

    def time_two_loop(self, size, dtype, threads):
        self.two_loop(self.g, self.S, self.Y, self.rho, 0.5, M, M - 1, out=self.out,
                      negate=True)


class LbfgsTwoLoopNumpy(LbfgsTwoLoop):
    """The textbook recursion in numpy (fastopt.optimize.lbfgs.two_loop_numpy)."""

    def setup(self, size, dtype, threads):
        super().setup(size, dtype, threads)
        from fastopt.optimize.lbfgs import two_loop_numpy

        self.reference = two_loop_numpy

    def time_two_loop(self, size, dtype, threads):
        self.reference(self.g, self.S, self.Y, self.rho, list(range(M)), 0.5)


class LbfgsGram(_Grid):
    """fastopt._kernels.lbfgs_gram: the vector-free form's one pass per new pair, the 4M + 1
    products of the M stored pairs with the new y and the gradient."""

    def setup(self, size, dtype, threads):
        set_threads(threads)
        from fastopt import _kernels

        self.gram = _kernels.lbfgs_gram
        self.S, self.Y, _ = _ring(size, dtype)
        self.rows = np.arange(M)
        (self.g,) = _vectors(size, dtype, 1)

    def time_gram(self, size, dtype, threads):
        self.gram(self.S, self.Y, self.rows, self.Y[M], self.g)


class LbfgsGramNumpy(LbfgsGram):
    """The same products as two matrix-vector products per stored matrix (BLAS)."""

    def time_gram(self, size, dtype, threads):
        S, Y = self.S[:M], self.Y[:M]
        S @ self.Y[M], Y @ self.Y[M], S @ self.g, Y @ self.g, self.g @ self.g


class LbfgsVfDirection(_Grid):
    """fastopt._kernels.lbfgs_vf_direction: the vector-free form's direction, one pass
    forming -gamma g + S a + Y b from the 2M + 1 coefficients."""

    def setup(self, size, dtype, threads):
        set_threads(threads)
        from fastopt import _kernels

        self.direction = _kernels.lbfgs_vf_direction
        self.S, self.Y, rho = _ring(size, dtype)
        (self.g,) = _vectors(size, dtype, 1)
        self.rows = np.arange(M)
        self.rho = rho[:M]
        S64, Y64 = self.S[:M].astype(np.float64), self.Y[:M].astype(np.float64)
        self.SY, self.YY = S64 @ Y64.T, Y64 @ Y64.T
        self.Sg, self.Yg = S64 @ self.g, Y64 @ self.g
        self.out = np.empty_like(self.g)

    def time_direction(self, size, dtype, threads):
        self.direction(self.g, self.S, self.Y, self.rows, self.rho, self.SY, self.YY,
                       self.Sg, self.Yg, 0.5, out=self.out, negate=True)


class LbfgsVfDirectionNumpy(LbfgsVfDirection):
    """The combination as two BLAS products (the coefficients are not the kernel's: only
    the memory traffic compares)."""

    def time_direction(self, size, dtype, threads):
        a = np.full(M, 0.1, self.g.dtype)
        np.subtract(self.S[:M].T @ a + self.Y[:M].T @ a, 0.5 * self.g, out=self.out)


class LbfgsVfDirectionStep(LbfgsVfDirection):
    """lbfgs_vf_direction with ``x``: the same pass also writes the first trial point
    x + d and returns g . d (what the solver calls)."""

    def setup(self, size, dtype, threads):
        super().setup(size, dtype, threads)
        self.x, self.unit = _vectors(size, dtype, 2)

    def time_direction(self, size, dtype, threads):
        self.direction(self.g, self.S, self.Y, self.rows, self.rho, self.SY, self.YY,
                       self.Sg, self.Yg, 0.5, out=self.out, negate=True, x=self.x,
                       x_unit=self.unit)


class LbfgsVfDirectionStepSeparate(LbfgsVfDirectionStep):
    """The passes the fused step replaces: the direction, then axpy and dot."""

    def setup(self, size, dtype, threads):
        super().setup(size, dtype, threads)
        from fastopt import _kernels

        self.k = _kernels

    def time_direction(self, size, dtype, threads):
        self.direction(self.g, self.S, self.Y, self.rows, self.rho, self.SY, self.YY,
                       self.Sg, self.Yg, 0.5, out=self.out, negate=True)
        self.k.axpy(1.0, self.out, self.x, out=self.unit)
        self.k.dot(self.g, self.out)


class BfgsUpdate:
    """The dense BFGS iteration's matrix work: ``symv`` (H y) + ``syr2`` (rank-2 update)
    on an (n, n) float64 inverse Hessian, fastopt's kernels against scipy's BLAS
    (``BfgsUpdateBlas``, the path fastopt took before; BLAS threads as the harness sets)."""

    params = (["100", "1000", "3000"], THREADS)
    param_names = ["n", "threads"]
    timeout = 120

    def setup(self, n, threads):
        set_threads(threads)
        from fastopt import _kernels

        self.k = _kernels
        rng = np.random.default_rng(2)
        m = int(n)
        A = rng.standard_normal((m, m))
        self.H = A @ A.T / m + np.eye(m)
        self.s, self.y = rng.standard_normal(m), rng.standard_normal(m)
        self.out = np.empty(m)

    def time_update(self, n, threads):
        v = self.k.symv(self.H, self.y, out=self.out)
        self.k.syr2(1e-12, self.s, v, self.H)

    def time_update_fused(self, n, threads):
        # what BfgsMemory does per iteration: H y, then the update fused with H+ g
        v = self.k.symv(self.H, self.y, out=self.out)
        self.k.syr2_symv(1e-12, self.s, v, self.H, self.y)


class BfgsUpdateBlas(BfgsUpdate):
    def setup(self, n, threads):
        super().setup(n, threads)
        from scipy.linalg.blas import dsymv, dsyr2

        self.dsymv, self.dsyr2 = dsymv, dsyr2
        self.H = np.asfortranarray(self.H)

    def time_update(self, n, threads):
        v = self.dsymv(1.0, self.H, self.y)
        self.H = self.dsyr2(1e-12, self.s, v, a=self.H, overwrite_a=1)

    def time_update_fused(self, n, threads):
        # BLAS has no fused form: the update, then the next direction's product
        self.time_update(n, threads)
        self.dsymv(1.0, self.H, self.y)
