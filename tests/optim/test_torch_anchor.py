"""fastopt.optim against torch.optim: 200 steps over three tensors, the last one without a
gradient now and then, torch's single-tensor implementation (foreach=False) and, where torch
has a fused CPU kernel (Adam, AdamW, SGD, Adagrad), fused=True.

Every run compares against torch 2.13's outputs recorded in tests/data/torch_optim.npz (so
the default run, without torch, checks torch's semantics); with torch installed the same
comparisons also run live, and the recording is checked against the installed torch.
"""

import numpy as np
import pytest

import fastopt
from fastopt_testing import torch_reference as R

CASES = [c for c in R.OPTIM_CASES if c.has_numpy]
RUNS = [(c, v, d) for c in CASES for v in R.variants_of(c) for d in R.DTYPES]
RUN_IDS = [f"{c.id}-{v}-{d}" for c, v, d in RUNS]


@pytest.fixture(scope="module")
def recorded():
    return R.load(R.OPTIM_FILE)


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: keep torch's thread pool out of the way
    yield torch
    torch.set_num_threads(before)


@pytest.mark.parametrize("case, variant, dtype", RUNS, ids=RUN_IDS)
def test_matches_recorded_torch(recorded, case, variant, dtype):
    dtype = R.DTYPES[dtype]
    ref = R.unpack_run(recorded, R.optim_key(case, variant, dtype))
    R.assert_same_run(R.run_numpy(case, dtype), ref, dtype, case.id)


def test_every_case_is_recorded(recorded):
    keys = {R.optim_key(c, v, R.DTYPES[d]) for c, v, d in RUNS}
    stored = {name.rsplit("|", 1)[0] for name in recorded.files if name != "torch_version"}
    assert keys == stored  # regenerate with tools/record_torch_reference.py after editing


@pytest.mark.parametrize("case, variant, dtype", RUNS, ids=RUN_IDS)
def test_matches_live_torch(torch, case, variant, dtype):
    dtype = R.DTYPES[dtype]
    R.assert_same_run(R.run_numpy(case, dtype), R.torch_run(case, variant, dtype), dtype,
                      case.id)


@pytest.mark.parametrize("case, variant, dtype", RUNS, ids=RUN_IDS)
def test_recording_is_what_torch_computes(torch, recorded, case, variant, dtype):
    dtype = R.DTYPES[dtype]
    live = R.torch_run(case, variant, dtype)
    ref = R.unpack_run(recorded, R.optim_key(case, variant, dtype))
    R.assert_same_run(live, ref, dtype, case.id)


def test_state_names_match_torch(torch, rng):
    for case in CASES:
        if case.group2 is not None or case.scheduler is not None:
            continue
        options = dict(case.options)
        p = rng.standard_normal(4)
        tp = torch.tensor(p.copy(), requires_grad=True)
        topt = getattr(torch.optim, case.name)([tp], **options)
        cls = getattr(fastopt, case.name)
        if case.name == "Adam" and options.pop("decoupled_weight_decay", False):
            cls = fastopt.AdamW
        opt = cls([p], **options)
        tp.grad = torch.ones(4, dtype=torch.float64)
        topt.step()
        opt.step([np.ones(4)])
        assert set(opt.state.get(0, {})) == set(topt.state[tp]), case.id
