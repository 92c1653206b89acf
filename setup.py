"""Build fastopt: the C99 kernels in csrc/, once, as a static library and inside the one
Cython extension (`fastopt._kernels`).

What a build puts into the package, next to the Python files:

fastopt/_kernels.*.so            the extension (Cython boundary + the kernels' objects)
fastopt/lib/libfastopt.a         the same kernel objects as a static library for C programs
                                 (fastopt.lib with MSVC); position-independent, no Python
fastopt/lib/pkgconfig/fastopt.pc how to compile and link against it (the OpenMP link flag
                                 the build used, or none for a serial build)
fastopt/include/*.h, *.inc       the headers (config.h with this version written in)

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
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = "csrc"
KERNEL_SOURCES = sorted(glob.glob(os.path.join(CSRC, "*.c")))
KERNEL_HEADERS = sorted(glob.glob(os.path.join(CSRC, "*.h"))
                        + glob.glob(os.path.join(CSRC, "*.inc")))
# config.h's fallback line, which the installed copy replaces with the real version.
VERSION_FALLBACK = '#  define FO_VERSION "unknown"'


def read_version():
    """The version from src/fastopt/_version.py, the one place it is written."""
    with open(os.path.join(HERE, "src", "fastopt", "_version.py")) as f:
        match = re.search(r'^__version__ = "([^"]+)"$', f.read(), flags=re.MULTILINE)
    if not match:
        raise RuntimeError("src/fastopt/_version.py has no __version__ = \"...\" line")
    return match.group(1)


VERSION = read_version()

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


def _stale(target, sources):
    """Whether `target` is missing or older than one of `sources`."""
    if not os.path.exists(target):
        return True
    built = os.path.getmtime(target)
    return any(os.path.getmtime(source) > built for source in sources)


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
            # link_executable does not see LDFLAGS (extensions do): pass them, for the
            # -L of a libomp outside the default paths (macOS)
            ldflags = shlex.split(os.environ.get("LDFLAGS", ""))
            compiler.link_executable(objs, "omp_probe", output_dir=tmp,
                                     extra_postargs=lflags + ldflags)
            exe = os.path.join(tmp, "omp_probe" + (compiler.exe_extension or ""))
            out = subprocess.run([exe], capture_output=True, text=True, timeout=30, check=False)
            return out.returncode == 0
        except Exception:  # any compiler/linker/run failure means "no usable OpenMP"
            return False


def openmp_flags(compiler):
    """(compile flags, link flags) that give this compiler OpenMP, or None (serial build)."""
    if _flag_on("FASTOPT_NO_OPENMP"):
        warnings.warn("fastopt: FASTOPT_NO_OPENMP is set; building serial kernels", stacklevel=1)
        return None
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]   # vcomp: the objects name it for the linker
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
        if sys.platform == "darwin":      # Apple clang + libomp (paths in CPPFLAGS/LDFLAGS)
            candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
    for cflags, lflags in candidates:
        if _probe_openmp(compiler, cflags, lflags):
            return cflags, lflags
    if _flag_on("FASTOPT_FAIL_NO_OPENMP"):
        raise RuntimeError("fastopt: FASTOPT_FAIL_NO_OPENMP is set but the compiler cannot "
                           "build and run an OpenMP program")
    warnings.warn("fastopt: the compiler cannot build OpenMP programs; "
                  "building WITHOUT OpenMP (serial kernels)", stacklevel=1)
    return None


def compile_flags(compiler, openmp):
    """(compile flags, link flags) for the kernels and the extension."""
    if compiler.compiler_type == "msvc":
        # /std:c11 makes `restrict` a keyword (csrc/ is C99/C11)
        cflags, lflags = ["/O2", "/fp:precise", "/std:c11"], []
    else:
        # -ffp-contract=off: every SIMD clone gives the same bits (no fused multiply-add).
        # -fno-math-errno: lets GCC vectorize sqrt; NaN/Inf still propagate (no fast-math).
        # -fPIC: the static library links into shared objects too. -g0: no debug info
        # (a quarter of the size); the sanitizer build puts -g back.
        cflags = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno",
                  "-fvisibility=hidden", "-fPIC", "-g0", "-Wall", "-Wno-unused-function",
                  "-Wno-unreachable-code"]
        lflags = []
        if _flag_on("FASTOPT_NATIVE"):
            cflags.append("-march=native")
        if _flag_on("FASTOPT_SANITIZE"):
            cflags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                       "-fno-sanitize-recover=undefined", "-g", "-O1"]
            lflags += ["-fsanitize=address,undefined"]
    if openmp:
        cflags += openmp[0]
        lflags += openmp[1]
    elif compiler.compiler_type != "msvc":
        cflags.append("-Wno-unknown-pragmas")  # the serial build ignores `omp` pragmas
    return cflags, lflags


class BuildExt(build_ext):
    """build_ext: OpenMP probe, the kernels compiled once (in parallel) into a static library
    that the extension links as objects, fastopt.pc, and Cython run at build time only."""

    def build_extensions(self):
        openmp = openmp_flags(self.compiler)
        cflags, lflags = compile_flags(self.compiler, openmp)
        # Objects built with other flags live elsewhere: never reuse stale ones. The built
        # extension has one place, so it is rebuilt whenever the flags differ from its own
        # (otherwise a serial build after an OpenMP one would keep the OpenMP module).
        key = hashlib.sha1(" ".join(cflags + lflags + [sys.version, VERSION]).encode())
        key = key.hexdigest()[:10]
        stamp = os.path.join(self.build_temp, "fastopt-extension-flags")
        previous = None
        if os.path.isfile(stamp):
            with open(stamp) as f:
                previous = f.read()
        if previous != key:
            for ext in self.extensions:
                if os.path.exists(self.get_ext_fullpath(ext.name)):
                    os.remove(self.get_ext_fullpath(ext.name))
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as f:
            f.write(key)
        self.build_temp = os.path.join(self.build_temp, "flags-" + key)
        print(f"fastopt {VERSION}: OpenMP {'ON' if openmp else 'OFF'}; flags {' '.join(cflags)}")

        objects = self.compile_kernels(cflags)
        # Into build_lib (setuptools builds there even for --inplace, then copies: see
        # copy_extensions_to_source); build_py puts the headers into build_lib/fastopt/include.
        package_dir = os.path.join(self.build_lib, "fastopt")
        lib_dir = os.path.join(package_dir, "lib")
        self.static_library = self.write_static_library(objects, lib_dir)
        self.link_flags, self.openmp = lflags, openmp is not None
        self.write_pkg_config(lib_dir, os.path.join(package_dir, "include"))

        import numpy as np
        from Cython.Build import cythonize

        for ext in self.extensions:
            ext.include_dirs += [CSRC, np.get_include()]
            ext.extra_compile_args = list(cflags)
            ext.extra_link_args = list(lflags)
            ext.extra_objects = list(objects)
        # Cython's copies lack setuptools' attributes: take only their (generated) sources.
        generated = cythonize(
            self.extensions,
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
        for ext, cythonized in zip(self.extensions, generated):
            ext.sources = cythonized.sources
        super().build_extensions()

    def compile_kernels(self, cflags):
        """csrc/*.c -> objects in build_temp, compiling only the stale ones, several at once."""
        macros = [("FO_VERSION", f'"{VERSION}"')]
        os.makedirs(os.path.join(self.build_temp, CSRC), exist_ok=True)

        def compile_one(source):
            obj = self.compiler.object_filenames([source], output_dir=self.build_temp)[0]
            if self.force or _stale(obj, [source] + KERNEL_HEADERS):
                self.compiler.compile([source], output_dir=self.build_temp, macros=macros,
                                      include_dirs=[CSRC], extra_postargs=cflags)
            return obj

        with ThreadPoolExecutor(max_workers=self.parallel or os.cpu_count() or 1) as pool:
            return list(pool.map(compile_one, KERNEL_SOURCES))

    def copy_extensions_to_source(self):
        """--inplace and editable installs: the static library too, next to the extension,
        with a fastopt.pc whose headers are the checkout's csrc/ (what get_include() gives)."""
        super().copy_extensions_to_source()
        package_dir = self.get_finalized_command("build_py").get_package_dir("fastopt")
        lib_dir = os.path.join(package_dir, "lib")
        os.makedirs(lib_dir, exist_ok=True)
        self.copy_file(self.static_library, lib_dir, level=self.verbose)
        self.write_pkg_config(lib_dir, CSRC)

    def write_static_library(self, objects, lib_dir):
        os.makedirs(lib_dir, exist_ok=True)
        path = os.path.join(lib_dir, self.compiler.library_filename("fastopt", lib_type="static"))
        if os.path.exists(path):   # `ar` adds to an archive: start from nothing
            os.remove(path)
        self.compiler.create_static_lib(objects, "fastopt", output_dir=lib_dir)
        print(f"fastopt: static library {path}")
        return path

    def write_pkg_config(self, lib_dir, include_dir):
        """fastopt.pc, relocatable: every path is relative to the file (${pcfiledir})."""
        pc_dir = os.path.join(lib_dir, "pkgconfig")
        os.makedirs(pc_dir, exist_ok=True)
        lflags, openmp = self.link_flags, self.openmp
        libs = ["-L${libdir}", "-lfastopt"] + lflags
        if "-lomp" in lflags:   # Apple clang + libomp: where this build found libomp
            where = [w for w in shlex.split(os.environ.get("LDFLAGS", "")) if w.startswith("-L")]
            libs[2:2] = where
        if self.compiler.compiler_type != "msvc":
            libs.append("-lm")
        threading = ("with OpenMP: link with " + " ".join(lflags) if openmp and lflags
                     else "with OpenMP" if openmp else "serial, without OpenMP")
        rel_include = os.path.relpath(include_dir, pc_dir).replace(os.sep, "/")
        rel_lib = os.path.relpath(lib_dir, pc_dir).replace(os.sep, "/")
        with open(os.path.join(pc_dir, "fastopt.pc"), "w") as f:
            f.write(textwrap.dedent(f"""\
                # Written by fastopt's setup.py. Paths are relative to this file.
                includedir=${{pcfiledir}}/{rel_include}
                libdir=${{pcfiledir}}/{rel_lib}
                openmp={int(openmp)}

                Name: fastopt
                Description: fastopt's C kernels as a static library ({threading})
                Version: {VERSION}
                Cflags: -I${{includedir}}
                Libs: {" ".join(libs)}
                """))


class BuildPy(build_py):
    """Also install the C headers under fastopt/include for embedding (get_include()), with
    this version written into config.h."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "fastopt", "include")
        os.makedirs(dest, exist_ok=True)
        for path in KERNEL_HEADERS:
            shutil.copy(os.path.join(HERE, path), dest)
        config_h = os.path.join(dest, "config.h")
        with open(config_h) as f:
            text = f.read()
        if text.count(VERSION_FALLBACK) != 1:
            raise RuntimeError(f"csrc/config.h must hold the line {VERSION_FALLBACK!r} once")
        with open(config_h, "w") as f:
            f.write(text.replace(VERSION_FALLBACK, f'#  define FO_VERSION "{VERSION}"'))


def generate():
    """Render the optimizer families' boundary from their table (src/fastopt/_codegen.py):
    _families.pxi, _families_decl.pxi (included by the public _kernels.pxd) and the stub
    _kernels.pyi. Before setup() runs, so that build_py installs them with the package."""
    import importlib.util

    path = os.path.join(HERE, "src", "fastopt", "_codegen.py")
    spec = importlib.util.spec_from_file_location("fastopt_codegen", path)
    codegen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(codegen)
    codegen.render(os.path.join(HERE, "src", "fastopt"))


# The .pyx is the source (the sdist ships it, not generated C); BuildExt cythonizes it.
kernels = Extension(
    "fastopt._kernels",
    sources=["src/fastopt/_kernels.pyx"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")],
    depends=KERNEL_SOURCES + KERNEL_HEADERS + glob.glob("src/fastopt/*.pxi")
    + glob.glob("src/fastopt/*.pxd") + glob.glob("src/fastopt/*.tp")
    + ["src/fastopt/optim/families.py", "src/fastopt/_codegen.py"],
)

generate()
setup(ext_modules=[kernels], cmdclass={"build_ext": BuildExt, "build_py": BuildPy})
