"""The README's Python examples run as written (in order, in one namespace)."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _python_blocks():
    with open(README) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


@pytest.mark.skipif(not os.path.isfile(README), reason="needs the source tree's README.md")
def test_readme_examples_run(tmp_path, monkeypatch):
    blocks = _python_blocks()
    assert len(blocks) >= 4       # use, layers, schedules, minimize
    monkeypatch.chdir(tmp_path)   # nothing an example writes lands in the checkout
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, README, "exec"), namespace)
    res = namespace["res"]        # the minimize example converged
    assert res.success and res.fun < 1e-8
