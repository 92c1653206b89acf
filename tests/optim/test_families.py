"""The table of optimizer families (fastopt/optim/families.py) and what is derived from it:
the functional kernels' signatures and docstrings, the classes' options and defaults, the
C options structs, and the generated boundary files (up to date with the table). Their
Examples run in test_examples.py."""

import inspect
import os
import re

import numpy as np
import pytest

import fastopt
from fastopt import _kernels, kernels
from fastopt.optim.families import FAMILIES, REQUIRED
from fastopt_testing import paths

CSRC = str(paths.CSRC)
PACKAGE = os.path.dirname(fastopt.__file__)
CLASSES = [getattr(fastopt.optim, n) for n in fastopt.optim.__all__ if n != "Optimizer"]
#: class defaults that differ from the kernel's on purpose (torch's AdamW default)
CLASS_DEFAULTS = {("AdamW", "weight_decay"): 1e-2}


def test_kernels_module_exports_every_family():
    assert kernels.__all__ == [f.kernel for f in FAMILIES.values()] + [
        "all_finite", "planned_threads", "last_threads_used"]
    for f in FAMILIES.values():
        assert getattr(kernels, f.kernel) is getattr(_kernels, f.kernel)


@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=lambda f: f.name)
def test_functional_kernel_signature_and_docstring_follow_the_table(family):
    fn = getattr(kernels, family.kernel)
    params = inspect.signature(fn).parameters
    positional = [s.arg for s in family.states if not s.keyword]
    assert list(params)[:2 + len(positional)] == ["p", "g", *positional]
    for h in family.hypers:
        if not h.functional:
            assert h.name not in params
            continue
        default = params[h.name].default
        assert default == (inspect.Parameter.empty if h.default is REQUIRED else h.default)
    assert ("step" in params) == family.takes_step
    for s in family.states:
        assert s.arg in params
    doc = fn.__doc__
    for line in family.formula.splitlines():
        assert line.strip() in doc
    assert "Raises" in doc and "Parameters" in doc


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_class_options_and_defaults_follow_the_table(cls):
    family = cls.family
    assert cls.state_names == family.state_names
    assert "{formula}" not in cls.__doc__ and family.formula.splitlines()[-1].strip() \
        in cls.__doc__
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "params", "lr"):
            continue
        if name in STORAGE_DEFAULTS:    # how state is stored: the same on every class
            assert param.default == STORAGE_DEFAULTS[name] and param.kind == param.KEYWORD_ONLY
            continue
        if name == "betas":
            expected = (family.hyper("beta1").default, family.hyper("beta2").default)
        else:
            kernel_name = "decoupled" if name == "decoupled_weight_decay" else name
            expected = CLASS_DEFAULTS.get((cls.__name__, name),
                                          family.hyper(kernel_name).default)
        assert param.default == expected, f"{cls.__name__}({name}=...)"


#: The keyword-only options of every class that choose how state is stored.
STORAGE_DEFAULTS = {"state_dtype": None, "min_lowprec_size": 4096, "state_seed": 0,
                    "param_rounding": "stochastic"}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_class_state_holds_the_families_scalars(cls):
    p = np.ones(3)
    options = {"momentum": 0.9} if cls.family.name == "sgd" else {}
    opt = cls([p], **options)
    opt.step([np.ones(3)])
    entries = opt.state[0]
    for s in cls.family.scalars:
        assert entries[s.name].shape == () and entries[s.name].dtype == np.dtype(s.dtype)
    assert set(entries) == {s.name for s in cls.family.scalars} | {
        s.name for s in cls.family.used_states(options)}
    sd = opt.state_dict()["state"][0]
    for s in cls.family.scalars:
        assert type(sd[s.name]) is (int if s.dtype == "int64" else float)


def _c_structs():
    with open(os.path.join(CSRC, "optim.h")) as f:
        text = f.read()
    structs = {}
    for name, body in re.findall(r"typedef struct fo_(\w+)_options \{(.*?)\}", text, re.S):
        fields = []
        for decl in body.split(";"):
            decl = decl.strip()
            if decl:
                fields += [n.strip().lstrip("*") for n in decl.split(None, 1)[1].split(",")]
                fields = [re.sub(r"^(const\s+)?\w+\s*\*?", "", f) if " " in f else f
                          for f in fields]
        structs[name] = fields
    return structs


@pytest.mark.skipif(not os.path.isdir(CSRC), reason="needs the source tree (csrc/)")
@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=lambda f: f.name)
def test_c_options_struct_has_exactly_the_tables_fields(family):
    fields = set(_c_structs()[family.name])
    expected = {h.name for h in family.hypers}
    if family.takes_step:
        expected |= {"step", "steps"}
    for s in family.real_scalars:
        expected |= {s.name, s.name + "s"}
    assert fields == expected
    assert os.path.isfile(os.path.join(CSRC, f"{family.name}.inc"))


def test_generated_files_are_up_to_date_with_the_table():
    """The build renders src/fastopt/*.tp from the table; an edit of the table without a
    rebuild would leave the compiled boundary behind it."""
    if not os.path.isfile(os.path.join(PACKAGE, "_families.pxi.tp")):
        pytest.skip("the templates are not installed with this copy")
    from Cython.Tempita import Template

    from fastopt import _codegen
    from fastopt.optim import families

    namespace = _codegen.context(families)
    for name in _codegen.TEMPLATES:
        with open(os.path.join(PACKAGE, name)) as f:
            text = Template(f.read(), name=name).substitute(namespace)
        with open(os.path.join(PACKAGE, name[:-3])) as f:
            assert f.read() == text, f"{name[:-3]} is stale: rebuild"


def test_checks_across_options_come_from_the_table():
    check = FAMILIES["sgd"].checks[0]
    for example in check.examples:
        assert check.fails(example)
        with pytest.raises(ValueError, match="^nesterov: expected momentum > 0 and dampening"):
            kernels.sgd_step(np.zeros(2), np.ones(2), np.zeros(2), lr=0.1, **example)
    assert not check.fails({"nesterov": True, "momentum": 0.9, "dampening": 0.0})

