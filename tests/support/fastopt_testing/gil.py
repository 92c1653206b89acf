"""Whether a kernel call releases the GIL, seen from Python."""

import threading
import time

import numpy as np

import fastopt


def python_ticks_during(call, repeats=3):
    """Run ``call()`` `repeats` times on a worker thread (fastopt at one thread) while this
    thread counts loop iterations; returns the most iterations seen inside one call (a
    handful at most if the call held the GIL) and the calls' durations."""
    windows, ticks, stop = [], [], threading.Event()

    def worker():
        with fastopt.threads(1):
            for _ in range(repeats):
                t0 = time.perf_counter()
                call()
                windows.append((t0, time.perf_counter()))
        stop.set()

    t = threading.Thread(target=worker)
    t.start()
    while not stop.is_set():
        ticks.append(time.perf_counter())
    t.join()
    ticks = np.array(ticks)
    inside = [int(((ticks > a) & (ticks < b)).sum()) for a, b in windows]
    return max(inside), [b - a for a, b in windows]
