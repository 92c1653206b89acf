"""Build fastopt: one Cython extension (`fastopt._kernels`) over the C99 kernels in csrc/.

Environment switches (read at build time):

FASTOPT_NO_OPENMP=1       build the kernels serially, without probing for OpenMP.
FASTOPT_FAIL_NO_OPENMP=1  make a failed OpenMP probe an error instead of a warning.
FASTOPT_NATIVE=1          add -march=native (local builds only; never for wheels).
FASTOPT_SANITIZE=1        build with -fsanitize=address,undefined (for the sanitizer job).

Objects are kept in a build directory named after a hash of the compile flags, so a build
with different flags (OpenMP off, sanitizers on) never reuses stale objects.
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d\\n", n);
        return n >= 1 ? 0 : 1;
    }
    """
)


def _flag_on(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _probe_openmp(compiler, cflags, lflags):
    """Compile, link and run a tiny OpenMP program with the compiler setuptools uses."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
            exe = os.path.join(tmp, "omp_probe")
            compiler.link_executable(objs, "omp_probe", output_dir=tmp, extra_postargs=lflags)
            out = subprocess.run([exe], capture_output=True, text=True, timeout=30)
            return out.returncode == 0
        except Exception:  # any compiler/linker/run failure means "no usable OpenMP"
            return False


class BuildExt(build_ext):
    """build_ext with the OpenMP probe, portable flags and a flag-keyed temp directory."""

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        msvc = ctype == "msvc"
        if _flag_on("FASTOPT_NO_OPENMP"):
            openmp = False
            warnings.warn("fastopt: FASTOPT_NO_OPENMP is set; building serial kernels")
        else:
            omp_c, omp_l = (["/openmp"], []) if msvc else (["-fopenmp"], ["-fopenmp"])
            openmp = _probe_openmp(self.compiler, omp_c, omp_l)
            if not openmp:
                if _flag_on("FASTOPT_FAIL_NO_OPENMP"):
                    raise RuntimeError(
                        "fastopt: FASTOPT_FAIL_NO_OPENMP is set but the compiler cannot "
                        "build and run an OpenMP program"
                    )
                warnings.warn(
                    "fastopt: the compiler cannot build OpenMP programs; "
                    "building WITHOUT OpenMP (serial kernels)"
                )
        if msvc:
            cflags, lflags = ["/O2", "/fp:precise"], []
        else:
            # -ffp-contract=off: every SIMD clone gives the same bits (no fused multiply-add).
            # -fno-math-errno: lets GCC vectorize sqrt; NaN/Inf still propagate (no fast-math).
            cflags = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno",
                      "-fvisibility=hidden", "-Wall", "-Wno-unused-function",
                      "-Wno-unreachable-code"]
            lflags = []
            if _flag_on("FASTOPT_NATIVE"):
                cflags.append("-march=native")
            if _flag_on("FASTOPT_SANITIZE"):
                san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                       "-fno-sanitize-recover=undefined", "-g", "-O1"]
                cflags += san
                lflags += ["-fsanitize=address,undefined"]
        if openmp:
            cflags += ["/openmp"] if msvc else ["-fopenmp"]
            lflags += [] if msvc else ["-fopenmp"]
        elif not msvc:
            cflags.append("-Wno-unknown-pragmas")  # the serial build ignores `omp` pragmas
        for ext in self.extensions:
            ext.extra_compile_args = list(cflags)
            ext.extra_link_args = list(lflags)
        # Objects built with other flags live elsewhere: never reuse stale ones.
        key = hashlib.sha1(" ".join(cflags + lflags + [sys.version]).encode()).hexdigest()[:10]
        self.build_temp = os.path.join(self.build_temp, "flags-" + key)
        print(f"fastopt: OpenMP {'ON' if openmp else 'OFF'}; flags {' '.join(cflags)}")
        super().build_extensions()


class BuildPy(build_py):
    """Also install the C headers under fastopt/include for embedding (get_include())."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "fastopt", "include")
        os.makedirs(dest, exist_ok=True)
        for path in glob.glob(os.path.join(HERE, "csrc", "*.h")) + glob.glob(
            os.path.join(HERE, "csrc", "*.inc")
        ):
            shutil.copy(path, dest)


def generate():
    """Render the optimizer families' boundary from their table (src/fastopt/_codegen.py)."""
    import importlib.util

    path = os.path.join(HERE, "src", "fastopt", "_codegen.py")
    spec = importlib.util.spec_from_file_location("fastopt_codegen", path)
    codegen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(codegen)
    codegen.render(os.path.join(HERE, "src", "fastopt"))


def extensions():
    import numpy as np
    from Cython.Build import cythonize

    generate()
    sources = ["src/fastopt/_kernels.pyx"] + sorted(glob.glob("csrc/*.c"))
    ext = Extension(
        "fastopt._kernels",
        sources=sources,
        include_dirs=["csrc", np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")],
        depends=glob.glob("csrc/*.h") + glob.glob("csrc/*.inc") + glob.glob("src/fastopt/*.pxi")
        + glob.glob("src/fastopt/*.pxd") + glob.glob("src/fastopt/*.tp")
        + ["src/fastopt/optim/families.py", "src/fastopt/_codegen.py"],
    )
    return cythonize(
        [ext],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "nonecheck": False,
            "cdivision": True,
            "embedsignature": True,
        },
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt, "build_py": BuildPy})
