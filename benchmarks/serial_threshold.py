"""Measure the size above which a second OpenMP thread speeds up an update kernel.

    python benchmarks/serial_threshold.py

Compiles serial_threshold.c against csrc/ with the kernels forced parallel and prints
1-thread and 2-thread times per size (median of 15). The crossover justifies
FO_SERIAL_BELOW in csrc/parallel.h.
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(os.path.dirname(HERE), "csrc")


def main() -> int:
    sources = [os.path.join(CSRC, f) for f in sorted(os.listdir(CSRC)) if f.endswith(".c")]
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "threshold")
        subprocess.run(["gcc", "-std=gnu11", "-O3", "-ffp-contract=off", "-fno-math-errno",
                        "-fopenmp", "-DFO_SERIAL_BELOW=1", "-I", CSRC,
                        os.path.join(HERE, "serial_threshold.c"), *sources, "-lm", "-o", exe],
                       check=True)
        return subprocess.run([exe]).returncode


if __name__ == "__main__":
    sys.exit(main())
