"""L-BFGS-B's vector kernels (csrc/bounds.c): time per call over size x dtype x threads.

A mixed box (both bounds, one side, none) around a random point, ``M`` pairs in the
memory as scipy's default ``maxcor``. The Cauchy point is timed with a gradient small
enough that no breakpoint is passed (the common case once the active set has settled) and
with one large enough to pass most of them (the heap scan).
"""

import numpy as np

from .common import DTYPES, THREADS, elements, set_threads

SIZES = ["1e4", "1e5", "1e6"]
M = 10


def _setup(size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    n = elements(size)
    x = rng.standard_normal(n)
    lo = x - rng.uniform(0.1, 2.0, n)
    hi = x + rng.uniform(0.1, 2.0, n)
    lo[1::4] = -np.inf
    hi[2::4] = np.inf
    g = rng.standard_normal(n)
    A = rng.uniform(0.5, 3.0, n)
    S = rng.standard_normal((M + 1, n))
    Y = S * A
    rows = np.arange(M)
    Sd, Yd = S[rows], Y[rows]
    SY = Sd @ Yd.T
    theta = 1.5
    Minv = np.block([[-np.diag(np.diag(SY)), np.tril(SY, -1).T],
                     [np.tril(SY, -1), theta * Sd @ Sd.T]])
    cast = [a.astype(dtype) for a in (x, g, lo, hi, S, Y)]
    return (*cast, rows, theta, np.linalg.inv(Minv))


class _Grid:
    params = (SIZES, DTYPES, THREADS)
    param_names = ["size", "dtype", "threads"]
    timeout = 180

    def setup(self, size, dtype, threads):
        set_threads(threads)
        from fastopt import _kernels

        self.k = _kernels
        (self.x, self.g, self.lo, self.hi, self.S, self.Y, self.rows, self.theta,
         self.M) = _setup(size, dtype)
        self.out = np.empty_like(self.x)
        self.free = (np.arange(self.x.size) % 3 != 0).astype(np.uint8)
        self.g_small = (self.g * 1e-6).astype(self.g.dtype)
        self.g_big = (self.g * 1e3).astype(self.g.dtype)
        self.trial = np.empty_like(self.x)
        self.now = self.free.copy()
        self.before = self.free.copy()


class Projection(_Grid):
    """bounds_step (clip(x + a d)), the projected-gradient norm, the fused direction."""

    def time_bounds_step(self, size, dtype, threads):
        self.k.bounds_step(self.x, 0.5, self.g, self.lo, self.hi, out=self.out)

    def time_projgrad_norm(self, size, dtype, threads):
        self.k.bounds_projgrad_norm(self.x, self.g, self.lo, self.hi)

    def time_direction(self, size, dtype, threads):
        self.k.lbfgsb_direction(self.x, self.g, self.g, self.lo, self.hi, out=self.out)


class Cauchy(_Grid):
    """The generalized Cauchy point with M pairs."""

    def time_cauchy_no_breakpoint(self, size, dtype, threads):
        self.k.lbfgsb_cauchy(self.x, self.g_small, self.lo, self.hi, self.S, self.Y,
                             self.rows, self.theta, self.M)

    def time_cauchy_many_breakpoints(self, size, dtype, threads):
        self.k.lbfgsb_cauchy(self.x, self.g_big, self.lo, self.hi, self.S, self.Y,
                             self.rows, self.theta, self.M)


class Subspace(_Grid):
    """The subspace point (one pass over the M pairs), the same with the search direction
    from it (the driver's kernel) and the free-set gram update."""

    def time_subspace_point(self, size, dtype, threads):
        self.k.lbfgsb_subspace_point(self.x, self.g, self.x, self.lo, self.hi, self.S,
                                     self.Y, self.rows, -0.5, np.full(M, 1e-3),
                                     np.full(M, 1e-3), self.free)

    def time_subspace_direction_all_free(self, size, dtype, threads):
        self.k.lbfgsb_subspace_direction(self.x, self.g, self.x, self.lo, self.hi, self.S,
                                         self.Y, self.rows, -0.5, np.full(M, 1e-3),
                                         np.full(M, 1e-3), None, out=self.out)

    def time_gram_update_one_percent(self, size, dtype, threads):
        w = np.zeros(self.x.size, dtype=np.int8)
        w[::100] = 1
        self.k.lbfgsb_gram_update(self.S, self.Y, self.rows, w)

    def time_subspace_direction_forming_the_cauchy_point(self, size, dtype, threads):
        # the driver's call: the Cauchy point formed in the pass, the unit trial written
        self.k.lbfgsb_subspace_direction(self.x, self.g, None, self.lo, self.hi, self.S,
                                         self.Y, self.rows, -0.5, np.full(M, 1e-3),
                                         np.full(M, 1e-3), self.free, out=self.out,
                                         trial=self.trial, tsum=1e-3)

    def time_gram_change_one_percent(self, size, dtype, threads):
        # the driver's call: the free set's change from two masks (copied back each time)
        np.copyto(self.before, self.now)
        self.before[::100] ^= 1
        self.k.lbfgsb_gram_change(self.S, self.Y, self.rows, self.now, self.before,
                                  self.x.size)


class PairUpdate(_Grid):
    """A new pair formed with its products with the M pairs and the projected-gradient
    norm (one pass), against the kernels it replaces in the driver."""

    def setup(self, size, dtype, threads):
        super().setup(size, dtype, threads)
        self.x0 = (self.x - 1e-3 * self.g).astype(self.x.dtype)
        self.g0 = (0.5 * self.g).astype(self.x.dtype)
        self.rows_new = np.append(self.rows[1:], M)
        self.scan = np.empty(self.k.lbfgsb_scan_bytes(self.x.size), dtype=np.uint8)
        self.scan_free = np.empty(self.x.size, dtype=np.uint8)

    def time_pair_update(self, size, dtype, threads):
        self.k.lbfgsb_pair_update(self.x, self.x0, self.g, self.g0, self.lo, self.hi, self.S,
                                  self.Y, self.rows_new)

    def time_pair_update_with_the_cauchy_scan(self, size, dtype, threads):
        # the driver's call: the Cauchy point's first pass in the same pass, the path's
        # direction kept in cache
        self.k.lbfgsb_pair_update(self.x, self.x0, self.g, self.g0, self.lo, self.hi, self.S,
                                  self.Y, self.rows_new, None, False, scan=self.scan,
                                  free=self.scan_free)

    def time_pair_then_dots_then_projgrad(self, size, dtype, threads):
        self.k.lbfgs_pair(self.x, self.x0, self.g, self.g0, self.S[M], self.Y[M])
        self.k.lbfgsb_pair_dots(self.S, self.Y, self.rows_new, M, None, self.g)
        self.k.bounds_projgrad_norm(self.x, self.g, self.lo, self.hi)
