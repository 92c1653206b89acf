"""fastopt.train as a package: the public names, their doctests, and pickles made before
train.py became a package."""

import doctest
import importlib
import math
import os
import pickle
import pkgutil

import numpy as np
import pytest

import fastopt
import fastopt.train as ftrain

SUBMODULES = sorted(
    m.name for m in pkgutil.iter_modules(ftrain.__path__) if not m.name.startswith("_")
)


def test_every_public_name_is_reachable_both_ways():
    assert len(ftrain.__all__) == len(set(ftrain.__all__))
    for name in ftrain.__all__:
        obj = getattr(ftrain, name)
        module = importlib.import_module(obj.__module__)
        assert obj.__module__.startswith("fastopt.train.") and getattr(module, name) is obj
        assert name in module.__all__
        namespace: dict = {}
        exec(f"from fastopt.train import {name}", namespace)
        assert namespace[name] is obj
    # and nothing public is defined in a module without being exported by the package
    exported = {name for m in SUBMODULES for name in importlib.import_module(
        f"fastopt.train.{m}").__all__}
    assert exported == set(ftrain.__all__)
    assert fastopt.clip_grad_norm is ftrain.clip_grad_norm
    assert fastopt.check_grad is ftrain.check_grad


def test_no_function_shadows_a_submodule():
    """`fastopt.train.<module>` is the module for each submodule (cf. fastopt.minimize)."""
    for m in SUBMODULES:
        assert getattr(ftrain, m) is importlib.import_module(f"fastopt.train.{m}")


@pytest.mark.parametrize("module", SUBMODULES)
def test_docstring_examples(module):
    mod = importlib.import_module(f"fastopt.train.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ftrain.__all__)
def test_every_public_name_has_a_numpydoc_examples_section(name):
    doc = getattr(ftrain, name).__doc__ or ""
    assert "\n    Examples\n    --------\n" in doc and "    >>> " in doc.split("Examples")[1]


def test_pickles_from_the_single_module_still_load():
    """train_objects_1eb14c4.pkl was written by fastopt.train as one module (commit 1eb14c4):
    its classes are named fastopt.train.X, which the package still provides."""
    if int(np.__version__.split(".")[0]) < 2:
        pytest.skip("the pickle holds numpy 2 arrays (numpy._core), which numpy 1 cannot load")
    path = os.path.join(os.path.dirname(__file__), "data", "train_objects_1eb14c4.pkl")
    with open(path, "rb") as f:
        objs = pickle.load(f)
    es = objs["EarlyStopping"]
    assert isinstance(es, ftrain.EarlyStopping)
    assert (es.best_score, es.best_step, es.num_steps, es.num_bad_steps) == (0.5, 0, 2, 1)
    np.testing.assert_array_equal(es.best_params[0], [0.0, 1.0, 2.0])
    assert es.update(0.3) is False and es.update(0.3) is True  # it goes on working
    ema = objs["EMA"]
    assert isinstance(ema, ftrain.EMA) and ema.num_updates == 1
    np.testing.assert_allclose(ema.shadow[0], 0.1 * np.arange(4.0) + 0.9)  # warmup: d = 0.1
    assert objs["Uniform"] == ftrain.Uniform(0.0, 1.0)
    assert objs["LogUniform"] == ftrain.LogUniform(1e-4, 1e-1)
    assert objs["IntUniform"] == ftrain.IntUniform(1, 64, log=True)
    assert objs["Choice"] == ftrain.Choice(["relu", "tanh"])
    assert objs["Trial"] == ftrain.Trial(3, {"lr": 0.01}, 0.25)
    failed = objs["failed Trial"]
    assert math.isnan(failed.score) and failed.error == "ValueError: diverged"
    # fields added since (status, resource, resource_used, history) get their defaults
    assert (failed.status, failed.resource, failed.resource_used, failed.history) == (
        "failed", None, None, ())
    assert objs["Trial"].status == "completed"
    res = objs["LRFinderResult"]
    assert isinstance(res, ftrain.LRFinderResult) and res.suggested_lr == 0.1
    np.testing.assert_array_equal(res.lrs, [1e-3, 1e-2, 1e-1])
