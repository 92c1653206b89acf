"""A reusable property-based fuzzer for fastopt's Python/C boundary.

Nothing here knows a particular kernel: a kernel is described by a :class:`KernelSpec`
(its callable, its array arguments and their roles, its hyperparameters and their domains,
and a small numpy reference), an optimizer class by an :class:`OptimizerSpec`. The table of
specs lives in ``fuzz_specs.py``; ``test_fuzz.py`` runs three properties over every entry:

1. valid calls (random shapes including 0-d and empty, float32/float64, NaN/Inf values,
   read-only inputs in any memory layout: strided, reversed, Fortran, byte-swapped,
   unaligned, broadcast) match the numpy reference, and never write to their inputs;
2. invalid arrays (wrong dtype kinds, shapes, non-contiguous/read-only/byte-swapped/
   unaligned outputs, memory shared with another argument, missing arrays, wrong
   containers, list-length mismatches) raise TypeError/ValueError whose message starts with
   the offending argument's name, and every byte of every array is unchanged;
3. invalid hyperparameters (out of range, NaN, +-inf, huge ints, wrong types) likewise;
4. a call big enough for an OpenMP team gives the same bits with 1 and 2 threads.

Hypothesis profiles are registered here (no conftest needed); the environment variable
``FASTOPT_FUZZ_PROFILE`` picks one: ``fastopt`` (default: 20 examples, derandomized, so CI
is reproducible), ``fastopt-quick`` (the sanitizer job: 8 examples) or ``fastopt-thorough``
(1,000 random examples, for a local soak).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# -- hypothesis profiles -------------------------------------------------------------------

_COMMON = dict(
    deadline=None,
    database=None,
    print_blob=True,
    # no "explain" phase: it is slow and imports libcst; shrinking stays on
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
settings.register_profile("fastopt", max_examples=20, derandomize=True, **_COMMON)
settings.register_profile("fastopt-quick", max_examples=8, derandomize=True, **_COMMON)
settings.register_profile("fastopt-thorough", max_examples=1000, derandomize=False, **_COMMON)
PROFILE_NAME = os.environ.get("FASTOPT_FUZZ_PROFILE", "fastopt")
PROFILE = settings.get_profile(PROFILE_NAME)


def fuzz_settings(scale: float = 1.0) -> settings:
    """The chosen profile, with `scale` times its example count (for costlier properties)."""
    return settings(PROFILE, max_examples=max(2, int(PROFILE.max_examples * scale)))


FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
NAN, INF = float("nan"), float("inf")
HUGE_INT = 10**400  # float(HUGE_INT) raises OverflowError: the boundary must not leak that

# -- hyperparameter domains ----------------------------------------------------------------


def to_float(value: Any) -> float:
    """float(value), with ints beyond the double range as +-inf (as the boundary reads them)."""
    try:
        return float(value)
    except OverflowError:
        return INF if value > 0 else -INF


def _as_type(draw, value: float, integral_ok: bool) -> Any:
    """`value` as float, numpy float64/float32 scalar, or int when it is integral."""
    if isinstance(value, int) and abs(value) > 2**1024:
        return value
    kinds = ["float", "np64"]
    with np.errstate(over="ignore"):
        exact32 = float(np.float32(value)) == value  # compared in double, not float32
    if exact32:
        kinds.append("np32")
    if integral_ok and float(value).is_integer() and abs(value) < 2**53:
        kinds.append("int")
    kind = draw(st.sampled_from(kinds))
    with np.errstate(over="ignore"):
        return {"float": float, "np64": np.float64, "np32": np.float32, "int": int}[kind](value)


@dataclasses.dataclass(frozen=True)
class Real:
    """A real hyperparameter in [low, high] (or open ends); finite unless allow_inf."""

    low: float = -INF
    high: float = INF
    low_open: bool = False
    high_open: bool = False
    allow_inf: bool = False
    allow_nan: bool = False
    none_ok: bool = False  # None is a valid value with its own meaning (not drawn)
    typical: tuple[float, float] | None = None  # where valid values are drawn
    edges: tuple[float, ...] = ()  # extra valid values worth trying

    @functools.cache  # noqa: B019 - frozen dataclass; building strategies is costly
    def valid(self) -> st.SearchStrategy:
        lo, hi = self.typical or (
            self.low if math.isfinite(self.low) else -10.0,
            self.high if math.isfinite(self.high) else 10.0)
        body = st.floats(lo, hi, allow_nan=False, allow_infinity=False,
                         exclude_min=self.low_open and lo == self.low,
                         exclude_max=self.high_open and hi == self.high)
        edges = [e for e in self.edges if self.contains(e)]
        for bound, is_open in ((self.low, self.low_open), (self.high, self.high_open)):
            if math.isfinite(bound) and not is_open:
                edges.append(bound)
        if self.allow_inf and self.high == INF and not self.high_open:
            edges += [INF, HUGE_INT]  # a huge int is +inf as a float
        if self.allow_inf and self.low == -INF and not self.low_open:
            edges += [-INF, -HUGE_INT]
        if self.allow_nan:
            edges.append(NAN)
        base = st.one_of(body, st.sampled_from(edges)) if edges else body

        @st.composite
        def typed(draw):
            return _as_type(draw, draw(base), integral_ok=True)

        return typed()

    def contains(self, v: float) -> bool:
        if v != v:
            return self.allow_nan
        if math.isinf(v) and not self.allow_inf:
            return False
        if v < self.low or v > self.high:
            return False
        return not ((self.low_open and v == self.low) or (self.high_open and v == self.high))

    def invalid(self) -> list[tuple[Any, tuple[type, ...]]]:
        """(value, allowed exception types) pairs, each invalid for this domain."""
        out: list[tuple[Any, tuple[type, ...]]] = [] if self.allow_nan else [
            (NAN, (ValueError,)), (np.float64(NAN), (ValueError,))]
        out += [
            ("0.5", (TypeError,)), ([0.5], (TypeError,)),
            (1 + 1j, (TypeError,)), (True, (TypeError,)), (object(), (TypeError,)),
            (np.array([0.5, 0.5]), (TypeError,)),
        ]
        if not self.none_ok:
            out.append((None, (TypeError,)))
        for v in (INF, -INF):
            if not self.contains(v):
                out.append((v, (ValueError,)))
        if not self.contains(INF):  # a huge int is +inf as a float
            out.append((HUGE_INT, (ValueError, TypeError)))
        if not self.contains(-INF):
            out.append((-HUGE_INT, (ValueError, TypeError)))
        if math.isfinite(self.low):
            below = [self.low - 1.0, self.low - 1e-3, np.nextafter(self.low, -INF)]
            if self.low_open:
                below.append(self.low)
            out += [(v, (ValueError,)) for v in below]
        if math.isfinite(self.high):
            above = [self.high + 1.0, np.nextafter(self.high, INF)]
            if self.high_open:
                above.append(self.high)
            out += [(v, (ValueError,)) for v in above]
        return out


@dataclasses.dataclass(frozen=True)
class Flag:
    """A bool hyperparameter: True/False (numpy bools too); anything else is a TypeError."""

    @functools.cache  # noqa: B019
    def valid(self) -> st.SearchStrategy:
        return st.sampled_from([True, False, np.True_, np.False_])

    def invalid(self) -> list[tuple[Any, tuple[type, ...]]]:
        return [(v, (TypeError,)) for v in (1, 0, None, "True", 0.5, [True])]


@dataclasses.dataclass(frozen=True)
class Integer:
    """An integer hyperparameter in [low, high] (valid draws up to `typical_high` when
    given: a count of elements to allocate is valid up to 2**64 - 1 but cannot be drawn)."""

    low: int = 0
    high: int = 2**62
    typical_high: int | None = None

    @functools.cache  # noqa: B019
    def valid(self) -> st.SearchStrategy:
        top = self.high if self.typical_high is None else self.typical_high
        ints = st.integers(self.low, min(top, self.low + 10**6)) | st.sampled_from(
            [self.low, top])
        return ints.flatmap(lambda v: st.sampled_from(
            [v, np.int64(v) if v < 2**63 else np.uint64(v)]))

    def invalid(self) -> list[tuple[Any, tuple[type, ...]]]:
        out: list[tuple[Any, tuple[type, ...]]] = [
            (1.5, (TypeError,)), ("3", (TypeError,)), (None, (TypeError,)),
            (True, (TypeError,)), (NAN, (TypeError, ValueError)), ([3], (TypeError,)),
            (self.low - 1, (ValueError,)), (-HUGE_INT, (ValueError,)),
        ]
        if self.high < 2**62:
            out.append((self.high + 1, (ValueError,)))
        else:
            out.append((HUGE_INT, (ValueError,)))
        return out


@dataclasses.dataclass(frozen=True)
class Choice:
    """A hyperparameter from a fixed set of valid values (and a list of invalid ones)."""

    values: tuple[Any, ...]
    bad: tuple[tuple[Any, tuple[type, ...]], ...] = ()

    def valid(self) -> st.SearchStrategy:
        return st.sampled_from(self.values)

    def invalid(self) -> list[tuple[Any, tuple[type, ...]]]:
        return list(self.bad)


@dataclasses.dataclass(frozen=True)
class Words:
    """A sequence of exactly `count` unsigned `bits`-bit integers (a Philox counter or key):
    a list, a tuple or a numpy array of them; anything else is a TypeError/ValueError."""

    count: int
    bits: int = 32

    @functools.cache  # noqa: B019
    def valid(self) -> st.SearchStrategy:
        top = 2**self.bits - 1
        word = st.integers(0, top) | st.sampled_from([0, 1, top])
        unsigned = np.uint32 if self.bits == 32 else np.uint64
        return st.lists(word, min_size=self.count, max_size=self.count).flatmap(
            lambda ws: st.sampled_from([ws, tuple(ws), np.array(ws, unsigned),
                                        [unsigned(w) for w in ws], [np.uint64(w) for w in ws]]))

    def invalid(self) -> list[tuple[Any, tuple[type, ...]]]:
        ok = [0] * self.count

        def one(bad):
            return [bad] + ok[1:]
        return [
            (ok + [0], (ValueError,)), (ok[:-1], (ValueError,)), ([], (ValueError,)),
            (one(2**self.bits), (ValueError,)), (one(-1), (ValueError,)),
            (one(HUGE_INT), (ValueError,)), (one(-HUGE_INT), (ValueError,)),
            (one(1.0), (TypeError,)), (one(True), (TypeError,)), (one(None), (TypeError,)),
            (one("1"), (TypeError,)), (np.zeros(self.count), (TypeError,)),
            ("x" * self.count, (TypeError,)),
        ]


@dataclasses.dataclass(frozen=True)
class Constrained:
    """A hyperparameter checked against a fastopt._validation constraint (an optimizer
    family's, from fastopt/optim/families.py): its invalid values are the constraint's own
    ``bad_values()``, each expected to raise what ``constraint.check`` raises for it, and
    its valid values are drawn inside its range (``typical`` narrows where), in every form
    the rules accept: float, numpy float64/float32 scalars, an integral int, a 0-d array."""

    constraint: Any
    typical: tuple[float, float] | None = None
    edges: tuple[float, ...] = ()

    @functools.cache  # noqa: B019
    def valid(self) -> st.SearchStrategy:
        kind = type(self.constraint).__name__
        if kind == "Bool":
            return st.sampled_from([True, False, np.True_, np.False_, np.array(True)])
        if kind == "Int":
            return Integer(int(self.constraint.low), int(self.constraint.high)).valid()
        c = self.constraint
        real = Real(low=-INF if c.low is None else float(c.low),
                    high=INF if c.high is None else float(c.high),
                    low_open=c.closed in ("right", "neither"),
                    high_open=c.closed in ("left", "neither"), allow_inf=c.allow_inf,
                    typical=self.typical, edges=self.edges)
        return st.one_of(real.valid(), real.valid().map(lambda v: np.array(v)))

    def invalid(self) -> list[tuple[Any, tuple[type, ...]]]:
        out = []
        for value in self.constraint.bad_values():
            try:
                self.constraint.check(value, "x")
            except (TypeError, ValueError) as exc:
                out.append((value, (type(exc),)))
            else:  # pragma: no cover - the constraint's own test covers this
                raise AssertionError(f"{self.constraint!r} accepts its bad value {value!r}")
        return out


@dataclasses.dataclass(frozen=True)
class Hyper:
    name: str
    domain: Real | Flag | Integer | Choice | Words | Constrained


# -- array arguments -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Values:
    """Valid element values of an array argument: uniform in [low, high], plus specials."""

    low: float = -4.0
    high: float = 4.0
    specials: tuple[float, ...] = (0.0, -0.0, NAN, INF, -INF, 1e30, -1e30, 1e-30)

    def fill(self, rng: np.random.Generator, shape: tuple, dtype: np.dtype,
             special_rate: float) -> np.ndarray:
        a = rng.uniform(self.low, self.high, size=shape).astype(dtype)
        if special_rate and a.size and self.specials:
            hit = rng.random(shape) < special_rate
            picks = rng.choice(np.array(self.specials, dtype=np.float64), size=shape)
            with np.errstate(over="ignore"):  # 1e30 is inf in float16
                a[hit] = picks[hit].astype(dtype)
        return a


def _same(shape: tuple) -> tuple:
    return shape


@dataclasses.dataclass(frozen=True)
class Arg:
    """One array argument of a kernel.

    written: the kernel updates it in place (it must be writeable, C-contiguous, aligned,
    native byte order, and share no memory with another argument); otherwise it is an input
    that any layout must be accepted for (copied if needed), and that must never be written.
    presence(hypers) -> "required" | "optional" | "absent": whether the call passes it.
    """

    name: str
    written: bool
    keyword: bool = False  # passed by keyword instead of positionally
    shape: Callable[[tuple], tuple] = _same  # from the tensor's base shape
    dtype: Callable[[np.dtype], np.dtype] | None = None  # None: the tensor's float dtype
    values: Values = Values()
    presence: Callable[[dict], str] = lambda hypers: "required"
    # a written array that may have any memory layout (the function falls back to numpy)
    any_layout: bool = False
    # the layouts an input accepts (the others must raise naming it); default: all
    layouts: tuple[str, ...] | None = None
    # a shape that must be refused (default: one more trailing element or axis)
    bad_shape: Callable[[tuple], tuple] | None = None
    bad_dtypes: tuple[str, ...] = ("int8", "int64", "uint16", "bool", "float16", "complex64",
                                   "complex128", "object", "longdouble", "U1")
    # an empty array of any dtype is accepted (rows=[] is a float64 array)
    empty_any_dtype: bool = False
    # bad_values(array, call.arrays) -> [(how, array with invalid elements)]: each must be a
    # ValueError naming this argument (row indices out of range)
    bad_values: Callable[[np.ndarray, dict], list[tuple[str, np.ndarray]]] | None = None

    def dtype_for(self, base: np.dtype) -> np.dtype:
        return np.dtype(self.dtype(base)) if self.dtype else base


@dataclasses.dataclass
class KernelSpec:
    """One public kernel: how to call it, its arguments, and its numpy reference.

    reference(arrays, hypers) gets native C-contiguous copies of the array arguments (a
    dict name -> array or None; in multi-tensor mode it is called once per tensor) and the
    hyperparameters, and returns {name: expected value after the call} for the written
    arguments it changes, plus "return" for the expected return value if any (a written
    argument missing from the dict must be unchanged). For outputs that cannot be
    predicted exactly (random masks), `check(result, before, after, hypers)` may assert
    instead of or in addition to `reference`.
    """

    name: str
    func: Callable[..., Any]
    args: tuple[Arg, ...]
    hypers: tuple[Hyper, ...] = ()
    reference: Callable[[dict, dict], dict] | None = None
    check: Callable[[Any, dict, dict, dict], None] | None = None
    constraint: Callable[[dict], bool] = lambda hypers: True
    invalid_combos: tuple[tuple[dict, str], ...] = ()  # (hyper overrides, name in message)
    shapes: st.SearchStrategy = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                 max_side=5)
    multi: bool = False  # accepts lists of arrays: one multi-tensor C call
    # whether a written array sharing memory with another argument must raise
    overlap_checked: bool = True
    # pairs of arguments that may be exactly the same memory (out=x: in place)
    exact_alias_ok: tuple[frozenset, ...] = ()
    # pairs of arguments whose overlap is not drawn here: harmless (an input read in full
    # before the output is written) or a known bug with its own xfail test
    overlap_unchecked: tuple[frozenset, ...] = ()
    # whether a drawn base shape suits these hypers (e.g. batch norm in training needs
    # more than one value per channel)
    shape_ok: Callable[[tuple, dict], bool] = lambda shape, hypers: True
    # reference over all tensors at once, for functions whose outputs depend on every
    # tensor (a global norm): ([per-tensor arrays], hypers) -> ([per-tensor expected],
    # return value); used instead of `reference` when given
    reference_all: Callable[[list, dict], tuple[list, Any]] | None = None
    # a shape big enough for the kernel to use several OpenMP threads
    large_shape: tuple = (70_001,)
    # hyperparameters that make a call that big (a count of elements to generate)
    large_hypers: dict = dataclasses.field(default_factory=dict)
    # multi-tensor return value from (per-tensor reference returns, hypers); default: list
    combine: Callable[[list, dict], Any] | None = None
    mixed_dtypes: bool = True  # a list may mix float32 and float64 tensors
    dtypes: tuple[np.dtype, ...] = FLOATS
    rtol: dict = dataclasses.field(default_factory=lambda: {np.float32: 2e-6,
                                                            np.float64: 1e-13})
    atol: dict = dataclasses.field(default_factory=lambda: {np.float32: 1e-30,
                                                            np.float64: 1e-300})

    @property
    def array_names(self) -> set[str]:
        return {a.name for a in self.args}

    def __repr__(self) -> str:
        return f"<KernelSpec {self.name}>"


@dataclasses.dataclass
class Call:
    """A concrete call: arrays (single ndarray, list, or None per argument) and hypers."""

    spec: KernelSpec
    arrays: dict[str, Any]
    hypers: dict[str, Any]
    multi: bool
    count: int  # number of tensors (1 unless multi)

    def invoke(self) -> Any:
        """Call the kernel: positional arrays in order (trailing absent ones left to their
        defaults), keyword arrays when the call has them, hypers as keywords."""
        pos, kw, last = [], {}, 0
        for a in self.spec.args:
            if a.keyword:
                if a.name in self.arrays:
                    kw[a.name] = self.arrays[a.name]
            else:
                pos.append(self.arrays.get(a.name))
                if a.name in self.arrays:
                    last = len(pos)
        return self.spec.func(*pos[:last], **kw, **self.hypers)

    def tensors(self, name: str) -> list:
        value = self.arrays.get(name)
        if value is None:
            return []
        return list(value) if self.multi else [value]

    def all_arrays(self) -> list[np.ndarray]:
        out = []
        for a in self.spec.args:
            out += [t for t in self.tensors(a.name) if isinstance(t, np.ndarray)]
        return out

    def copy(self) -> Call:
        """The same call on native C-contiguous copies of its arrays (lists stay lists)."""
        arrays = {k: (type(v)(native_copy(t) for t in v) if self.multi and v is not None
                      else native_copy(v)) for k, v in self.arrays.items()}
        return dataclasses.replace(self, arrays=arrays, hypers=dict(self.hypers))


# -- memory layouts ------------------------------------------------------------------------


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


class Snapshot:
    """Every byte of the buffers behind some arrays (their base arrays, whole)."""

    def __init__(self, arrays: Sequence[Any]):
        self.items = []
        seen = set()
        for a in arrays:
            if not isinstance(a, np.ndarray):
                continue
            r = _root(a)
            if id(r) in seen:
                continue
            seen.add(id(r))
            self.items.append((r, self._bytes(r)))

    @staticmethod
    def _bytes(r: np.ndarray) -> bytes:
        if r.dtype.hasobject:
            return repr(r.tolist()).encode()
        return np.ascontiguousarray(r).view(np.uint8).tobytes() if r.size else b""

    def unchanged(self) -> bool:
        return all(self._bytes(r) == b for r, b in self.items)

    def changed_names(self) -> list[str]:
        return [f"{r.dtype}{r.shape}" for r, b in self.items if self._bytes(r) != b]


def relayout(a: np.ndarray, kind: str) -> np.ndarray:
    """An array equal to `a` (same values, shape, dtype value semantics) with another memory
    layout: contig, strided, reversed, fortran, byteswapped, readonly, unaligned."""
    if kind == "contig":
        return a
    if kind == "strided":
        big = np.empty(a.shape[:-1] + (2 * a.shape[-1],) if a.ndim else (2,), a.dtype)
        view = big[..., ::2] if a.ndim else big[::2].reshape(())
        view[...] = a
        return view
    if kind == "reversed":
        if a.ndim == 0:
            return a
        idx = tuple(slice(None, None, -1) for _ in range(a.ndim))
        return np.ascontiguousarray(a[idx])[idx]
    if kind == "fortran":
        return np.asfortranarray(a) if a.ndim >= 2 else a
    if kind == "byteswapped":
        return a.astype(a.dtype.newbyteorder())
    if kind == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if kind == "unaligned":
        raw = np.empty(a.nbytes + 1, np.uint8)
        view = raw[1:].view(a.dtype).reshape(a.shape)
        view[...] = a
        return view
    raise ValueError(kind)


LAYOUTS = ("contig", "strided", "reversed", "fortran", "byteswapped", "readonly", "unaligned")


# -- drawing calls -------------------------------------------------------------------------

_STRATEGIES: dict = {}


def cached(factory: Callable[..., st.SearchStrategy], spec: Any, **kwargs: Any):
    """factory(spec, **kwargs), built once (hypothesis strategies are costly to build)."""
    key = (factory.__name__, id(spec), tuple(sorted(kwargs.items())))
    if key not in _STRATEGIES:
        _STRATEGIES[key] = factory(spec, **kwargs)
    return _STRATEGIES[key]



@st.composite
def hyper_values(draw, spec: KernelSpec | OptimizerSpec) -> dict:
    for _ in range(50):
        h = {hp.name: draw(hp.domain.valid()) for hp in spec.hypers}
        if spec.constraint(h):
            return h
    from hypothesis import assume

    assume(False)


@st.composite
def valid_calls(draw, spec: KernelSpec, *, layouts: bool = True, special_rate: float | None
                = None, min_count: int = 0, large: bool = False) -> Call:
    """A valid call of `spec`: random hypers, shapes, dtypes, values and input layouts
    (`large`: every tensor has spec.large_shape, so the call runs multi-threaded)."""
    hypers = draw(cached(hyper_values, spec))
    if large:
        hypers.update(spec.large_hypers)
    multi = spec.multi and draw(st.booleans())
    count = draw(st.integers(max(min_count, 0 if multi else 1), 3)) if multi else 1
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if special_rate is None:
        special_rate = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
    base_dtype = draw(st.sampled_from(spec.dtypes))
    present = {}
    for a in spec.args:
        mode = a.presence(hypers)
        present[a.name] = mode == "required" or (mode == "optional" and draw(st.booleans()))
    arrays: dict[str, list] = {a.name: [] for a in spec.args if present[a.name]}
    for _ in range(count):
        dtype = draw(st.sampled_from(spec.dtypes)) if spec.mixed_dtypes else base_dtype
        shape = spec.large_shape if large else draw(spec.shapes.filter(
            lambda sh: spec.shape_ok(sh, hypers)))
        for a in spec.args:
            if not present[a.name]:
                continue
            arr = a.values.fill(rng, a.shape(shape), a.dtype_for(dtype), special_rate)
            if layouts and not a.written:
                arr = relayout(arr, draw(st.sampled_from(a.layouts or LAYOUTS)))
            elif layouts and a.any_layout:
                arr = relayout(arr, draw(st.sampled_from(
                    [k for k in LAYOUTS if k != "readonly"])))
            arrays[a.name].append(arr)
    if multi and count >= 2 and draw(st.booleans()):
        # an input array shared by two tensors (allowed: inputs are only read)
        inputs = [a for a in spec.args if present[a.name] and not a.written]
        if inputs:
            a = draw(st.sampled_from(inputs))
            x = arrays[a.name]
            if x[0].shape == x[1].shape and x[0].dtype == x[1].dtype:
                x[1] = x[0]
    final: dict[str, Any] = {}
    for a in spec.args:
        if present[a.name]:
            final[a.name] = (draw(st.sampled_from([list, tuple]))(arrays[a.name]) if multi
                             else arrays[a.name][0])
    return Call(spec, final, hypers, multi, count)


def native_copy(a: Any) -> Any:
    if not isinstance(a, np.ndarray):
        return a
    return np.array(a, dtype=a.dtype.newbyteorder("="), order="C", copy=True)


def canonical(value: Any) -> Any:
    """A comparable form of a call's result, bit for bit: array bytes, float hex, the slots
    of result objects (a dropout mask, a batch-norm cache)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.generic):
        return canonical(np.asarray(value))
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(canonical(v) for v in value)
    slots = getattr(type(value), "__slots__", None)
    if slots:
        return (type(value).__name__,) + tuple(canonical(getattr(value, s)) for s in slots)
    if hasattr(value, "__dict__"):
        return (type(value).__name__,) + tuple(
            (k, canonical(v)) for k, v in sorted(vars(value).items()))
    return value


def _assert_close(actual: Any, expected: Any, spec: Any, what: str) -> None:
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)) and len(actual) == len(expected), what
        for k, (x, y) in enumerate(zip(actual, expected)):
            _assert_close(x, y, spec, f"{what}[{k}]")
        return
    if isinstance(expected, dict):
        assert set(actual) >= set(expected), what
        for k in expected:
            _assert_close(actual[k], expected[k], spec, f"{what}[{k!r}]")
        return
    if expected is None:
        assert actual is None, what
        return
    if not isinstance(expected, np.ndarray) and not isinstance(expected, np.generic):
        assert actual == expected, what
        return
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if expected.dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    t = expected.dtype.type
    np.testing.assert_allclose(actual, expected, rtol=spec.rtol[t], atol=spec.atol[t],
                               equal_nan=True, err_msg=what)


def run_valid(call: Call) -> None:
    """Property 1: the call succeeds, matches the reference, and leaves inputs untouched."""
    spec = call.spec
    before = {a.name: [native_copy(t) for t in call.tensors(a.name)] for a in spec.args}
    inputs = Snapshot([t for a in spec.args if not a.written for t in call.tensors(a.name)])
    result = call.invoke()
    assert inputs.unchanged(), f"{spec.name} wrote to an input array"
    after = {a.name: [native_copy(t) for t in call.tensors(a.name)] for a in spec.args}
    if spec.reference_all is not None:
        per_tensor = [{a.name: (before[a.name][i].copy() if before[a.name] else None)
                       for a in spec.args} for i in range(call.count)]
        with np.errstate(all="ignore"):
            expected_all, ret = spec.reference_all(per_tensor, dict(call.hypers))
        for i, expected in enumerate(expected_all):
            for a in spec.args:
                if a.written and before[a.name]:
                    want = expected.get(a.name, before[a.name][i])
                    _assert_close(after[a.name][i], want, spec, f"{spec.name}: {a.name}[{i}]")
        _assert_close(result, ret, spec, f"{spec.name}: return value")
    elif spec.reference is not None:
        returns = []
        for i in range(call.count):
            arrays = {a.name: (before[a.name][i].copy() if before[a.name] else None)
                      for a in spec.args}
            with np.errstate(all="ignore"):  # NaN/Inf inputs are part of the fuzzing
                expected = spec.reference(arrays, dict(call.hypers))
            for a in spec.args:
                if a.written and before[a.name]:
                    want = expected.get(a.name, before[a.name][i])
                    _assert_close(after[a.name][i], want, spec, f"{spec.name}: {a.name}[{i}]")
            if "return" in expected:
                returns.append(expected["return"])
        if call.multi and spec.combine is not None:
            _assert_close(result, spec.combine(returns, call.hypers), spec,
                          f"{spec.name}: return value")
        elif returns:
            _assert_close(result, returns if call.multi else returns[0], spec,
                          f"{spec.name}: return value")
    if spec.check is not None:
        spec.check(result, before, after, dict(call.hypers))


# -- invalid calls -------------------------------------------------------------------------

# "name: ..." (the boundary's style), "name must ..." (fastopt.train's style) or
# "name, other: ..." (a message about two arguments)
NAME_RE = r"(?:{names})(?:\[\d+\]|\['\w+'\])?(?=[:\s,])"


def assert_names(message: str, names: set[str] | Sequence[str], where: str) -> None:
    """The message starts with one of `names` (optionally indexed) and a colon."""
    pattern = r"(?:[\w\[\]']+, )*" + NAME_RE.format(
        names="|".join(re.escape(n) for n in sorted(names)))
    assert re.match(pattern, message), (
        f"{where}: the message should start with {' or '.join(sorted(names))}, got "
        f"{message!r}")


@dataclasses.dataclass
class Broken:
    call: Call
    how: str
    names: set[str]
    exceptions: tuple[type, ...]
    keep_alive: list = dataclasses.field(default_factory=list)


def _replace(call: Call, name: str, index: int, value: Any) -> Call:
    arrays = dict(call.arrays)
    if call.multi:
        items = list(arrays[name])
        items[index] = value
        arrays[name] = items
    else:
        arrays[name] = value
    return dataclasses.replace(call, arrays=arrays)


def _written_corruptions(a: np.ndarray) -> list[tuple[str, np.ndarray]]:
    out = []
    ro = a.copy()
    ro.flags.writeable = False
    out.append(("read-only", ro))
    out.append(("byte-swapped", a.astype(a.dtype.newbyteorder())))
    for kind in ("strided", "reversed", "fortran", "unaligned"):
        b = relayout(a, kind)
        if kind == "unaligned" and (a.dtype.itemsize == 1 or a.size == 0):
            continue
        if kind == "unaligned" and b.flags.aligned:
            continue
        if kind != "unaligned" and b.flags.c_contiguous:
            continue
        out.append((kind, b))
    return out


@st.composite
def broken_array_calls(draw, spec: KernelSpec) -> Broken:
    """A valid call with exactly one array argument made invalid."""
    call = draw(cached(valid_calls, spec, min_count=1, special_rate=0.0))
    names = [a for a in spec.args if call.arrays.get(a.name) is not None]
    arg = draw(st.sampled_from(names))
    index = draw(st.integers(0, call.count - 1))
    target = call.tensors(arg.name)[index]
    any_name = spec.array_names
    options: list[tuple[str, Callable[[], Broken]]] = []

    def mk(how, value, names_ok, exc=(TypeError, ValueError)):
        return lambda: Broken(_replace(call, arg.name, index, value), how, set(names_ok), exc)

    # intrinsic faults: the message must name this argument
    options.append(("python float", mk("a Python float", 1.5, {arg.name})))
    options.append(("string", mk("a string", "abc", {arg.name})))
    if arg.presence(call.hypers) == "required" and not call.multi and not arg.keyword:
        options.append(("None", mk("None", None, {arg.name})))
    for dt in () if arg.empty_any_dtype and target.size == 0 else arg.bad_dtypes:
        try:
            bad = (np.full(target.shape, "a", dt) if np.dtype(dt).kind == "U"
                   else target.astype(dt))
        except (TypeError, ValueError):
            continue
        options.append((f"dtype {dt}", mk(f"dtype {dt}", bad, {arg.name}, (TypeError,))))
    if arg.written:
        for how, bad in _written_corruptions(target):
            if how == "read-only" or not arg.any_layout:
                options.append((how, mk(how, bad, {arg.name})))
    elif arg.layouts is not None:
        # from a plain copy: the drawn input may already have another accepted layout
        # (relayout(strided, "fortran") of a vector is the strided vector itself)
        for how, bad in _written_corruptions(native_copy(target)):
            kind = {"byte-swapped": "byteswapped", "read-only": "readonly"}.get(how, how)
            if kind not in arg.layouts:
                options.append((how, mk(how, bad, {arg.name})))
    if arg.bad_values is not None:
        for how, bad in arg.bad_values(native_copy(target), call.arrays):
            options.append((how, mk(how, bad, {arg.name}, (ValueError,))))
    # relational faults: the message may name either side
    if arg.dtype is None and any(b.name != arg.name and b.dtype is None and
                                 call.arrays.get(b.name) is not None for b in spec.args):
        other = np.float64 if target.dtype.type == np.float32 else np.float32
        options.append(("other float", mk("the other float dtype", target.astype(other),
                                          any_name, (TypeError,))))
    if any(b.name != arg.name and call.arrays.get(b.name) is not None for b in spec.args):
        new_shape = arg.bad_shape(target.shape) if arg.bad_shape else (
            target.shape + (1,) if target.ndim < 3 else target.shape[:-1] + (
                target.shape[-1] + 1,))
        options.append(("shape", mk(f"shape {new_shape}", np.zeros(new_shape, target.dtype),
                                    any_name, (ValueError,))))
        if target.ndim == 0 and arg.bad_shape is None:
            options.append(("shape (1,)", mk("shape (1,) for ()", target.reshape(1),
                                             any_name, (ValueError,))))
    partners_present = sum(call.arrays.get(b.name) is not None for b in spec.args) > 1
    if call.multi and partners_present:
        def shorter():
            arrays = dict(call.arrays)
            arrays[arg.name] = list(arrays[arg.name])[:-1]
            return Broken(dataclasses.replace(call, arrays=arrays), "list one shorter",
                          any_name, (ValueError,))
        options.append(("shorter", shorter))
    if call.multi:
        def container():
            arrays = dict(call.arrays)
            arrays[arg.name] = {i: t for i, t in enumerate(arrays[arg.name])}
            return Broken(dataclasses.replace(call, arrays=arrays), "a dict of arrays",
                          {arg.name}, (TypeError,))
        options.append(("container", container))
    # shared memory: a written array overlapping another array argument of the call
    partners = []
    for b in spec.args:
        for j, t in enumerate(call.tensors(b.name)):
            if (b.name, j) != (arg.name, index) and isinstance(t, np.ndarray) and \
                    t.size and t.dtype == target.dtype and target.size and \
                    frozenset((arg.name, b.name)) not in spec.overlap_unchecked:
                partners.append((b, j, t))
    if arg.written and spec.overlap_checked:
        partners = [(b, j, t) for b, j, t in partners
                    if frozenset((arg.name, b.name)) not in spec.exact_alias_ok or t.size > 1]
    if arg.written and partners and spec.overlap_checked:
        b, j, t = draw(st.sampled_from(partners))
        exact_ok = frozenset((arg.name, b.name)) in spec.exact_alias_ok
        offset = draw(st.integers(1 if exact_ok else 0, t.size - 1))

        def overlap():
            base = np.zeros(offset + max(t.size, target.size) + t.size, target.dtype)
            y = base[:t.size].reshape(t.shape)
            x = base[offset:offset + target.size].reshape(target.shape)
            x[...] = target
            y[...] = native_copy(t)
            c = _replace(call, arg.name, index, x)
            c = _replace(c, b.name, j, y)
            return Broken(c, f"{arg.name}[{index}] overlaps {b.name}[{j}] at {offset}",
                          {arg.name, b.name}, (ValueError,))
        options.append(("overlap", overlap))
    how, make = draw(st.sampled_from(options))
    return make()


def run_broken(broken: Broken) -> None:
    """Properties 2 and 3: TypeError/ValueError naming the argument; no byte modified."""
    call = broken.call
    snap = Snapshot(call.all_arrays())
    try:
        call.invoke()
    except (TypeError, ValueError) as exc:
        assert isinstance(exc, broken.exceptions), (
            f"{call.spec.name} with {broken.how}: expected {broken.exceptions}, got "
            f"{type(exc).__name__}: {exc}")
        assert_names(str(exc), broken.names, f"{call.spec.name} with {broken.how}")
    except Exception as exc:  # noqa: BLE001 - anything else is a boundary bug
        raise AssertionError(f"{call.spec.name} with {broken.how}: raised "
                             f"{type(exc).__name__}: {exc} (expected TypeError/ValueError)"
                             ) from exc
    else:
        raise AssertionError(f"{call.spec.name} with {broken.how}: did not raise")
    assert snap.unchanged(), f"{call.spec.name} with {broken.how}: a raising call modified " \
                             f"{snap.changed_names()}"


@st.composite
def broken_hyper_calls(draw, spec: KernelSpec) -> Broken:
    """A valid call with one hyperparameter (or one combination) made invalid."""
    call = draw(cached(valid_calls, spec, special_rate=0.0))
    options = [(hp.name, value, exc) for hp in spec.hypers for value, exc in hp.domain.invalid()]
    options += [(None, combo, name) for combo, name in spec.invalid_combos]
    pick = draw(st.integers(0, len(options) - 1))
    hypers = dict(call.hypers)
    name, value, exc = options[pick]
    if name is None:
        hypers.update(value)
        return Broken(dataclasses.replace(call, hypers=hypers), f"combination {value}",
                      {exc}, (ValueError, TypeError))
    hypers[name] = value
    return Broken(dataclasses.replace(call, hypers=hypers), f"{name}={value!r}", {name}, exc)


# -- optimizer classes ---------------------------------------------------------------------


@dataclasses.dataclass
class OptimizerSpec:
    """An optimizer class and a numpy reference of it.

    reference(params, hypers) returns an object with ``step(grads)`` that updates its own
    copies of the params (a list of arrays) the way the class should; `hypers` are the
    constructor's keyword arguments (lr may be a schedule).
    """

    name: str
    cls: type
    hypers: tuple[Hyper, ...]
    reference: Callable[[list, dict], Any]
    constraint: Callable[[dict], bool] = lambda hypers: True
    invalid_combos: tuple[tuple[dict, str], ...] = ()
    rtol: dict = dataclasses.field(default_factory=lambda: {np.float32: 1e-5,
                                                            np.float64: 1e-12})
    atol: dict = dataclasses.field(default_factory=lambda: {np.float32: 1e-6,
                                                            np.float64: 1e-12})
    # transform of the valid hyper dict into constructor kwargs (e.g. beta1/beta2 -> betas)
    kwargs: Callable[[dict], dict] = dict
    # typical constructor kwargs (thread-safety and resume tests use them)
    example: dict = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<OptimizerSpec {self.name}>"

    def with_defaults(self, options: dict) -> dict:
        """`options` completed with the constructor's defaults (for the reference)."""
        import inspect

        sig = inspect.signature(self.cls.__init__)
        full = {k: v.default for k, v in sig.parameters.items()
                if v.default is not inspect.Parameter.empty}
        return {**full, **options}


def state_bytes(opt) -> bytes:
    """Every number in an optimizer's state_dict, as bytes (to prove nothing changed)."""
    sd = opt.state_dict()
    parts = []

    def walk(x):
        if isinstance(x, dict):
            for k in sorted(x, key=repr):
                parts.append(repr(k).encode())
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, np.ndarray):
            parts.append(str(x.dtype).encode() + repr(x.shape).encode() + x.tobytes())
        elif callable(x):
            parts.append(b"<callable>")
        else:
            parts.append(repr(x).encode())
    walk(sd)
    return b"|".join(parts)
