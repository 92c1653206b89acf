"""Documentation: every public function and class of the listed modules has a numpydoc
Examples section and documents its parameters (test_examples.py runs the examples);
the guide pages' Python examples run; CITATION.cff is complete. Extend MODULES as
modules gain examples."""

import glob
import importlib
import inspect
import os
import re

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


# -- the documentation site's pages and the citation file (source tree only) ----------------
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
needs_source = pytest.mark.skipif(not PAGES, reason="needs the source tree's docs/")


def _python_blocks(path):
    """The page's ```python blocks (illustrations use ```{code-block} python instead)."""
    with open(path, encoding="utf-8") as f:
        return re.findall(r"^```python\n(.*?)^```", f.read(), flags=re.S | re.M)


@needs_source
@pytest.mark.parametrize("page", [p for p in PAGES if _python_blocks(p)],
                         ids=lambda p: os.path.relpath(p, ROOT))
def test_page_examples_run(page, tmp_path, monkeypatch, capsys):
    """Each page's Python examples run as written, in order, in one namespace."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in _python_blocks(page):
        exec(compile(block, page, "exec"), namespace)


@needs_source
def test_citation_file_is_complete_and_current():
    import fastopt

    yaml = pytest.importorskip("yaml")
    with open(os.path.join(ROOT, "CITATION.cff"), encoding="utf-8") as f:
        citation = yaml.safe_load(f)
    assert citation["cff-version"] == "1.2.0"
    assert {"message", "title", "authors", "license", "type"} <= set(citation)
    assert citation["version"] == fastopt.__version__   # bump it with the release
