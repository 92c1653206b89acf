"""Stateful first-order optimizers with torch.optim's names and update semantics."""

from fastopt.optim.optimizer import Optimizer
from fastopt.optim.sgd import SGD

__all__ = ["Optimizer", "SGD"]
