"""fastopt._placement: state arrays placed away from the other streams of a step (4K aliasing)."""

import numpy as np
import pytest

import fastopt
from fastopt import _placement as placement

PAGE = placement.PAGE


def _gap(a: int, b: int) -> int:
    """Circular distance of two addresses' page offsets."""
    d = (a - b) % PAGE
    return min(d, PAGE - d)


# The gaps the placement guarantees: the first state sits mid-way in the largest arc left by
# 2 addresses (>= 2048 bytes), the second in the largest left by 3 (>= 4096 / 3); each to a
# 64-byte line of the param's alignment.
FIRST_GAP, SECOND_GAP = 1024 - 32, 4096 // 6 - 32


def _large(n: int = 1 << 16, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(n).astype(dtype)


def test_best_offset_is_farthest_and_keeps_the_line_alignment():
    assert placement.best_offset(64, [64]) == 2112        # half a page from p and g
    assert placement.best_offset(64, [64, 2112]) == 1088  # the lower of two equal gaps
    for like in (0, 16, 64, 4000, 12345 * 8):
        for avoid in ([], [like + 100], [like, like + 2048, 8 * 7]):
            c = placement.best_offset(like, avoid)
            assert 0 <= c < PAGE and (c - like) % 64 == 0
            taken = [like, *avoid]
            best = max(min(_gap(x, t) for t in taken) for x in range(like % 64, PAGE, 64))
            assert min(_gap(c, t) for t in taken) == best


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_placed_full_lands_where_asked_and_holds_fill(dtype):
    p = _large(dtype=dtype).reshape(256, -1)
    avoid = [p.ctypes.data + 96]
    s = placement.placed_full(p, 0.5, avoid)
    assert s.shape == p.shape and s.dtype == p.dtype and s.flags.c_contiguous
    assert s.flags.writeable and s.flags.aligned
    assert s.ctypes.data % PAGE == placement.best_offset(p.ctypes.data, avoid)
    assert np.all(s == dtype(0.5))
    small = placement.placed_full(p[:2], 1.0)
    assert small.base is None and np.all(small == 1.0)  # small arrays: plain np.full


def test_slot_offsets_pad_only_the_placed_tensors():
    offsets, total = placement.slot_offsets([10, 5000, 3], 4, 16, [None, 1024, None])
    assert offsets[0] == 0 and (offsets[1] * 4) % PAGE == 1024
    assert offsets[2] == offsets[1] + 5008 and total == offsets[2] + 16


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_adam_state_is_placed_and_steps_as_before(dtype):
    p, g = _large(dtype=dtype), _large(dtype=dtype) * dtype(1e-3)
    q = p.copy()
    opt = fastopt.Adam([p], lr=1e-3)
    opt.step([g])
    m, v = opt.state[0]["exp_avg"], opt.state[0]["exp_avg_sq"]
    for s in (m, v):
        assert (s.ctypes.data - p.ctypes.data) % 64 == 0
    assert min(_gap(m.ctypes.data, x) for x in (p.ctypes.data, g.ctypes.data)) >= FIRST_GAP
    assert min(_gap(v.ctypes.data, x) for x in (p.ctypes.data, g.ctypes.data, m.ctypes.data)) \
        >= SECOND_GAP
    # the same update as on plainly allocated state (the kernel reads values, not places)
    mq, vq = np.zeros_like(q), np.zeros_like(q)
    fastopt.kernels.adam_step(q, g, mq, vq, step=1, lr=1e-3)
    assert np.array_equal(p, q) and np.array_equal(m, mq) and np.array_equal(v, vq)


def test_loaded_state_is_placed_and_equal():
    p, g = _large(), _large() * np.float32(1e-3)
    opt = fastopt.Adam([p], lr=1e-3)
    opt.step([g])
    saved = {k: np.array(v) for k, v in opt.state[0].items()}
    other = fastopt.Adam([q := p.copy()], lr=1e-3)
    other.load_state_dict(opt.state_dict())
    m, v = other.state[0]["exp_avg"], other.state[0]["exp_avg_sq"]
    assert _gap(m.ctypes.data, q.ctypes.data) >= 2048 - 32  # only p is known at load
    assert min(_gap(v.ctypes.data, x) for x in (q.ctypes.data, m.ctypes.data)) >= FIRST_GAP
    assert all(np.array_equal(other.state[0][k], a) for k, a in saved.items())
    assert not np.shares_memory(m, opt.state[0]["exp_avg"])


def test_torch_adam_state_is_placed():
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    p = torch.nn.Parameter(torch.randn(1 << 16))
    p.grad = torch.randn(1 << 16)
    small = torch.nn.Parameter(torch.randn(10))
    small.grad = torch.randn(10)
    before = p.detach().numpy().copy()
    opt = ft.Adam([small, p], lr=1e-3)
    opt.step()
    m, v = opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]
    ptrs = [p.data_ptr(), p.grad.data_ptr()]
    assert min(_gap(m.data_ptr(), x) for x in ptrs) >= FIRST_GAP
    assert min(_gap(v.data_ptr(), x) for x in [*ptrs, m.data_ptr()]) >= SECOND_GAP
    assert (m.data_ptr() - p.data_ptr()) % 64 == 0 and (v.data_ptr() - p.data_ptr()) % 64 == 0
    g = p.grad.numpy()
    mq, vq = np.zeros_like(g), np.zeros_like(g)
    fastopt.kernels.adam_step(q := before.copy(), g, mq, vq, step=1, lr=1e-3)
    assert np.array_equal(p.detach().numpy(), q)
    assert np.array_equal(m.numpy(), mq) and np.array_equal(v.numpy(), vq)


def test_torch_adam_loaded_state_is_placed():
    # load_state_dict packs a checkpoint's state tensors under 4 MiB as a step packs the
    # state it creates: placed away from the param, its grad and the other state
    torch = pytest.importorskip("torch")
    import copy

    import fastopt.torch as ft

    p = torch.nn.Parameter(torch.randn(1 << 16))
    p.grad = torch.randn(1 << 16)
    theirs = torch.optim.Adam([torch.nn.Parameter(p.detach().clone())], lr=1e-3)
    theirs.param_groups[0]["params"][0].grad = p.grad.clone()
    theirs.step()
    opt = ft.Adam([p], lr=1e-3)
    opt.load_state_dict(copy.deepcopy(theirs.state_dict()))
    m, v = opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]
    ptrs = [p.data_ptr(), p.grad.data_ptr()]
    assert min(_gap(m.data_ptr(), x) for x in ptrs) >= SECOND_GAP
    assert min(_gap(v.data_ptr(), x) for x in [*ptrs, m.data_ptr()]) >= SECOND_GAP
    assert (m.data_ptr() - p.data_ptr()) % 64 == 0 and (v.data_ptr() - p.data_ptr()) % 64 == 0
    assert torch.equal(m, theirs.state[theirs.param_groups[0]["params"][0]]["exp_avg"])
