"""Argument checking for every fastopt module: one set of rules, one message style.

Each check takes ``(value, name, ...)``, returns the value normalised (a ``float``, an
``int``, a ``bool``, a list of arrays, ...) and raises

- ``TypeError`` when the value has the wrong kind, and
- ``ValueError`` when it has the right kind but is out of range,

with the message ``"<name>: expected <what>, got <what was given>"``. The rules, the
same everywhere:

- ``bool`` (and ``np.bool_``) is never a number: ``lr=True`` is a TypeError.
- A 0-d numpy array counts as the scalar it holds (``np.array(0.9)`` is ``0.9``).
- An integral float counts as an int (``maxiter=1e4`` is ``10000``, ``2.5`` is refused);
  so does a numpy integer.
- NaN is refused for every real parameter; infinities only where the constraint says so
  (``allow_inf=True``). A Python int too large for a double is that infinity.

The constraints are also data (:class:`Real`, :class:`Int`, :class:`Choice`, ...): a
table of an optimizer's hyperparameters can hold them, and the fuzz tests draw the values
each one must refuse from :meth:`Constraint.bad_values` (scikit-learn's
``utils/_param_validation.py`` pattern).

The Cython boundary (``_boundary.pxi``) keeps a fast path for the common case (a float
inside its range) and calls these functions for everything else, so the rules and the
messages have one source.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "Constraint",
    "Real",
    "Int",
    "Bool",
    "Choice",
    "Seed",
    "CallableConstraint",
    "AnyOf",
    "NoneConstraint",
    "optional",
    "check_real",
    "check_int",
    "check_bool",
    "check_choice",
    "check_uint64",
    "check_seed",
    "check_callable",
    "check_array",
    "check_array_list",
    "check_float_dtype",
    "check_same_structure",
    "check_state_dict",
    "check_options",
    "describe_value",
]

_CLOSED = ("both", "left", "right", "neither")
UINT64_LIMIT = 2**64


def describe_value(value: Any) -> str:
    """How a message shows a given value: its repr when short, else its type (arrays: shape
    and dtype)."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = ""
    return text if 0 < len(text) <= 60 else f"a {type(value).__name__}"


def _scalar(value: Any) -> Any:
    """A 0-d numpy array as the scalar it holds; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _interval(low: float | None, high: float | None, closed: str) -> str:
    """``[0, 1)``-style text; an infinite or missing end is always open."""
    def finite(end: float | None) -> bool:
        return end is not None and math.isfinite(end)

    lo = "[" if closed in ("both", "left") and finite(low) else "("
    hi = "]" if closed in ("both", "right") and finite(high) else ")"
    a = "-inf" if low is None else f"{low:g}" if isinstance(low, float) else str(low)
    b = "inf" if high is None else f"{high:g}" if isinstance(high, float) else str(high)
    return f"{lo}{a}, {b}{hi}"


def _in_interval(x: float, low: float | None, high: float | None, closed: str) -> bool:
    if low is not None and (x < low or (x == low and closed in ("right", "neither"))):
        return False
    if high is not None and (x > high or (x == high and closed in ("left", "neither"))):
        return False
    return True


# --------------------------------------------------------------------------------------
# Scalar checks
# --------------------------------------------------------------------------------------


def check_real(value: Any, name: str, low: float | None = None, high: float | None = None,
               *, closed: str = "both", allow_inf: bool = False,
               allow_nan: bool = False) -> float:
    """``value`` as a float in the interval ``low..high`` (None: unbounded).

    ``closed`` says which ends belong to it: ``"both"``, ``"left"``, ``"right"`` or
    ``"neither"``. +-inf is refused unless ``allow_inf``; NaN unless ``allow_nan`` (for
    values that are data, such as a scale factor, rather than settings).

    Examples
    --------
    >>> from fastopt._validation import check_real
    >>> check_real(0.5, "p", 0, 1, closed="left")
    0.5
    >>> check_real(1, "p", 0, 1, closed="left")
    Traceback (most recent call last):
    ...
    ValueError: p: expected a value in [0, 1), got 1
    """
    value = _scalar(value)
    if _is_bool(value) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {describe_value(value)}")
    try:
        x = float(value)
    except OverflowError:  # a Python int beyond the double range
        x = math.inf if value > 0 else -math.inf  # type: ignore[operator]
    if math.isnan(x):
        if allow_nan:
            return x
        raise ValueError(f"{name}: expected a real number, got nan")
    if not allow_inf and math.isinf(x):
        raise ValueError(f"{name}: expected a finite number, got {describe_value(value)}")
    if not _in_interval(x, low, high, closed):
        raise ValueError(f"{name}: expected a value in {_interval(low, high, closed)}, "
                         f"got {describe_value(value)}")
    return x


def check_int(value: Any, name: str, low: int | None = None, high: int | None = None,
              *, closed: str = "both") -> int:
    """``value`` as an int in ``low..high`` (None: unbounded; ``closed`` as in check_real).

    Python ints, numpy integers and integral floats (``1e4``) are ints; ``2.5`` and
    ``True`` are not.

    Examples
    --------
    >>> from fastopt._validation import check_int
    >>> check_int(1e3, "maxiter", 0)
    1000
    >>> check_int(2.5, "maxiter", 0)
    Traceback (most recent call last):
    ...
    TypeError: maxiter: expected an int, got 2.5
    """
    if type(value) is int and _in_interval(value, low, high, closed):
        return value  # the common case without the general dispatch (0.1 us, not 0.7)
    value = _scalar(value)
    if _is_bool(value):
        raise TypeError(f"{name}: expected an int, got {describe_value(value)}")
    if isinstance(value, (numbers.Integral, np.integer)):
        n = int(value)
    elif isinstance(value, (numbers.Real, np.floating)) and float(value).is_integer():
        n = int(float(value))  # an integral float (is_integer() is False for inf and nan)
    else:
        raise TypeError(f"{name}: expected an int, got {describe_value(value)}")
    if not _in_interval(n, low, high, closed):
        raise ValueError(f"{name}: expected an int in {_interval(low, high, closed)}, "
                         f"got {describe_value(value)}")
    return n


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool: only ``True``/``False`` (or ``np.bool_``), not 0 or 1."""
    if value is True or value is False:
        return value
    value = _scalar(value)
    if not _is_bool(value):
        raise TypeError(f"{name}: expected True or False, got {describe_value(value)}")
    return bool(value)


def check_choice(value: Any, name: str, options: Sequence[Any]) -> Any:
    """``value`` itself if it is one of ``options`` (compared with ==, same type)."""
    for option in options:
        if isinstance(value, type(option)) and value == option:
            return value
    shown = ", ".join(repr(o) for o in options)
    error = ValueError if isinstance(value, tuple(type(o) for o in options)) else TypeError
    raise error(f"{name}: expected one of {shown}, got {describe_value(value)}")


def check_uint64(value: Any, name: str) -> int:
    """``value`` as an int in [0, 2**64) (seeds and stream numbers of the Philox RNG)."""
    return check_int(value, name, 0, UINT64_LIMIT, closed="left")


def check_seed(value: Any, name: str = "seed") -> int | np.random.Generator | None:
    """None, a ``np.random.Generator``, or an int in [0, 2**64) (returned as int)."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    if type(value) is int and 0 <= value < UINT64_LIMIT:
        return value
    value = _scalar(value)
    if _is_bool(value) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{name}: expected None, a numpy Generator or an int in [0, 2**64), "
                        f"got {describe_value(value)}")
    return check_uint64(value, name)


def check_callable(value: Any, name: str) -> Callable[..., Any]:
    if not callable(value):
        raise TypeError(f"{name}: expected a callable, got {describe_value(value)}")
    return value  # type: ignore[no-any-return]


def check_options(options: Any, name: str = "options") -> dict[str, Any]:
    """``options`` (None or a mapping with str keys) as a new dict."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"{name}: expected a dict or None, got {describe_value(options)}")
    for key in options:
        if not isinstance(key, str):
            raise TypeError(f"{name}: expected str keys, got {describe_value(key)}")
    return dict(options)


# --------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------


def check_array(value: Any, name: str, *, floating: bool = True, writeable: bool = False,
                ndim: int | None = None) -> np.ndarray:
    """``value`` itself if it is a numpy array of the required kind (never converted)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {describe_value(value)}")
    if floating and value.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating dtype (float32 or float64), "
                        f"got {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {value.shape}")
    if writeable and not value.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array (it is updated in place), "
                         "got a read-only one")
    return value


def check_array_list(value: Any, name: str, *, floating: bool = True,
                     writeable: bool = False) -> list[np.ndarray]:
    """One array or a list/tuple of arrays, as a list of arrays each checked by
    :func:`check_array` (labelled ``name[i]``)."""
    if isinstance(value, np.ndarray):
        return [check_array(value, name, floating=floating, writeable=writeable)]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name}: expected a numpy array or a list of numpy arrays, "
                        f"got {describe_value(value)}")
    return [check_array(a, f"{name}[{i}]", floating=floating, writeable=writeable)
            for i, a in enumerate(value)]


def check_float_dtype(value: Any, name: str,
                      options: Sequence[Any] | None = None) -> np.dtype:
    """``np.dtype(value)`` if it is a floating dtype (one of ``options`` when given)."""
    what = ("a floating dtype" if options is None
            else "one of the dtypes " + ", ".join(np.dtype(o).name for o in options))
    try:
        dt = np.dtype(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected {what}, got {describe_value(value)}") from None
    if dt.kind != "f" or (options is not None and dt not in [np.dtype(o) for o in options]):
        raise TypeError(f"{name}: expected {what}, got {dt}")
    return dt


def check_same_structure(arrays: Sequence[np.ndarray], reference: Sequence[np.ndarray],
                         name: str, *, dtype: bool = False) -> None:
    """ValueError unless ``arrays`` match ``reference`` in count and shapes (and dtypes)."""
    if len(arrays) != len(reference):
        raise ValueError(f"{name}: expected {len(reference)} arrays, got {len(arrays)}")
    for i, (a, r) in enumerate(zip(arrays, reference)):
        if a.shape != r.shape:
            raise ValueError(f"{name}[{i}]: expected shape {r.shape}, got {a.shape}")
        if dtype and a.dtype != r.dtype:
            raise ValueError(f"{name}[{i}]: expected dtype {r.dtype}, got {a.dtype}")


def check_state_dict(state_dict: Any, keys: Iterable[str], name: str = "state_dict") -> None:
    """TypeError unless ``state_dict`` is a mapping; ValueError if it lacks any of ``keys``."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"{name}: expected a mapping, got {describe_value(state_dict)}")
    missing = sorted(set(keys) - set(state_dict))
    if missing:
        raise ValueError(f"{name}: expected the keys {missing}, which are missing")


# --------------------------------------------------------------------------------------
# Constraints as data
# --------------------------------------------------------------------------------------


class Constraint:
    """What a parameter accepts: ``check`` it, ``describe`` it, list values it refuses."""

    def check(self, value: Any, name: str) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def bad_values(self) -> list[Any]:
        """Values this constraint must refuse (each with TypeError or ValueError)."""
        return ["a string", None, [1.0], object()]

    def good_values(self) -> list[Any]:
        """A few values it accepts (the edges of its range among them)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class Real(Constraint):
    """A real number in ``low..high`` (None: unbounded); see :func:`check_real`."""

    def __init__(self, low: float | None = None, high: float | None = None, *,
                 closed: str = "both", allow_inf: bool = False) -> None:
        if closed not in _CLOSED:
            raise ValueError(f"closed: expected one of {_CLOSED}, got {closed!r}")
        self.low, self.high, self.closed, self.allow_inf = low, high, closed, allow_inf

    def check(self, value: Any, name: str) -> float:
        return check_real(value, name, self.low, self.high, closed=self.closed,
                          allow_inf=self.allow_inf)

    def describe(self) -> str:
        return f"a real number in {_interval(self.low, self.high, self.closed)}"

    def bad_values(self) -> list[Any]:
        bad: list[Any] = [True, "0.5", None, np.nan, np.array([0.5]), complex(0.5, 0)]
        if not self.allow_inf:
            bad += [np.inf, -np.inf, 10**400]
        if self.low is not None:  # below the range, by much and by one ulp
            bad += [self.low - 1.0, np.nextafter(float(self.low), -np.inf), -np.inf]
            if self.closed in ("right", "neither"):
                bad.append(self.low)
        if self.high is not None:
            bad += [self.high + 1.0, np.nextafter(float(self.high), np.inf), np.inf]
            if self.closed in ("left", "neither"):
                bad.append(self.high)
        return [v for v in bad if not self._accepts(v)]

    def _accepts(self, value: Any) -> bool:
        try:
            self.check(value, "x")
        except (TypeError, ValueError):
            return False
        return True

    def good_values(self) -> list[Any]:
        lo = self.low if self.low is not None else -1e3
        hi = self.high if self.high is not None else lo + 2e3
        candidates = [lo, hi, (lo + hi) / 2, np.float32((lo + hi) / 2), np.array((lo + hi) / 2)]
        return [v for v in candidates if self._accepts(v)]


class Int(Real):
    """An int in ``low..high`` (None: unbounded); see :func:`check_int`."""

    def __init__(self, low: int | None = None, high: int | None = None, *,
                 closed: str = "both") -> None:
        super().__init__(low, high, closed=closed, allow_inf=False)

    def check(self, value: Any, name: str) -> int:
        return check_int(value, name, self.low, self.high,  # type: ignore[arg-type]
                         closed=self.closed)

    def describe(self) -> str:
        return f"an int in {_interval(self.low, self.high, self.closed)}"

    def bad_values(self) -> list[Any]:
        return [v for v in super().bad_values() + [0.5, 1.5] if not self._accepts(v)]

    def good_values(self) -> list[Any]:
        lo = int(self.low) if self.low is not None else -1000
        hi = int(self.high) if self.high is not None else lo + 2000
        candidates = [lo, hi, lo + 1, np.int64(lo + 1), float(lo + 1)]
        return [v for v in candidates if self._accepts(v)]


class Bool(Constraint):
    def check(self, value: Any, name: str) -> bool:
        return check_bool(value, name)

    def describe(self) -> str:
        return "True or False"

    def bad_values(self) -> list[Any]:
        return [0, 1, "True", None, 1.0, np.array([True])]

    def good_values(self) -> list[Any]:
        return [True, False, np.bool_(True)]


class Choice(Constraint):
    def __init__(self, *options: Any) -> None:
        self.options = options

    def check(self, value: Any, name: str) -> Any:
        return check_choice(value, name, self.options)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)

    def bad_values(self) -> list[Any]:
        bad: list[Any] = [None, 0, "not-an-option", object()]
        return [v for v in bad if v not in self.options]

    def good_values(self) -> list[Any]:
        return list(self.options)


class Seed(Constraint):
    def check(self, value: Any, name: str) -> Any:
        return check_seed(value, name)

    def describe(self) -> str:
        return "None, a numpy Generator or an int in [0, 2**64)"

    def bad_values(self) -> list[Any]:
        return [-1, 2**64, 0.5, "0", True, np.random.RandomState(0)]

    def good_values(self) -> list[Any]:
        return [None, 0, 2**64 - 1, np.random.default_rng(0)]


class CallableConstraint(Constraint):
    def check(self, value: Any, name: str) -> Any:
        return check_callable(value, name)

    def describe(self) -> str:
        return "a callable"

    def good_values(self) -> list[Any]:
        return [abs]


class AnyOf(Constraint):
    """Any one of several constraints (the first that accepts the value normalises it).

    The error is the TypeError/ValueError of the constraint whose kind matches the value
    (a ValueError if any constraint got as far as checking a range), so that an lr of -1
    says what range it missed rather than "not a callable".
    """

    def __init__(self, *constraints: Constraint) -> None:
        self.constraints = constraints

    def check(self, value: Any, name: str) -> Any:
        range_error: ValueError | None = None
        for c in self.constraints:
            try:
                return c.check(value, name)
            except ValueError as exc:
                range_error = range_error or exc
            except TypeError:
                pass
        if range_error is not None:
            raise range_error
        raise TypeError(f"{name}: expected {self.describe()}, got {describe_value(value)}")

    def describe(self) -> str:
        return " or ".join(c.describe() for c in self.constraints)

    def bad_values(self) -> list[Any]:
        out = []
        for c in self.constraints:
            for v in c.bad_values():
                if not any(self._accepted_by(other, v) for other in self.constraints):
                    out.append(v)
        return out

    @staticmethod
    def _accepted_by(c: Constraint, value: Any) -> bool:
        try:
            c.check(value, "x")
        except (TypeError, ValueError):
            return False
        return True

    def good_values(self) -> list[Any]:
        return [v for c in self.constraints for v in c.good_values()]


class NoneConstraint(Constraint):
    def check(self, value: Any, name: str) -> None:
        if value is not None:
            raise TypeError(f"{name}: expected None, got {describe_value(value)}")

    def describe(self) -> str:
        return "None"

    def bad_values(self) -> list[Any]:
        return [0, ""]

    def good_values(self) -> list[Any]:
        return [None]


def optional(constraint: Constraint) -> AnyOf:
    """``constraint`` or None."""
    return AnyOf(NoneConstraint(), constraint)
