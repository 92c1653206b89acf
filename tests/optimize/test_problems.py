"""Checks of the test-function collection in ``fastopt.optimize.problems``."""
import zlib

import numpy as np
import pytest

from fastopt.optimize.problems import PROBLEMS, get_problem, problem_names

NAMES = problem_names()


def _fd_gradient(fun, x, rel=3e-4):
    """Fourth-order central differences (error O(h^4)), one coordinate at a time."""
    g = np.empty_like(x)
    for i in range(x.size):
        h = rel * max(1.0, abs(x[i]))
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (8 * (fun(x + e) - fun(x - e)) - (fun(x + 2 * e) - fun(x - 2 * e))) / (12 * h)
    return g


def test_collection_size():
    assert len(PROBLEMS) >= 25
    for required in ["ext_rosenbrock", "ext_white_holst", "ext_beale", "raydan1", "raydan2",
                     "diagonal1", "diagonal2", "diagonal3", "diagonal4", "hager",
                     "gen_tridiagonal1", "ext_tridiagonal1", "qf1", "qf2", "ext_powell",
                     "ext_wood", "ext_hiebert", "cube", "arwhead", "bdqrtic", "edensch",
                     "engval1", "liarwhd", "nondia", "nonscomp", "power", "quartc", "tridia"]:
        assert required in PROBLEMS
    for letter in "abcdefghijkl":
        assert "dixmaan" + letter in PROBLEMS


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_central_differences(name):
    p = get_problem(name)
    n = p.admissible_n(10)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    # a random point near the standard start, so every term is exercised
    x = p.x0(n) + rng.uniform(-0.5, 0.5, size=n)
    f, g = p.fg(x)
    assert isinstance(f, float) and np.isfinite(f)
    assert g.shape == (n,) and g.dtype == np.float64
    g_fd = _fd_gradient(p.fun, x)
    # the O(h^4) stencil is accurate to ~1e-11 relative here; a wrong term shows up far above
    scale = 1e-10 * max(1.0, abs(f)) + 1e-9 * np.abs(g)
    assert np.all(np.abs(g - g_fd) <= scale), (name, np.max(np.abs(g - g_fd)))


@pytest.mark.parametrize("name", NAMES)
def test_sizes_and_dtype(name):
    p = get_problem(name)
    for n in (10, 100, 1000):
        m = p.admissible_n(n)
        assert m <= n and m >= n - 3
        x0 = p.x0(m)
        assert x0.shape == (m,)
        f, g = p.fg(x0)
        assert np.isfinite(f) and np.all(np.isfinite(g))
    x32 = p.x0(p.admissible_n(10), dtype=np.float32)
    f32, g32 = p.fg(x32)
    assert g32.dtype == np.float32
    f64, g64 = p.fg(x32.astype(np.float64))
    assert abs(f32 - f64) <= 1e-5 * max(1.0, abs(f64))
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(g64).max()))


@pytest.mark.parametrize("name", [n for n in NAMES if PROBLEMS[n].xstar is not None])
def test_known_minimiser_is_stationary(name):
    p = get_problem(name)
    for n in (10, 100):
        m = p.admissible_n(n)
        f, g = p.fg(p.xstar(m))
        assert np.max(np.abs(g)) <= 1e-9 * max(1.0, abs(f)), name


def test_bad_n_is_rejected():
    with pytest.raises(ValueError, match="multiple of 4"):
        get_problem("ext_powell").x0(10)
    with pytest.raises(ValueError, match="unknown problem"):
        get_problem("nope")
