"""Objectives for the hyperparameter-search tests, in a module of their own so that worker
processes (a process pool, Dask workers, MPI ranks) can import them by name."""

import os

import numpy as np


def distance(params):
    """random_search objective: (x - 0.3)**2; refuses to run in the process that asked."""
    if os.getpid() == params.get("parent"):
        raise RuntimeError("ran in the parent process")
    return (params["x"] - 0.3) ** 2


def curve_score(x, resource):
    """A learning curve whose ranking of configurations is the same at every resource."""
    return (x - 0.3) ** 2 + 1.0 / resource


def curve(params, reporter):
    """asha_search objective: one report per unit of resource, resuming from a checkpoint
    (the resource trained so far)."""
    if os.getpid() == params.get("parent"):
        raise RuntimeError("ran in the parent process")
    epoch = reporter.checkpoint or 0
    while epoch < reporter.max_resource:
        epoch += 1
        reporter.report(epoch, curve_score(params["x"], epoch), checkpoint=epoch)


def curve_without_checkpoint(params, reporter):
    """The same curve, restarting from scratch whenever the trial continues."""
    for epoch in range(1, int(reporter.max_resource) + 1):
        reporter.report(epoch, curve_score(params["x"], epoch))


def curve_with_state(params, reporter):
    """A checkpoint that is real state: weights trained by gradient descent on
    (w - x)**2, one step per unit of resource; the score is the loss plus 1/resource."""
    state = reporter.checkpoint or {"epoch": 0, "w": np.zeros(3)}
    w, epoch = state["w"].copy(), state["epoch"]
    while epoch < reporter.max_resource:
        epoch += 1
        w -= 0.5 * (w - params["x"])
        loss = float(np.sum((w - params["x"]) ** 2)) + curve_score(params["x"], epoch)
        reporter.report(epoch, loss, checkpoint={"epoch": epoch, "w": w.copy()})


def crash_if_large(params):
    """Kills its worker process for x > 0.9 (a segfault, as far as the executor can tell)."""
    if params["x"] > 0.9:
        os._exit(3)
    return (params["x"] - 0.3) ** 2
