"""One torch thread for every test here (torch's pool would fight fastopt's on 2 cores);
nothing to do where torch is not installed (test_import.py runs without it)."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _torch_one_thread():
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
