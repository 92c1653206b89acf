"""The README's MPI scripts (the ```py blocks that start with ``# NAME.py -- mpirun -n K
python NAME.py``) run as written under ``mpirun -n 2`` (skipped without mpi4py or mpirun)."""

import os
import pickle
import re

import numpy as np
import pytest

import fastopt
from fastopt_testing import paths
from fastopt_testing.mpi_launch import run_mpi

README = str(paths.README)
SCRIPT = re.compile(r"```py\n# (\w+\.py) -- (mpirun -n \d+ python \1)\n(.*?)```", re.S)


def _scripts():
    if not os.path.isfile(README):
        return {}
    with open(README, encoding="utf-8") as f:
        return {name: (command, body) for name, command, body in SCRIPT.findall(f.read())}


SCRIPTS = _scripts()


@pytest.mark.skipif(not SCRIPTS, reason="needs the source tree's README.md")
def test_the_readme_has_both_mpi_scripts():
    assert set(SCRIPTS) == {"dp_train.py", "lbfgs_split.py"}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_readme_mpi_script_runs(name, tmp_path, monkeypatch):
    _, body = SCRIPTS[name]
    script = tmp_path / name
    script.write_text(body)
    monkeypatch.chdir(tmp_path)          # what the script writes lands here
    out, _ = run_mpi(str(script), 2, timeout=120)
    if name == "lbfgs_split.py":
        assert "terminated successfully" in out
    else:
        per_rank = dict(re.findall(r"rank (\d): (\d+) bytes", out))
        # Adam's two arrays over the 21 parameters, split; a step counter per parameter each
        assert sorted(per_rank) == ["0", "1"]
        assert sum(map(int, per_rank.values())) == 2 * 21 * 8 + 2 * (2 * 8)
        with open(tmp_path / "adam.pkl", "rb") as f:
            checkpoint = pickle.load(f)
        # the checkpoint of 2 ranks loads into a plain optimizer, and resumes there
        w, b = np.zeros(20), np.zeros(1)
        plain = fastopt.Adam([w, b])
        plain.load_state_dict(checkpoint)
        assert plain.state[0]["exp_avg"].shape == (20,) and plain.state[0]["step"] == 200
