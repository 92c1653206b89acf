"""Stateful first-order optimizers with torch.optim's names and update semantics."""

from fastopt.optim.adadelta import Adadelta
from fastopt.optim.adagrad import Adagrad
from fastopt.optim.adam import Adam, AdamW
from fastopt.optim.optimizer import Optimizer
from fastopt.optim.rmsprop import RMSprop
from fastopt.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta"]
