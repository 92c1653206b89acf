"""fastopt's version, written here and nowhere else.

The package metadata (pyproject.toml: ``dynamic = ["version"]``), ``fastopt.__version__``,
the C kernels' ``FO_VERSION`` / ``fo_version()`` (setup.py passes it as a define and writes it
into the installed ``config.h``) and ``fastopt.pc`` all take it from this line at build time.
"""

__version__ = "0.1.0"
