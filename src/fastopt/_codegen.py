"""Render the boundary of every optimizer family from the table (fastopt/optim/families.py).

``setup.py`` calls :func:`render` before Cython runs; by hand::

    python src/fastopt/_codegen.py

Each template ``src/fastopt/<name>.tp`` (Cython's Tempita, as scikit-learn uses) becomes
``src/fastopt/<name>``; a file is rewritten only when its text changes, so an unchanged
table does not make Cython recompile the extension. The outputs are build products
(git-ignored):

- ``_families.pxi``: per family, the C declarations, the KernelOptions subclass that runs
  its kernel, the ``<name>_options`` builder, the functional ``<name>_step`` and the
  ``<name>_step_f32/f64`` entry points (included by ``_kernels.pyx``);
- ``_families_decl.pxi``: the declarations of those entry points (included by
  ``_kernels.pxd``, for downstream ``cimport``);
- ``_kernels.pyi``: the type stub of the compiled module.

The templates see one :class:`FamilyView` per family: the table's data plus the strings
the templates paste (signatures, checks, docstrings), computed here so the templates stay
readable.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import textwrap
import types
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = ("_families.pxi.tp", "_families_decl.pxi.tp", "_kernels.pyi.tp")


def load_families(package_dir: str = HERE) -> Any:
    """fastopt.optim.families, imported from the source tree without running
    fastopt/__init__.py (which needs the compiled extension the build is about to make)."""
    names = ("fastopt", "fastopt.optim", "fastopt._validation", "fastopt.optim.families")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    try:
        for name, path in (("fastopt", package_dir),
                           ("fastopt.optim", os.path.join(package_dir, "optim"))):
            stub = types.ModuleType(name)
            stub.__path__ = [path]
            sys.modules[name] = stub
        return importlib.import_module("fastopt.optim.families")
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


# -- what the templates paste -----------------------------------------------------------------


def _c_number(x: float) -> str:
    if math.isinf(x):
        return "INFINITY" if x > 0 else "-INFINITY"
    return repr(float(x))


def check_call(constraint: Any, value: str, name: str) -> str:
    """The boundary's check of `value` (a Cython expression) against a table constraint."""
    kind = type(constraint).__name__
    if kind == "Bool":
        return f'check_bool({value}, "{name}")'
    if kind == "Int":
        if (constraint.low, constraint.high) != (1, 1 << 62):
            raise ValueError(f"{name}: only the step number (an Int in [1, 2**62]) is an int")
        return f'check_step({value}, "{name}")'
    if kind == "Real":
        low = -math.inf if constraint.low is None else constraint.low
        high = math.inf if constraint.high is None else constraint.high
        low_open = constraint.closed in ("right", "neither")
        high_open = constraint.closed in ("left", "neither")
        return (f'check_real({value}, "{name}", {_c_number(low)}, {_c_number(high)}, '
                f"{low_open}, {high_open}, {not constraint.allow_inf})")
    raise ValueError(f"{name}: no boundary check for a {kind} constraint")


def _py_type(constraint: Any) -> str:
    return {"Bool": "bool", "Int": "int"}.get(type(constraint).__name__, "float")


def _describe(constraint: Any) -> str:
    return constraint.describe()


def _fill(text: str) -> str:
    """A parameter description: wrapped, indented under its name."""
    return textwrap.fill(text, 84, initial_indent="    ", subsequent_indent="    ")


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else "" for line in text.splitlines())


class FamilyView:
    """A family of the table as the templates use it."""

    check_call = staticmethod(check_call)

    def __init__(self, family: Any, families_module: Any) -> None:
        self.f = family
        self.m = families_module
        self.name = family.name
        self.kernel = family.kernel
        self.builder = family.builder
        self.cls = "_" + family.name.capitalize() + "Options"
        self.options_t = f"fo_{family.name}_options"
        self.states = family.states
        self.hypers = family.hypers
        self.reals = family.real_scalars
        self.takes_step = family.takes_step
        self.state_names = repr(tuple(s.name for s in family.states))

    # -- C declarations ---------------------------------------------------------------
    @property
    def struct_fields(self) -> list[str]:
        fields = [("int" if h.is_flag else "double") + " " + h.name for h in self.hypers]
        if self.takes_step:
            fields += ["int64_t step", "const int64_t *steps"]
        for s in self.reals:
            fields += [f"double {s.name}", f"const double *{s.name}s"]
        return fields

    def c_prototype(self, t: str) -> str:
        states = ", ".join(f"{t} **{s.name}" for s in self.states)
        return (f"int fo_{self.name}_step_{'f32' if t == 'float' else 'f64'}(fo_layout *layout, "
                f"{t} **param, const {t} **grad, {states}, const {self.options_t} *o, "
                "int nthreads)")

    def c_call(self, t: str, batch: str = "b") -> str:
        columns = ", ".join(f"<{t} **>{batch}.column({2 + j})" for j in range(len(self.states)))
        return (f"fo_{self.name}_step_{'f32' if t == 'float' else 'f64'}(&{batch}.layout, "
                f"<{t} **>{batch}.column(0), <const {t} **>{batch}.column(1), {columns}, &o, "
                "nthreads)")

    # -- the options builder ----------------------------------------------------------
    @property
    def builder_params(self) -> str:
        parts = [h.name if h.default is self.m.REQUIRED else f"{h.name}={h.default!r}"
                 for h in self.hypers]
        if self.takes_step:
            parts.append("step=1")
        return ", ".join(parts)

    @property
    def builder_args(self) -> str:
        return ", ".join([h.name for h in self.hypers] + (["step"] if self.takes_step else []))

    @property
    def assignments(self) -> list[str]:
        out = [f"o.c.{h.name} = {check_call(h.constraint, h.name, h.name)}" for h in self.hypers]
        if self.takes_step:
            out.append(f"o.c.step = {check_call(self.m.STEP_ARG.constraint, 'step', 'step')}")
        return out

    @property
    def used_mask(self) -> str:
        parts = []
        for j, s in enumerate(self.states):
            bit = 1 << j
            if s.used is None:
                parts.append(str(bit))
            elif s.flag:
                parts.append(f"({bit} if o.c.{s.flag} else 0)")
            else:
                parts.append(f"({bit} if o.c.{s.used.split()[0]} != 0.0 else 0)")
        return " | ".join(parts)

    @property
    def checks(self) -> list[tuple[str, str]]:
        """(Cython condition, message f-string) per cross-hyperparameter rule."""
        import re

        out = []
        names = {h.name for h in self.hypers}
        for check in self.f.checks:
            used = [n for n in re.findall(r"[A-Za-z_]\w*", check.when) if n in names]
            cond = re.sub(r"[A-Za-z_]\w*",
                          lambda mt: f"o.c.{mt[0]}" if mt[0] in names else mt[0], check.when)
            got = ", ".join(f"{n}={{o.c.{n}!r}}" for n in dict.fromkeys(used)
                            if n != check.name)
            out.append((cond, f"{check.name}: expected {check.expected}, got {got}"))
        return out

    # -- the functional kernel --------------------------------------------------------
    @property
    def positional_states(self) -> list[Any]:
        return [s for s in self.states if not s.keyword]

    @property
    def keyword_states(self) -> list[Any]:
        return [s for s in self.states if s.keyword]

    def _signature(self, typed: bool) -> str:
        arr = ": _Arrays" if typed else ""
        opt_arr = ": _Arrays | None" if typed else ""
        parts = [f"p{arr}", f"g{arr}"]
        for s in self.positional_states:
            if s.used:
                parts.append(f"{s.arg}{opt_arr} = ..." if typed else f"{s.arg}=None")
            else:
                parts.append(f"{s.arg}{arr}")
        parts.append("*")
        if self.takes_step:
            parts.append("step: int" if typed else "step")
        for s in self.reals:
            parts.append(f"{s.name}: float" if typed else s.name)
        for h in self.hypers:
            if not h.functional:
                continue
            ann = f": {_py_type(h.constraint)}" if typed else ""
            if h.default is self.m.REQUIRED:
                parts.append(f"{h.name}{ann}")
            else:
                parts.append(f"{h.name}{ann} = ..." if typed else f"{h.name}={h.default!r}")
        for s in self.keyword_states:
            parts.append(f"{s.arg}{opt_arr} = ..." if typed else f"{s.arg}=None")
        return ", ".join(parts)

    @property
    def step_params(self) -> str:
        return self._signature(typed=False)

    @property
    def stub_step(self) -> str:
        returns = "float" if self.reals else "None"
        return f"def {self.kernel}({self._signature(typed=True)}) -> {returns}: ..."

    @property
    def stub_builder(self) -> str:
        parts = []
        for h in self.hypers:
            ann = _py_type(h.constraint)
            parts.append(f"{h.name}: {ann}" + ("" if h.default is self.m.REQUIRED else " = ..."))
        if self.takes_step:
            parts.append("step: int = ...")
        return f"def {self.builder}({', '.join(parts)}) -> KernelOptions: ..."

    @property
    def builder_call(self) -> str:
        """The functional kernel's call of the builder (flags implied by a state argument
        are that argument's presence)."""
        args = []
        for h in self.hypers:
            if h.functional:
                args.append(h.name)
            else:
                state = next(s for s in self.states if s.flag == h.name)
                args.append(f"{state.arg} is not None")
        if self.takes_step:
            args.append("step")
        return f"_{self.builder}({', '.join(args)})"

    def state_why(self, s: Any) -> str:
        if s.flag:
            return f"needed when {s.flag}=True"
        return f"needed when {s.used.replace('!= 0', '> 0')}"

    @property
    def docstring(self) -> str:
        f = self.f
        lines = [f"{f.title}: one step, in place.", "", "::", "", _indent(f.formula, 4), ""]
        legend = ", ".join(f"{s.arg} is the state {s.name!r}" for s in self.states
                           if s.arg != s.name)
        if legend or self.takes_step:
            text = ("t = ``step`` (1 for the first update)" if self.takes_step else "")
            text = "; ".join(x for x in (text, legend) if x)
            lines += [f"({text}.)", ""]
        if f.notes:
            lines += [textwrap.fill(f.notes, 84), ""]
        lines += ["Parameters", "----------",
                  "p : ndarray or list of ndarray",
                  "    Parameters (float32/float64, C-contiguous, writeable), updated in place.",
                  "    A list is updated in ONE C call per dtype whose work is split by total",
                  "    elements.",
                  "g : ndarray or list of ndarray",
                  "    Gradients (same dtype and shape; non-contiguous ones are copied)."]
        for s in self.positional_states + self.keyword_states:
            optional = ", optional" if s.used else ""
            lines += [f"{s.arg} : ndarray or list of ndarray{optional}",
                      _fill(s.doc[0].upper() + s.doc[1:] + "; updated in place"
                            + (f" (state {s.name!r})." if s.arg != s.name else "."))]
        if self.takes_step:
            lines += ["step : int", "    1-based number of this update (the bias corrections "
                      "and decays use it)."]
        for s in self.reals:
            lines += [f"{s.name} : float",
                      _fill(f"The {s.doc} before this update ({s.initial} before the first): "
                            f"{_describe(s.constraint)}.")]
        for h in self.hypers:
            if not h.functional:
                continue
            default = "" if h.default is self.m.REQUIRED else f", default {h.default!r}"
            lines += [f"{h.name} : {_py_type(h.constraint)}{default}",
                      _fill(f"{h.doc[0].upper() + h.doc[1:]}: {_describe(h.constraint)}.")]
        lines += ["", "Returns", "-------"]
        if self.reals:
            s = self.reals[0]
            lines += ["float", f"    The {s.name} after this update: pass it to the next call."]
        else:
            lines += ["None"]
        lines += ["", "Raises", "------", "TypeError, ValueError",
                  "    For a bad argument, naming it; nothing is modified then."]
        if f.example:
            lines += ["", "Examples", "--------", f.example]
        return _indent("\n".join(lines), 4).lstrip()

    # -- the .pxd entry points --------------------------------------------------------
    @property
    def presence_flags(self) -> dict[str, str]:
        return {s.flag: s.name for s in self.states if s.flag}

    def pxd_params(self, t: str) -> str:
        parts = [f"{t} *param", f"const {t} *grad"]
        parts += [f"{t} *{s.name}" for s in self.states]
        parts.append("Py_ssize_t n")
        if self.takes_step:
            parts.append("int64_t step")
        parts += [f"double *{s.name}" for s in self.reals]
        for h in self.hypers:
            if h.name in self.presence_flags:
                continue
            parts.append(("bint " if h.is_flag else "double ") + h.name)
        parts.append("int nthreads")
        return ", ".join(parts)

    @property
    def pxd_assignments(self) -> list[str]:
        out = []
        for h in self.hypers:
            state = self.presence_flags.get(h.name)
            out.append(f"o.{h.name} = {state} != NULL" if state else f"o.{h.name} = {h.name}")
        if self.takes_step:
            out.append("o.step = step")
        return out

    @property
    def pxd_guard(self) -> str:
        cond = ["n < 0"]
        if self.takes_step:
            cond.append("step < 1")
        cond += [f"{s.name} == NULL" for s in self.reals]
        return " or ".join(cond)

    @property
    def pxd_state_refs(self) -> str:
        return ", ".join(f"&{s.name}" for s in self.states)


def context(families_module: Any) -> dict[str, Any]:
    views = [FamilyView(f, families_module) for f in families_module.FAMILIES.values()]
    return {"families": views, "kernels": [v.kernel for v in views]}


def render(package_dir: str = HERE, verbose: bool = True) -> list[str]:
    """Render every template of `package_dir`; returns the paths it (re)wrote."""
    from Cython.Tempita import Template

    namespace = context(load_families(package_dir))
    written = []
    for name in TEMPLATES:
        source = os.path.join(package_dir, name)
        target = source[:-len(".tp")]
        with open(source) as f:
            text = Template(f.read(), name=source).substitute(namespace)
        old = None
        if os.path.exists(target):
            with open(target) as f:
                old = f.read()
        if text != old:
            with open(target, "w") as f:
                f.write(text)
            written.append(target)
            if verbose:
                print(f"fastopt: generated {os.path.relpath(target)} from the family table")
    return written


if __name__ == "__main__":
    render()
