"""_kernels.advise_hugepages: huge-page advice for the state tensors fastopt.torch
allocates (contents never change; taken on Linux when THP is not disabled)."""

import sys

import numpy as np
import pytest

from fastopt import _kernels


def _thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.index("[") + 1:text.index("]")]


def test_small_arrays_get_no_advice():
    a = np.ones(_kernels.HUGEPAGE_BYTES // 8 - 1)
    assert _kernels.advise_hugepages(a) is False
    assert (a == 1).all()


@pytest.mark.skipif(not sys.platform.startswith("linux") or _thp_mode() in (None, "never"),
                    reason="transparent huge pages: Linux with THP enabled")
def test_large_arrays_are_advised_and_keep_their_contents():
    a = np.arange(_kernels.HUGEPAGE_BYTES // 4, dtype=np.float32)
    assert _kernels.advise_hugepages(a) is True
    assert np.array_equal(a, np.arange(a.size, dtype=np.float32))


@pytest.mark.skipif(sys.platform.startswith("linux"), reason="advice is taken on Linux")
def test_other_systems_take_no_advice():
    assert _kernels.advise_hugepages(np.ones(_kernels.HUGEPAGE_BYTES)) is False


def test_non_contiguous_arrays_are_refused():
    with pytest.raises(ValueError, match="C-contiguous"):
        _kernels.advise_hugepages(np.ones((2, 2))[:, 0])


# -- large new outputs on whole huge pages (dropout's and batch norm's arrays without out=) --

HUGE = 2 << 20
_LINUX = sys.platform.startswith("linux")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_outputs_start_on_a_huge_page_and_own_their_memory(dtype):
    ref = np.ones((3, _kernels.HUGE_OUTPUT_BYTES // np.dtype(dtype).itemsize // 3 + 5), dtype)
    out = _kernels.new_output_like(ref)
    assert out.shape == ref.shape and out.dtype == ref.dtype and out.flags.c_contiguous
    assert out.flags.owndata and out.base is None and out.flags.writeable
    if _LINUX:
        assert out.ctypes.data % HUGE == 0
    out[...] = ref  # every page writable, up to the last byte
    assert np.array_equal(out, ref)


def test_small_outputs_come_from_numpy():
    ref = np.ones(1000, np.float32)
    out = _kernels.new_output_like(ref)
    assert out.shape == ref.shape and out.dtype == ref.dtype and out.flags.owndata


def test_large_outputs_resize_and_free_through_their_handler():
    n = _kernels.HUGE_OUTPUT_BYTES // 8
    out = _kernels.new_output_like(np.ones(n))
    out[...] = np.arange(n)
    out.resize(2 * n, refcheck=False)   # numpy reallocs through the array's own handler
    assert np.array_equal(out[:n], np.arange(n)) and (out[n:] == 0).all()
    out.resize(n // 3, refcheck=False)
    assert np.array_equal(out, np.arange(n // 3))
    del out   # freed by the handler's free (a wrong free would abort the process)


def _handler_name(a=None):
    try:
        from numpy._core.multiarray import get_handler_name  # numpy 2
    except ImportError:
        from numpy.core.multiarray import get_handler_name  # numpy 1.x
    return get_handler_name(a) if a is not None else get_handler_name()


def test_other_arrays_keep_numpy_s_allocator():
    before = _handler_name()
    big = _kernels.new_output_like(np.ones(_kernels.HUGE_OUTPUT_BYTES // 8))
    if _LINUX:
        assert _handler_name(big) == "fastopt_huge_pages"
    a = np.empty(_kernels.HUGE_OUTPUT_BYTES // 8)  # the handler was set only for that call
    assert _handler_name(a) == _handler_name() == before


def test_dropout_outputs_are_huge_page_outputs():
    from fastopt import nn

    x = np.ones(_kernels.HUGE_OUTPUT_BYTES // 4, np.float32)
    y, mask = nn.dropout(x, p=0.5, seed=0)
    dx = nn.dropout_backward(x, mask)
    if _LINUX:
        assert y.ctypes.data % HUGE == 0 and dx.ctypes.data % HUGE == 0
    assert np.array_equal(dx, y) and y.flags.owndata


@pytest.mark.skipif(not _LINUX, reason="huge-page outputs: Linux")
def test_a_freed_large_output_is_reused_for_the_next_of_its_size():
    _kernels.release_huge_output_cache()
    assert _kernels.huge_output_cache() == (0, 0)
    ref = np.ones(_kernels.HUGE_OUTPUT_BYTES // 4, np.float32)
    a = _kernels.new_output_like(ref)
    where = a.ctypes.data
    del a
    assert _kernels.huge_output_cache() == (1, _kernels.HUGE_OUTPUT_BYTES)
    b = _kernels.new_output_like(ref)
    assert b.ctypes.data == where and _kernels.huge_output_cache() == (0, 0)
    b[...] = 3.0
    c = _kernels.new_output_like(np.ones(_kernels.HUGE_OUTPUT_BYTES // 2, np.float32))
    assert c.ctypes.data != where  # another size: a new block
    del b, c
    _kernels.release_huge_output_cache()
    assert _kernels.huge_output_cache() == (0, 0)


@pytest.mark.skipif(not _LINUX, reason="huge-page outputs: Linux")
@pytest.mark.parametrize("nbytes, mapped", [
    (4_000_000, 2 * HUGE),                       # 1e6 float32: 5% more, whole huge pages
    (HUGE + 4096 * 100, HUGE + 4096 * 100),      # an eighth would be exceeded: 4 KiB pages
    (HUGE + 4096 * 100 + 8, HUGE + 4096 * 101),
    (15 * HUGE + 1, 16 * HUGE), (7 * HUGE + 1, 7 * HUGE + 4096)])
def test_a_large_output_maps_whole_huge_pages_only_when_that_adds_at_most_an_eighth(
        nbytes, mapped):
    _kernels.release_huge_output_cache()
    a = _kernels.new_output_like(np.ones(nbytes, np.uint8))
    assert a.ctypes.data % HUGE == 0
    a[...] = 1  # the last byte is writable
    del a
    assert _kernels.huge_output_cache() == (1, mapped)  # the kept block is what was mapped
    _kernels.release_huge_output_cache()


def test_outputs_below_one_huge_page_come_from_numpy():
    ref = np.ones(_kernels.HUGE_OUTPUT_BYTES - 1, np.uint8)
    assert _handler_name(_kernels.new_output_like(ref)) == _handler_name()
    assert _kernels.HUGE_OUTPUT_BYTES == HUGE


@pytest.mark.skipif(not _LINUX, reason="huge-page outputs: Linux")
def test_the_kept_blocks_are_bounded():
    _kernels.release_huge_output_cache()
    arrays = [_kernels.new_output_like(np.ones(_kernels.HUGE_OUTPUT_BYTES // 8 * k))
              for k in range(1, 2 * _kernels.HUGE_CACHE_BLOCKS + 2)]
    del arrays
    blocks, nbytes = _kernels.huge_output_cache()
    assert 0 < blocks <= _kernels.HUGE_CACHE_BLOCKS and nbytes <= _kernels.HUGE_CACHE_BYTES
    _kernels.release_huge_output_cache()


def test_dropout_results_are_the_same_on_reused_outputs():
    from fastopt import nn

    rng = np.random.default_rng(5)
    x = rng.standard_normal(_kernels.HUGE_OUTPUT_BYTES // 4).astype(np.float32)
    expected = nn.dropout(x, p=0.3, seed=9, out=np.empty_like(x))[0]
    for _ in range(3):  # the second and third calls write blocks the first ones freed
        y, mask = nn.dropout(x, p=0.3, seed=9)
        assert np.array_equal(y, expected)
        dx = nn.dropout_backward(x, mask)
        assert np.array_equal(dx, expected)
        del y, dx
