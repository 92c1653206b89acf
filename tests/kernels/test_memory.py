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
