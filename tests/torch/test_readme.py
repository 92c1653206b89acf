"""README's "Coming from torch.optim": the torch loop with fastopt.torch and its numpy port
run as written (the torch one is fenced ```python torch, so test_readme.py leaves it out)."""

import os
import re

import pytest

from fastopt_testing import paths

README = str(paths.README)
pytestmark = pytest.mark.skipif(not os.path.isfile(README),
                                reason="needs the source tree's README.md")


def _section_blocks():
    with open(README) as f:
        text = f.read()
    section = text.split("## Coming from torch.optim", 1)[1].split("\n## ", 1)[0]
    torch_blocks = re.findall(r"```python torch\n(.*?)```", section, flags=re.S)
    numpy_blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(torch_blocks) == 1 and numpy_blocks  # the port is the first numpy block
    return torch_blocks[0], numpy_blocks[0]


def test_numpy_port_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_section_blocks()[1], README, "exec"), namespace)
    resumed = namespace["resumed"]
    assert resumed.param_groups[0]["step"] == 100
    assert repr(resumed.param_groups[0]["lr"]).startswith("one_cycle(max_lr=0.01")
    assert repr(resumed.param_groups[0]["betas"][0]).startswith("one_cycle_momentum(")
    assert int(resumed.state[0]["step"]) == 100


def test_torch_loop_runs(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: torch's pool only waits on a busy machine
    try:
        exec(compile(_section_blocks()[0], README, "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    assert float(namespace["resumed"].state_dict()["state"][0]["step"]) == 100.0
    assert namespace["resumed_sched"].last_epoch == 100
    assert type(namespace["opt"]).__module__.startswith("fastopt.torch")
