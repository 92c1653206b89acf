"""Record torch 2.13's outputs for the torch comparison tests into tests/data/.

    python tools/record_torch_reference.py          # needs torch==2.13.*

Writes

* tests/data/torch_optim.npz: for every case of tests/support/fastopt_testing/torch_reference.py's OPTIM_CASES that
  has a numpy counterpart, each variant (foreach=False, fused where torch has it) and dtype,
  torch.optim's params and state after 200 steps on the deterministic inputs;
* tests/data/torch_schedules.npz: torch's learning rates for the EXACT and RECURSIVE
  scheduler cases (and torch's closed form where it has one), the momentum OneCycleLR and
  CyclicLR cycle (MOMENTUM cases), and ReduceLROnPlateau's lr,
  best, num_bad_epochs and cooldown_counter over fixed metric sequences.

The tests compare fastopt against these files in every run, and, when torch is installed,
check that the installed torch still computes them (tests/optim/test_torch_anchor.py and
tests/test_schedules.py).
"""

from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "src"))

import torch  # noqa: E402

from fastopt_testing import torch_reference as R  # noqa: E402


def record_optim() -> dict[str, np.ndarray]:
    out = {}
    for case in R.OPTIM_CASES:
        if not case.has_numpy:
            continue
        for variant in R.variants_of(case):
            for dtype in R.DTYPES.values():
                key = R.optim_key(case, variant, dtype)
                out.update(R.pack_run(key, R.torch_run(case, variant, dtype)))
    return out


def record_schedules() -> dict[str, np.ndarray]:
    out = {}
    for name, make, _, n in R.EXACT + R.RECURSIVE:
        lrs, sched = R.torch_lrs(make, n)
        out[f"lr|{name}"] = lrs
        closed = R.torch_closed_form(sched, n)
        if closed is not None:
            out[f"closed|{name}"] = closed
    for name, make, _, n, optimizer in R.MOMENTUM:
        out[f"momentum|{name}"] = R.torch_momenta(make, n, optimizer)
    for kw in R.PLATEAU_CASES:
        for field, values in R.torch_plateau(kw).items():
            out[f"plateau|{R.plateau_id(kw)}|{field}"] = values
    return out


def main() -> int:
    if not torch.__version__.startswith(R.TORCH_VERSION):
        print(f"torch {torch.__version__}: the recording is of torch {R.TORCH_VERSION} "
              "(pip install torch==2.13.0)", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    os.makedirs(R.DATA, exist_ok=True)
    version = np.array(torch.__version__)
    for path, arrays in ((R.OPTIM_FILE, record_optim()), (R.SCHEDULES_FILE, record_schedules())):
        np.savez_compressed(path, torch_version=version, **arrays)
        print(f"{os.path.relpath(path, ROOT)}: {len(arrays)} arrays, "
              f"{os.path.getsize(path) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
