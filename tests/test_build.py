"""The build: OpenMP, show_config, headers for embedding, and downstream cimport."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import fastopt
from fastopt import _kernels

HAVE_CC = shutil.which(os.environ.get("CC", "cc")) is not None or shutil.which("gcc")


def test_openmp_is_compiled_in_unless_disabled():
    info = _kernels.build_info()
    if os.environ.get("FASTOPT_NO_OPENMP"):
        assert info["openmp"] is False
        assert fastopt.get_num_threads() == 1
    elif not os.environ.get("FASTOPT_SKIP_OPENMP_TEST"):
        assert info["openmp"] is True, "built without OpenMP; set FASTOPT_SKIP_OPENMP_TEST=1 " \
                                       "if that is intended"


def test_show_config_prints_the_facts(capsys):
    fastopt.show_config()
    out = capsys.readouterr().out
    for word in ("fastopt", fastopt.__version__, "openmp", "max_threads", "compiler",
                 "simd_target"):
        assert word in out


def test_version_matches_kernels():
    assert _kernels.build_info()["kernels_version"] == fastopt.__version__


def test_get_include_has_the_headers():
    inc = fastopt.get_include()
    for name in ("fastopt.h", "config.h", "optim.h", "parallel.h"):
        assert os.path.isfile(os.path.join(inc, name)), name


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler on this machine")
def test_c_program_can_embed_the_kernels(tmp_path):
    """csrc/ compiles without Python: a C program includes fastopt.h and links the kernels."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    csrc = os.path.join(here, "csrc")
    if not os.path.isdir(csrc):
        pytest.skip("needs the source tree (csrc/)")
    prog = tmp_path / "embed.c"
    prog.write_text(textwrap.dedent("""
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
    """))
    sources = [os.path.join(csrc, f) for f in sorted(os.listdir(csrc)) if f.endswith(".c")]
    exe = tmp_path / "embed"
    cc = shutil.which("gcc") or "cc"
    subprocess.run([cc, "-std=gnu11", "-O2", "-fopenmp", "-I", csrc, str(prog), *sources,
                    "-lm", "-o", str(exe)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    assert out[:4] == ["0", "0.5", "1.5", "2.5"]
    assert out[4] == fastopt.__version__


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler on this machine")
def test_downstream_cython_extension_can_cimport_kernels(tmp_path):
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    pkg_dir = os.path.dirname(fastopt.__file__)
    if not os.path.isfile(os.path.join(pkg_dir, "_kernels.pxd")):
        pytest.skip("fastopt's .pxd files are not installed with this copy")
    (tmp_path / "consumer.pyx").write_text(textwrap.dedent("""
        # cython: language_level=3
        cimport fastopt._kernels as fk
        import numpy as np

        def run():
            cdef double[::1] p = np.ones(4), g = np.full(4, 2.0), b = np.zeros(4)
            cdef int status
            with nogil:
                status = fk.sgd_step_f64(&p[0], &g[0], &b[0], 4, 0.25, 0.0, 0.0, 0.0, 0.0,
                                         False, False, False, 1)
            return status, np.asarray(p).tolist()
    """))
    (tmp_path / "setup.py").write_text(textwrap.dedent("""
        from setuptools import setup, Extension
        from Cython.Build import cythonize
        setup(name="consumer", ext_modules=cythonize([Extension("consumer", ["consumer.pyx"])]))
    """))
    env = dict(os.environ)
    parent = os.path.dirname(pkg_dir)
    env["PYTHONPATH"] = parent + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tmp_path,
                   env=env, check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-c", "import consumer; print(consumer.run())"],
                         cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "(0, [0.5, 0.5, 0.5, 0.5])"
