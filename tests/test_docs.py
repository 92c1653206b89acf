"""Docstrings: every public function and class of the listed modules has a numpydoc
Examples section and documents its parameters (the examples run in CI as doctests:
``pytest --doctest-modules``). Extend MODULES as modules gain examples."""

import importlib
import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

MODULES = ["fastopt.schedules", "fastopt.nn", "fastopt.init", "fastopt.demo",
           "fastopt._config"]
# (name, why it is not checked here)
EXEMPT = {
    "fastopt._config.get_num_threads": "defined in _threads.pxi (the Cython boundary)",
    "fastopt._config.set_num_threads": "defined in _threads.pxi (the Cython boundary)",
}
CHECKS = {"EX01": "no Examples section", "PR01": "parameters not documented",
          "PR02": "unknown parameters documented", "RT01": "no Returns section"}


def public_names():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if (inspect.isclass(value) or inspect.isfunction(value)) and \
                    f"{module_name}.{name}" not in EXEMPT:
                yield f"{module_name}.{name}"


@pytest.mark.parametrize("name", list(public_names()))
def test_docstring_has_examples_and_documents_parameters(name):
    errors = [f"{code} {message}" for code, message in numpydoc_validate.validate(name)["errors"]
              if code in CHECKS]
    assert not errors, "\n".join(errors)
