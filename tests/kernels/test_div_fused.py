"""FO_DIV_FUSED (csrc/rules.h), the division by a per-call constant of Adam's plain loop:
tools/check_div_fused.c compares it bit for bit with the division over a sample of every
part of its check (every float32 bit pattern in the full run: see the tool's header)."""

import os
import shutil
import subprocess

import pytest

from fastopt_testing.paths import CSRC, ROOT

TOOL = os.path.join(ROOT, "tools", "check_div_fused.c")
FLAGS = ["-O2", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The output of the tool's --quick run."""
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine")
    if not os.path.exists(TOOL):
        pytest.skip("needs the source tree (tools/, csrc/)")
    exe = str(tmp_path_factory.mktemp("div") / "check_div_fused")
    base = ["gcc", *FLAGS, "-I", str(CSRC), TOOL, "-lm", "-o", exe]
    # fma as an instruction when the compiler can target this CPU; the library's fma
    # (correctly rounded too, only slower) otherwise
    for extra in (["-march=native"], []):
        built = subprocess.run(base[:1] + extra + base[1:], capture_output=True, check=False)
        if built.returncode == 0:
            break
    else:
        pytest.fail("tools/check_div_fused.c did not compile")
    return subprocess.run([exe, "--quick"], capture_output=True, text=True, timeout=600,
                          check=False)


def test_fused_division_has_the_bits_of_the_division(quick_run):
    out = quick_run
    assert out.returncode == 0, out.stdout + out.stderr
    assert " 0 mismatches" in out.stdout, out.stdout


def test_the_check_tells_a_wrong_quotient_from_the_right_one(quick_run):
    """The tool's self-check: x * (1 / b) without the correction differs from x / b for
    some x, so a comparison that found no difference has compared something."""
    line = next(s for s in quick_run.stdout.splitlines() if s.startswith("self-check"))
    differing = int(line.split("for ")[1].split(" of ")[0])
    assert differing > 0, line
