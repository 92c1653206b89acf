"""Learning-rate schedules (pure Python ``fastopt.schedules``): cost per evaluation.

A schedule is evaluated once per optimizer step, so its cost adds to every ``step()``;
these benchmarks keep it visible. ``fastopt.schedules`` is imported lazily: on a commit
without it (or without a given schedule) the combination is skipped.
"""

import numpy as np

from .common import set_threads

# name -> how to build it from the fastopt.schedules module
FACTORIES = {
    "constant": lambda S: S.constant(0.1, factor=0.5, total_iters=100),
    "step_decay": lambda S: S.step_decay(0.1, step_size=30, gamma=0.1),
    "multistep": lambda S: S.multistep(0.1, milestones=[100, 300, 600], gamma=0.1),
    "exponential": lambda S: S.exponential(0.1, gamma=0.999),
    "cosine": lambda S: S.cosine(0.1, T_max=1000),
    "cosine_restarts": lambda S: S.cosine_restarts(0.1, T_0=100, T_mult=2),
    "linear": lambda S: S.linear(0.1, start_factor=0.1, end_factor=1.0, total_iters=100),
    "polynomial": lambda S: S.polynomial(0.1, total_iters=1000, power=2.0),
    "inverse_sqrt": lambda S: S.inverse_sqrt(0.1, warmup_steps=100),
    "one_cycle": lambda S: S.one_cycle(0.1, total_steps=1000),
    "warmup": lambda S: S.warmup(S.cosine(0.1, T_max=1000), 100),
    "sequential": lambda S: S.sequential([S.linear(0.1, start_factor=0.1, total_iters=100),
                                          S.cosine(0.1, T_max=900)], [100]),
}
STEPS = 1000


def _build(name):
    try:
        import fastopt.schedules as S
    except ImportError:
        raise NotImplementedError("fastopt.schedules is not in this version") from None
    try:
        return FACTORIES[name](S)
    except (AttributeError, TypeError) as exc:
        raise NotImplementedError(f"schedule {name!r} unavailable: {exc}") from None


class ScheduleScalar:
    """1,000 scalar evaluations ``sched(t)``, as 1,000 optimizer steps would do."""

    params = [list(FACTORIES)]
    param_names = ["schedule"]

    def setup(self, name):
        self.sched = _build(name)

    def time_1000_steps(self, name):
        s = self.sched
        for t in range(STEPS):
            s(t)


class ScheduleArray:
    """One call over 10,000 steps (plotting a whole curve)."""

    params = [list(FACTORIES)]
    param_names = ["schedule"]

    def setup(self, name):
        self.sched = _build(name)
        self.steps = np.arange(10_000)
        try:
            self.sched(self.steps[:3])
        except (TypeError, ValueError):
            raise NotImplementedError("array evaluation not supported") from None

    def time_curve_10000(self, name):
        self.sched(self.steps)


class ReduceOnPlateau:
    """1,000 ``update(metric)`` calls of the one stateful schedule."""

    def setup(self):
        try:
            import fastopt.schedules as S

            self.sched = S.ReduceLROnPlateau(0.1, patience=5)
            self.update = self.sched.update
        except (ImportError, AttributeError, TypeError):
            raise NotImplementedError("ReduceLROnPlateau unavailable") from None
        self.metrics = [1.0 / (1 + (t % 50)) for t in range(STEPS)]

    def time_1000_updates(self):
        for m in self.metrics:
            self.update(m)


class StepWithSchedule:
    """Overhead of a schedule inside ``SGD.step()`` on a small (1,000-element) problem."""

    params = [["float", "cosine"]]
    param_names = ["lr"]

    def setup(self, lr):
        set_threads(1)
        import fastopt

        lr_value = 0.1 if lr == "float" else _build("cosine")
        self.p = [np.zeros(1000, np.float32)]
        self.g = [np.ones(1000, np.float32)]
        self.opt = fastopt.SGD(self.p, lr=lr_value, momentum=0.9)
        self.opt.step(self.g)

    def time_step(self, lr):
        self.opt.step(self.g)
