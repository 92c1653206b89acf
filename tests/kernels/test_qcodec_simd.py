"""The AVX-512 int8 codec (csrc/lowprec_x86.h) against the portable one (csrc/lowprec.h):
tools/check_qencode.c compares their codes on every 61st float32 bit pattern and on every
threshold between codes (every float32 in its full run), and their decoded values on
every code. Its self-check: without the exact re-encode of the lanes near a threshold,
the comparison finds differences."""

import os
import shutil
import subprocess

import pytest

from fastopt_testing.paths import CSRC, ROOT

TOOL = os.path.join(ROOT, "tools", "check_qencode.c")
FLAGS = ["-O2", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno"]


def run_tool(tmp_path, *defines):
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine")
    if not os.path.exists(TOOL):
        pytest.skip("needs the source tree (tools/, csrc/)")
    exe = str(tmp_path / "check_qencode")
    built = subprocess.run(["gcc", *FLAGS, *defines, "-I", str(CSRC), TOOL, "-lm", "-o", exe],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    out = subprocess.run([exe, "--quick"], capture_output=True, text=True, timeout=600,
                         check=False)
    if out.returncode == 2:
        pytest.skip(out.stdout.strip())
    return out


def test_simd_codec_gives_the_portable_codes_and_values(tmp_path):
    out = run_tool(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert " 0 mismatches" in out.stdout, out.stdout


def test_the_check_finds_the_lanes_near_thresholds(tmp_path):
    out = run_tool(tmp_path, "-DFO_QENCODE_SKIP_EXACT")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "encode" in out.stdout and " 0 mismatches" not in out.stdout, out.stdout
