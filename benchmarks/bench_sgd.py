"""SGD with momentum: the functional kernel, the class and the numpy reference.

Time per step over size x dtype x threads (``time_*``, the gate), plus throughput
(``track_*``, for reading only). The numpy reference is the best in-place numpy
(``out=`` arguments, one scratch buffer per tensor), so "faster than numpy" can be read
off for every size.
"""

import numpy as np

from .common import (
    Benchmark,
    elements,
    make_arrays,
    minimal_bytes,
    per_call_seconds,
    set_threads,
    single_or_list,
)

LR, MOMENTUM = 1e-2, 0.9


class SGDKernel(Benchmark):
    """fastopt.kernels.sgd_step(p, g, buf, lr=0.01, momentum=0.9): one C call per step."""

    def setup(self, size, dtype, threads):
        set_threads(threads)
        from fastopt.kernels import sgd_step

        self.sgd_step = sgd_step
        p, g, buf = make_arrays(size, dtype, 3)
        self.p, self.g, self.buf = single_or_list(p), single_or_list(g), single_or_list(buf)
        self.step()  # first step initialises the buffers, as in torch

    def step(self):
        self.sgd_step(self.p, self.g, self.buf, lr=LR, momentum=MOMENTUM)

    def time_step(self, size, dtype, threads):
        self.step()

    def track_elements_per_s(self, size, dtype, threads):
        return elements(size) / per_call_seconds(self.step)

    track_elements_per_s.unit = "elements/s"

    def track_gbs(self, size, dtype, threads):
        return minimal_bytes("sgd", size, dtype) / per_call_seconds(self.step) / 1e9

    track_gbs.unit = "GB/s (minimal bytes)"


class SGDNumpyReference(Benchmark):
    """The same update in place with numpy ufuncs: buf = mu*buf + g; p -= lr*buf."""

    def setup(self, size, dtype, threads):
        set_threads(threads)  # numpy ignores it; keeps the grid identical to SGDKernel
        self.p, self.g, self.buf = make_arrays(size, dtype, 3)
        self.tmp = [np.empty_like(p) for p in self.p]

    def time_step(self, size, dtype, threads):
        for p, g, buf, tmp in zip(self.p, self.g, self.buf, self.tmp):
            np.multiply(buf, MOMENTUM, out=buf)
            np.add(buf, g, out=buf)
            np.multiply(buf, LR, out=tmp)
            np.subtract(p, tmp, out=p)


class SGDClass(Benchmark):
    """fastopt.SGD(params, lr=0.01, momentum=0.9, nesterov=True).step(grads)."""

    def setup(self, size, dtype, threads):
        set_threads(threads)
        import fastopt

        self.params, self.grads = make_arrays(size, dtype, 2)
        self.opt = fastopt.SGD(self.params, lr=LR, momentum=MOMENTUM, nesterov=True)
        self.opt.step(self.grads)

    def time_step(self, size, dtype, threads):
        self.opt.step(self.grads)

    def track_elements_per_s(self, size, dtype, threads):
        return elements(size) / per_call_seconds(lambda: self.opt.step(self.grads))

    track_elements_per_s.unit = "elements/s"
