"""The Examples sections of fastopt's docstrings, run as doctests: the outputs they show
are what the code gives. An example that imports a package which is not installed is
skipped, naming it. (``pytest --doctest-modules src/fastopt`` runs the same examples in an
in-place build.)"""

import doctest
import importlib
import importlib.util
import pkgutil
import re

import pytest

import fastopt

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
IMPORTED = re.compile(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", re.M)


def _doctests():
    names = ["fastopt"] + [m.name for m in pkgutil.walk_packages(fastopt.__path__, "fastopt.")]
    finder = doctest.DocTestFinder()
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:   # a module built on an optional package
            if (error.name or "").split(".")[0] == "fastopt":
                raise
            yield pytest.param(None, id=name, marks=pytest.mark.skip(
                reason=f"{name} imports {error.name}, which is not installed"))
            continue
        for test in finder.find(module) + _compiled_doctests(module):
            if test.examples:
                yield pytest.param(test, id=test.name)


def _compiled_doctests(module):
    """Doctests of the module's own Cython functions, which DocTestFinder passes over (they
    are neither Python functions nor builtins to it)."""
    parser = doctest.DocTestParser()
    tests = []
    for name, obj in sorted(vars(module).items()):
        if (type(obj).__name__.endswith("cython_function_or_method")
                and getattr(obj, "__module__", None) == module.__name__ and obj.__doc__):
            tests.append(parser.get_doctest(obj.__doc__, {}, f"{module.__name__}.{name}",
                                            None, 0))
    return tests


DOCTESTS = list(_doctests())


def test_the_package_has_examples():
    assert len(DOCTESTS) >= 60


def _missing(test):
    """The top-level packages the example imports that are not installed."""
    needs = {name for example in test.examples for name in IMPORTED.findall(example.source)}
    return sorted(name for name in needs if importlib.util.find_spec(name) is None)


def test_an_example_needing_a_missing_package_is_skipped():
    text = ">>> import numpy as np\n>>> from not_installed_xyz import thing\n"
    test = doctest.DocTestParser().get_doctest(text, {}, "t", None, 0)
    assert _missing(test) == ["not_installed_xyz"]


@pytest.mark.parametrize("test", DOCTESTS)
def test_example(test):
    missing = _missing(test)
    if missing:
        pytest.skip(f"the example imports {', '.join(missing)}, which is not installed")
    report = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    try:
        result = runner.run(test, out=report.append)
    finally:
        test.globs.clear()
    assert result.failed == 0, "".join(report)
