"""Philox4x32-10 (csrc/philox.h): Random123's known answers and dropout's element order."""

import numpy as np
import pytest

import fastopt
from fastopt._kernels import philox4x32_10, philox_stream
from fastopt_testing.philox_reference import KAT, reference_stream


@pytest.mark.parametrize("ctr, key, expected", KAT, ids=["zeros", "ones", "pi"])
def test_known_answer_vectors(ctr, key, expected):
    assert philox4x32_10(ctr, key) == tuple(expected)


@pytest.mark.parametrize("seed, stream", [(0, 0), (12345, 0), (2**64 - 1, 7),
                                          (0x0123456789ABCDEF, 0xFEDCBA9876543210)])
def test_vectorized_stream_matches_scalar_reference(seed, stream):
    n = 300  # not a multiple of the 64-element tile or the 256-element generation group
    np.testing.assert_array_equal(philox_stream(n, seed, stream), reference_stream(n, seed, stream))


def test_stream_prefix_and_thread_invariance():
    n = 1_000_003
    with fastopt.threads(1):
        one = philox_stream(n, 99, 3)
    with fastopt.threads(2):
        two = philox_stream(n, 99, 3)
    assert one.tobytes() == two.tobytes()
    np.testing.assert_array_equal(philox_stream(1000, 99, 3), one[:1000])


def test_streams_and_seeds_are_distinct_and_uniform():
    a, b, c = philox_stream(1 << 16, 1, 0), philox_stream(1 << 16, 1, 1), philox_stream(1 << 16, 2, 0)
    assert (a != b).mean() > 0.99 and (a != c).mean() > 0.99
    u = a / 2.0**32
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / u.size)


@pytest.mark.parametrize("args, exc", [
    ((10, -1), ValueError), ((10, 2**64), ValueError), ((10, True), TypeError),
    ((10, 1.5), TypeError), ((10, 1, -1), ValueError), ((-1, 1), ValueError),
])
def test_stream_bad_arguments(args, exc):
    with pytest.raises(exc):
        philox_stream(*args)


def test_philox_bad_words():
    with pytest.raises(ValueError, match=r"^ctr: expected an int in \[0, 4294967296\), got 4294967296"):
        philox4x32_10([2**32, 0, 0, 0], [0, 0])
    with pytest.raises(TypeError, match="^key: expected an int, got 0.5"):
        philox4x32_10([0, 0, 0, 0], [0.5, 0])
    with pytest.raises(ValueError, match="key"):
        philox4x32_10([0, 0, 0, 0], [0])
    # fastopt._validation's rules: a numpy integer, a 0-d array or an integral float is an int
    assert philox4x32_10([np.uint32(1), np.array(2), 3.0, 0], [0, 0]) == philox4x32_10(
        [1, 2, 3, 0], [0, 0])


def test_every_implementation_gives_the_same_words(tmp_path):
    """philox.h is header-only: compile a small C program that runs each implementation
    (scalar reference, SSE2, AVX2 and AVX-512 where the CPU has them, vector extensions) on
    one group of tiles, and compare with what this machine's dropout uses."""
    import shutil
    import subprocess

    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("needs a C compiler")
    src = tmp_path / "philox_paths.c"
    src.write_text(
        '#include <stdio.h>\n#include "philox.h"\n'
        "int main(void) {\n"
        "    uint32_t w[FO_PHILOX_GROUP_WORDS];\n"
        "    for (int isa = 0; isa <= FO_PHILOX_AVX512; ++isa) {\n"
        "#if FO_PHILOX_X86\n"
        '        if (isa == FO_PHILOX_AVX2 && !__builtin_cpu_supports("avx2")) continue;\n'
        '        if (isa == FO_PHILOX_AVX512 && !__builtin_cpu_supports("avx512f")) continue;\n'
        "#else\n"
        "        if (isa != FO_PHILOX_SCALAR_IMPL && isa != FO_PHILOX_VECTOR) continue;\n"
        "#endif\n"
        "        fo_philox_tiles(isa, 0x0123456789ABCDEFull, 42u, 3u, w);\n"
        '        printf("%d", isa);\n'
        '        for (int i = 0; i < FO_PHILOX_GROUP_WORDS; ++i) printf(" %u", w[i]);\n'
        '        printf("\\n");\n'
        "    }\n    return 0;\n}\n")
    exe = tmp_path / "philox_paths"
    build = subprocess.run([cc, "-O2", "-std=gnu11", "-DFO_PHILOX_FORCE_ISA=0",
                            "-I", fastopt.get_include(), str(src), "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    expected = philox_stream(7 * 64, 0x0123456789ABCDEF, 42)[3 * 64:]
    seen = []
    for line in filter(None, lines):
        isa, *words = line.split()
        seen.append(int(isa))
        np.testing.assert_array_equal(np.array(words, dtype=np.uint32), expected, err_msg=isa)
    assert 0 in seen and len(seen) >= 2
