"""Fuzzing of the L-BFGS kernels beyond the spec table (fuzz_specs.LINALG_KERNELS).

The table checks lbfgs_gram and lbfgs_vf_direction on arbitrary inputs (the
inner-product tables need not come from S and Y there). Here the tables come from real
correction pairs, as fastopt.minimize builds them: the vector-free direction must then be
the plain two-loop direction (two_loop_numpy, and the lbfgs_two_loop kernel) for the same
pairs. Then regressions of boundary bugs the fuzzing found.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastopt
from fastopt import _kernels
from fastopt.optimize.lbfgs import two_loop_numpy
from fastopt_testing.fuzz_harness import Snapshot, assert_names, fuzz_settings

TOL = {np.float32: 1e-5, np.float64: 1e-12}


@st.composite
def pair_rings(draw):
    """(S, Y, p, slots, count, newest, rows oldest first): pairs with s.y > 0 (y = A s,
    A diagonal in [0.5, 3], plus a little noise)."""
    dtype = draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    n = draw(st.integers(1, 40), label="n")
    slots = draw(st.integers(1, 6), label="slots")
    count = draw(st.integers(0, slots), label="count")
    newest = draw(st.integers(0, slots - 1), label="newest")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    A = rng.uniform(0.5, 3.0, n)
    S = rng.standard_normal((slots, n))
    Y = S * A + 0.05 * rng.standard_normal((slots, n)) * np.abs(S)
    p = rng.standard_normal(n)
    rows = [(newest - count + 1 + j) % slots for j in range(count)]
    return S.astype(dtype), Y.astype(dtype), p.astype(dtype), count, newest, rows


def _tables(S, Y, p, rows):
    """rho, SY, YY, Sp, Yp for the pairs `rows` (oldest first), from lbfgs_gram the way
    LbfgsMemory builds them: one call per newer pair j gives s_i.y_j and y_i.y_j."""
    o = np.array(rows, dtype=np.int64)
    k = o.size
    SY, YY = np.zeros((k, k)), np.zeros((k, k))
    for j in range(k):
        out = _kernels.lbfgs_gram(S, Y, o, Y[o[j]], p)
        SY[:, j], YY[:, j] = out[0:4 * k:4], out[1:4 * k:4]
    out = _kernels.lbfgs_gram(S, Y, o, None, p)
    Sp, Yp = out[2:4 * k:4], out[3:4 * k:4]
    S64, Y64, p64 = (a.astype(np.float64) for a in (S, Y, p))
    scale = np.abs(S64[o]) @ np.abs(Y64[o]).T
    np.testing.assert_allclose(SY, S64[o] @ Y64[o].T, rtol=0, atol=1e-12 * scale.max(
        initial=0.0) + 1e-300)
    rho = 1.0 / np.diag(SY).copy()
    return rho, SY, YY, Sp.copy(), Yp.copy()


@fuzz_settings(1.0)
@given(ring=pair_rings(), gamma=st.floats(0.1, 2.0), negate=st.booleans())
def test_vf_direction_equals_the_two_loop_direction(ring, gamma, negate):
    S, Y, p, count, newest, rows = ring
    dtype = S.dtype.type
    rho, SY, YY, Sp, Yp = _tables(S, Y, p, rows)
    rho_ring = np.full(S.shape[0], np.nan)
    rho_ring[rows] = rho
    S64, Y64, p64 = (a.astype(np.float64) for a in (S, Y, p))
    ref = two_loop_numpy(p64, S64, Y64, rho_ring, rows, gamma) if count else gamma * p64
    if negate:
        ref = -ref
    snap = Snapshot([S, Y, p, rho, SY, YY, Sp, Yp])
    vf = _kernels.lbfgs_vf_direction(p, S, Y, np.array(rows, dtype=np.int64), rho, SY, YY,
                                     Sp, Yp, gamma, negate=negate)
    tl = _kernels.lbfgs_two_loop(p, S, Y, rho_ring, gamma, count, newest, negate=negate)
    assert snap.unchanged()
    tol = TOL[dtype]
    for name, got in (("lbfgs_vf_direction", vf), ("lbfgs_two_loop", tl)):
        assert got.dtype == dtype and got.shape == p.shape, name
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max(),
                                   err_msg=name)


# -- regressions: boundary bugs found by fuzzing (fixed) ------------------------------------


def test_two_loop_refuses_out_overlapping_rho():
    rng = np.random.default_rng(0)
    n = 6
    S, Y, g = rng.uniform(-1, 1, (3, n)), rng.uniform(-1, 1, (3, n)), rng.uniform(-1, 1, n)
    base = np.zeros(3 + n)
    rho, out = base[:3], base[1:1 + n]  # out starts at rho[1]
    rho[:] = [0.5, 0.6, 0.7]
    snap = Snapshot([S, Y, g, base])
    with pytest.raises(ValueError) as info:
        _kernels.lbfgs_two_loop(g, S, Y, rho, 1.0, 3, 2, out=out)
    assert_names(str(info.value), {"out", "rho"}, "lbfgs_two_loop(out overlapping rho)")
    assert snap.unchanged()


_ROWS_IN_OUT = textwrap.dedent("""
    import numpy as np
    import fastopt
    from fastopt import _kernels
    n = 300_000  # more than one range of the serial pass (64 blocks of 4096)
    rng = np.random.default_rng(0)
    S, Y, p = rng.uniform(-1, 1, (3, n)), rng.uniform(-1, 1, (3, n)), rng.uniform(-1, 1, n)
    out = np.zeros(n)
    rows = out[:2].view(np.int64)  # the row indices live in out's first 16 bytes
    rows[:] = [0, 1]
    tables = (np.array([0.5, 0.7]), 0.3 * np.eye(2), np.eye(2), np.array([0.1, 0.2]),
              np.array([0.3, 0.1]))
    with fastopt.threads(1):
        try:
            _kernels.lbfgs_vf_direction(p, S, Y, rows, *tables, 1.0, out=out)
        except ValueError as exc:
            print("ValueError:", exc)
        else:
            print("no error")
""")


def test_vf_direction_refuses_out_overlapping_rows():
    # in a subprocess: the bug crashes the interpreter
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fastopt.__file__)))
    proc = subprocess.run([sys.executable, "-c", _ROWS_IN_OUT], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"crashed with return code {proc.returncode}"
    message = proc.stdout.strip()
    assert message.startswith("ValueError: "), message
    assert_names(message[len("ValueError: "):], {"out", "rows"},
                 "lbfgs_vf_direction(out overlapping rows)")
