"""Embedding fastopt's kernels from C and from Cython, the way README's "Embedding" shows.

The C program and its build commands, and the downstream Cython package (pyproject.toml,
setup.py, .pyx) are read from the README (the blocks after `<!-- embedding-example: NAME -->`),
so the README is what is tested. They compile against the *importable* fastopt: in CI that
is an installed sdist or wheel, and FASTOPT_TEST_INSTALLED=1 makes these tests fail if it is
a source checkout instead. FASTOPT_TEST_WHEELHOUSE=DIR (a directory holding a fastopt wheel)
also builds the downstream package under pip's default build isolation.
"""

import os
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import fastopt
from fastopt import _kernels, _pkgconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
CC = shutil.which("cc")
ON_LINUX = sys.platform.startswith("linux")
needs_readme = pytest.mark.skipif(not os.path.isfile(README), reason="needs README.md")
needs_cc = pytest.mark.skipif(CC is None, reason="no `cc` C compiler on PATH")


def readme_examples():
    """{name: code} of the README blocks marked `<!-- embedding-example: name -->`."""
    with open(README) as f:
        text = f.read()
    found = re.findall(r"<!-- embedding-example: (\S+) -->\n```\w*\n(.*?)```", text,
                       flags=re.DOTALL)
    return dict(found)


def subprocess_env():
    """The environment the README's commands run in: `python` is this interpreter, and it
    imports the fastopt imported here (also an in-place build found through PYTHONPATH)."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastopt.__file__)))
    env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
    return env


def check_installed():
    """Under FASTOPT_TEST_INSTALLED=1, fastopt must be an installed package, not a checkout."""
    if os.environ.get("FASTOPT_TEST_INSTALLED"):
        package = os.path.dirname(os.path.abspath(fastopt.__file__))
        assert fastopt.get_include() == os.path.join(package, "include"), \
            f"fastopt is imported from a source checkout ({package}), not an installed package"


@needs_readme
def test_readme_holds_every_embedding_example():
    assert set(readme_examples()) == {"adam_step.c", "commands", "pyproject.toml", "setup.py",
                                      "rowwise_adam.pyx"}


@needs_readme
@needs_cc
def test_c_program_from_the_readme_runs_an_adam_step(tmp_path):
    """README's adam_step.c, built with exactly README's commands, gives Python's result."""
    check_installed()
    examples = readme_examples()
    (tmp_path / "adam_step.c").write_text(examples["adam_step.c"])
    run = subprocess.run(["bash", "-e", "-c", examples["commands"]], cwd=tmp_path,
                         env=subprocess_env(), capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stderr
    header, *values = run.stdout.strip().splitlines()
    openmp = int(_kernels.build_info()["openmp"])
    assert header == f"fastopt {fastopt.__version__}, status 0, openmp {openmp}"
    from_c = np.array([float(x) for x in values], dtype=np.float32)

    p = np.array([1.0, -2.0, 3.0, -4.0], np.float32)
    g = np.array([0.5, -0.25, 1.0, 2.0], np.float32)
    m, v = np.zeros(4, np.float32), np.zeros(4, np.float32)
    fastopt.kernels.adam_step(p, g, m, v, step=1, lr=0.1)
    assert from_c.tobytes() == p.tobytes()   # the same kernel: the same bits
    # and Adam's first step moves every parameter by about lr against its gradient's sign
    np.testing.assert_allclose(from_c, [0.9, -1.9, 2.9, -4.1], rtol=1e-6)


def test_installed_header_carries_the_version():
    check_installed()
    config_h = os.path.join(fastopt.get_include(), "config.h")
    with open(config_h) as f:
        text = f.read()
    if os.path.dirname(config_h) == os.path.join(ROOT, "csrc"):
        pytest.skip("in-place build: the headers are the checkout's csrc/ (version 'unknown')")
    assert f'#  define FO_VERSION "{fastopt.__version__}"' in text


@needs_cc
@pytest.mark.skipif(not ON_LINUX, reason="GNU ld's --whole-archive")
def test_static_library_is_position_independent_and_needs_no_python(tmp_path):
    """Every object of libfastopt.a links into a shared object (only -fPIC code can) with
    no Python library, and it references OpenMP exactly when the build has OpenMP."""
    check_installed()
    libs = _pkgconfig.flags(os.path.join(fastopt.get_library_dir(), "pkgconfig", "fastopt.pc"),
                            "Libs")
    archive = os.path.join(fastopt.get_library_dir(), "libfastopt.a")
    (tmp_path / "empty.c").write_text("int fastopt_embedding_test;\n")
    other = [w for w in libs if w not in ("-lfastopt",) and not w.startswith("-L")]
    run = subprocess.run([CC, "-shared", "-o", str(tmp_path / "libwhole.so"),
                          str(tmp_path / "empty.c"), "-Wl,--whole-archive", archive,
                          "-Wl,--no-whole-archive", "-Wl,--no-undefined", *other],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm")
    undefined = subprocess.run([nm, "-u", archive], capture_output=True, text=True,
                               check=True).stdout.split()
    assert not [s for s in undefined if s.startswith("Py")]
    uses_gomp = any(s.startswith("GOMP_") for s in undefined)
    assert uses_gomp == _kernels.build_info()["openmp"]


@needs_cc
def test_csrc_compiles_without_python(tmp_path):
    """The source route: a C program compiles csrc/*.c itself (no Python, no package)."""
    csrc = os.path.join(ROOT, "csrc")
    if not os.path.isdir(csrc):
        pytest.skip("needs the source tree (csrc/)")
    prog = tmp_path / "embed.c"
    prog.write_text("""
        #include <stdio.h>
        #include "fastopt.h"
        int main(void) {
            float p[3] = {1, 2, 3}, g[3] = {1, 1, 1}, b[3] = {0, 0, 0};
            float *pp = p, *bp = b; const float *gp = g;
            int64_t off[2] = {0, 3};
            fo_layout layout = {1, off, 0};
            fo_sgd_options o = {0.5, 0.9, 0.0, 0.0, 0.0, 0, 0, 1};
            int status = fo_sgd_step_f32(&layout, &pp, &gp, &bp, &o, 2);
            printf("%d %g %g %g %s\\n", status, p[0], p[1], p[2], fo_version());
            return status;
        }
    """)
    sources = [os.path.join(csrc, f) for f in sorted(os.listdir(csrc)) if f.endswith(".c")]
    exe = tmp_path / "embed"
    subprocess.run([CC, "-std=gnu11", "-O2", "-fopenmp", '-DFO_VERSION="9.8.7"', "-I", csrc,
                    str(prog), *sources, "-lm", "-o", str(exe)], check=True,
                   capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out == ["0", "0.5", "1.5", "2.5", "9.8.7"]


def write_downstream_package(path):
    examples = readme_examples()
    path.mkdir()
    for name in ("pyproject.toml", "setup.py", "rowwise_adam.pyx"):
        (path / name).write_text(examples[name])
    return path


def check_rowwise_adam(module_dir, env):
    """Import the built downstream module in a fresh interpreter and compare with fastopt."""
    script = """
import numpy as np, fastopt, rowwise_adam
rng = np.random.default_rng(7)
p, g = rng.standard_normal((64, 300)), rng.standard_normal((64, 300))
m, v = np.zeros_like(p), np.zeros_like(p)
P, M, V, p0 = p.copy(), m.copy(), v.copy(), p.copy()
for step in (1, 2, 3):
    assert rowwise_adam.adam_rows(p, g, m, v, step, 0.01) == 0
    for i in range(len(P)):
        fastopt.kernels.adam_step(P[i], g[i], M[i], V[i], step=step, lr=0.01)
assert p.tobytes() == P.tobytes() and m.tobytes() == M.tobytes() and v.tobytes() == V.tobytes()
assert np.all(p != p0)   # every row was stepped
print("rows", len(p), "ok")
"""
    env = dict(env)
    env["PYTHONPATH"] = str(module_dir) + os.pathsep + env.get("PYTHONPATH", "")
    run = subprocess.run([sys.executable, "-c", script], cwd=module_dir, env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "rows 64 ok"


def build_downstream(package, out, env, isolation_wheelhouse=None):
    """pip-build README's downstream package into a wheel and unpack it into `out`."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out)]
    if isolation_wheelhouse is None:
        command.append("--no-build-isolation")
    else:
        command += ["--find-links", isolation_wheelhouse]
    run = subprocess.run(command + [str(package)], env=env, capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = out.glob("rowwise_adam-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(out)


@needs_readme
@needs_cc
@pytest.mark.skipif(sys.platform == "darwin",
                    reason="README's setup.py passes -fopenmp, which Apple clang lacks")
def test_downstream_cython_package_from_the_readme(tmp_path):
    """README's package cimports fastopt's kernels and calls one inside a prange loop."""
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    check_installed()
    package_dir = os.path.dirname(os.path.abspath(fastopt.__file__))
    if not os.path.isfile(os.path.join(package_dir, "_kernels.pxd")):
        pytest.skip("fastopt's .pxd files are not installed with this copy")
    env = subprocess_env()
    package = write_downstream_package(tmp_path / "rowwise-adam")
    build_downstream(package, tmp_path / "built", env)
    check_rowwise_adam(tmp_path / "built", env)


@needs_readme
@needs_cc
@pytest.mark.skipif(not os.environ.get("FASTOPT_TEST_WHEELHOUSE"),
                    reason="set FASTOPT_TEST_WHEELHOUSE to a directory with a fastopt wheel")
@pytest.mark.skipif(sys.platform == "darwin",
                    reason="README's setup.py passes -fopenmp, which Apple clang lacks")
def test_downstream_cython_package_builds_under_build_isolation(tmp_path):
    """With fastopt in [build-system] requires (as README says), pip's isolated build finds
    the .pxd files: the build environment installs fastopt from the wheelhouse."""
    wheelhouse = os.path.abspath(os.environ["FASTOPT_TEST_WHEELHOUSE"])
    assert any(f.startswith("fastopt-") and f.endswith(".whl") for f in os.listdir(wheelhouse))
    env = subprocess_env()
    env.pop("PYTHONPATH", None)   # the isolated build must not see a checkout's src/
    package = write_downstream_package(tmp_path / "rowwise-adam")
    build_downstream(package, tmp_path / "built", env, isolation_wheelhouse=wheelhouse)
    check_rowwise_adam(tmp_path / "built", subprocess_env())
