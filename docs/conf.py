"""Sphinx configuration: python -m sphinx -W --keep-going -b html docs docs/_build/html.

fastopt must be importable and built (installed, or PYTHONPATH=src after
``python setup.py build_ext --inplace``): the API pages are generated from the modules.
"""

import os
import sys

import fastopt

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

project = "fastopt"
author = "the fastopt developers"
copyright = "the fastopt developers"
release = version = fastopt.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "matplotlib.sphinxext.plot_directive",
    "api_pages",
]

# The API reference: one page per module, in this order; a subpackage's public submodules
# follow it. Names come from each module's __all__ (see _ext/api_pages.py). A public
# module of the top-level package that is missing here stops the build.
api_modules = [
    "fastopt",
    "fastopt.optim",
    "fastopt.optim.storage",
    "fastopt.schedules",
    "fastopt.nn",
    "fastopt.optimize",
    "fastopt.train",
    "fastopt.distributed",
    "fastopt.init",
    "fastopt.kernels",
    "fastopt.checkpoint",
    "fastopt.torch_state",
    "fastopt.torch",
    "fastopt.demo",
    "fastopt.bench",
    "fastopt.bench_loop",
]

# fastopt.torch's page is built against a mock of torch, installed or not: the build needs no
# torch, and the classes' pages list fastopt's methods, not torch.optim's inherited ones
autodoc_mock_imports = ["torch"]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

autosummary_generate = False         # summary tables only: the API pages document each name
autodoc_typehints = "none"          # the numpydoc Parameters sections give the types
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.figsize": (6.4, 3.6), "font.size": 10}
plot_pre_code = "import numpy as np\nimport fastopt as fo\nimport matplotlib.pyplot as plt\n"

html_theme = "pydata_sphinx_theme"
html_title = f"fastopt {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = []
