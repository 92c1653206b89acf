"""The ``options`` of :func:`fastopt.minimize`: scipy's names and defaults, checked once.

Every check goes through :mod:`fastopt._validation` (messages
``options['name']: expected …, got …``). ``fastopt.distributed.minimize`` reads its
quasi-Newton options through :func:`_qn_options` as well.
"""
from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastopt._validation import check_bool, check_int, check_real, describe_value

from ._quasi_newton import QNOptions
from ._scipy import optimize_warning

__all__ = [
    "KNOWN_OPTIONS",
    "LBFGSB_FTOL",
    "METHOD_DEFAULTS",
    "_check_number",
    "_qn_options",
    "bfgs_H0",
    "default_gtol",
    "fd_steps",
    "l1_weights",
    "warn_unknown",
]

#: scipy's L-BFGS-B ``ftol``: ``factr * eps`` with its default ``factr = 1e7``
LBFGSB_FTOL = 1e7 * float(np.finfo(np.float64).eps)

_LINE_SEARCHES = {"more-thuente": "more-thuente", "morethuente": "more-thuente",
                  "backtracking": "backtracking", "armijo": "backtracking"}

# every quasi-Newton method: fastopt's own options and scipy's common ones (``eps``:
# absolute finite-difference step; ``workers``: scipy's parallel finite differences,
# accepted -- fastopt evaluates serially, which changes no result)
_COMMON = {"maxiter", "maxfun", "gtol", "ftol", "xtol", "line_search", "c1", "c2", "maxls",
           "scaling", "warm_start", "finite_diff_rel_step", "eps", "disp", "return_all",
           "workers"}
_LIMITED = {"m", "maxcor", "iprint"}
KNOWN_OPTIONS: dict[str, set[str]] = {
    "BFGS": _COMMON | {"hess_inv0", "xrtol", "norm"},
    "L-BFGS": _COMMON | _LIMITED | {"l1", "vector_free"},
    "L-BFGS-B": _COMMON | _LIMITED,
    "L-BFGS-OWLQN": _COMMON | _LIMITED | {"l1", "vector_free"},
}

#: per method: (maxiter, maxfun, ftol); ``maxiter`` None means ``200 n`` (scipy's BFGS)
METHOD_DEFAULTS: dict[str, tuple[int | None, int | None, float]] = {
    "BFGS": (None, None, 0.0),
    "L-BFGS": (15000, 15000, 0.0),
    "L-BFGS-OWLQN": (15000, 15000, 0.0),
    # scipy's L-BFGS-B stopping: ftol = factr * eps, gtol = 1e-5, maxcor 10, maxls 20
    "L-BFGS-B": (15000, 15000, LBFGSB_FTOL),
}


def warn_unknown(opts: Mapping[str, Any], method: str, stacklevel: int) -> None:
    """scipy's ``OptimizeWarning`` ("Unknown solver options: ...") for options ``method``
    does not read; the run goes on without them."""
    unknown = set(opts) - KNOWN_OPTIONS[method]
    if unknown:
        names = ", ".join(sorted(unknown))
        warnings.warn(f"Unknown solver options: {names} (method {method!r} ignores them)",
                      optimize_warning(), stacklevel=stacklevel + 1)


def default_gtol(dtype: np.dtype) -> float:
    """Gradient tolerance: 1e-5 in float64 (scipy's default); in float32 the
    gradient of a typical objective is only accurate to ~1e-4 of its terms, so
    1e-4 is used there."""
    if dtype == np.float32:
        return 1e-4
    return 1e-5


def _check_number(name: str, value: Any, *, lo: float | None = None,
                  hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
                  integer: bool = False, label: str | None = None) -> Any:
    """``options[name]`` checked by :mod:`fastopt._validation` (``label``: the name the
    message shows, for arguments that are not options, such as ``tol``)."""
    shown = label if label is not None else f"options[{name!r}]"
    closed = {(False, False): "both", (False, True): "left", (True, False): "right",
              (True, True): "neither"}[(lo_open, hi_open)]
    if integer:
        return check_int(value, shown, None if lo is None else int(lo),
                         None if hi is None else int(hi), closed=closed)
    return check_real(value, shown, lo, hi, closed=closed)


def _maxiter(opts: Mapping[str, Any], default: int) -> int:
    value = opts.get("maxiter")
    if value is None:        # scipy: maxiter=None means the method's default
        return default
    # scipy iterates while nit < maxiter: a fractional maxiter (gh-23430) means its ceiling
    limit = _check_number("maxiter", value, lo=0.0)
    return int(math.ceil(limit)) if math.isfinite(limit) else sys.maxsize


def _qn_options(opts: Mapping[str, Any], dtype: np.dtype, default_maxiter: int,
                default_maxfun: int | None,
                default_ftol: float = 0.0) -> tuple[QNOptions, bool]:
    """The checked options every quasi-Newton run reads (also ``fastopt.distributed``'s),
    and ``scaling``."""
    ls = opts.get("line_search", "more-thuente")
    if not isinstance(ls, str) or ls.lower() not in _LINE_SEARCHES:
        raise ValueError(f"options['line_search']: expected 'more-thuente' or "
                         f"'backtracking', got {describe_value(ls)}")
    ls = _LINE_SEARCHES[ls.lower()]
    c1 = _check_number("c1", opts.get("c1", 1e-4), lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    c2 = _check_number("c2", opts.get("c2", 0.9), lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if ls == "more-thuente" and not c1 < c2:
        raise ValueError(f"options['c1'], options['c2']: expected 0 < c1 < c2 < 1, got "
                         f"c1={c1}, c2={c2}")
    maxfun = opts.get("maxfun", default_maxfun)
    maxfun = None if maxfun is None else _check_number("maxfun", maxfun, lo=1, integer=True)
    disp = opts.get("disp", False)
    disp = False if disp is None else disp
    if not isinstance(disp, (bool, np.bool_)):   # scipy also takes an int verbosity
        disp = _check_number("disp", disp, integer=True) > 0
    iprint = opts.get("iprint")
    if iprint is not None:     # scipy's L-BFGS-B Fortran verbosity: accepted, not used
        _check_number("iprint", iprint, integer=True)
    qn = QNOptions(
        maxiter=_maxiter(opts, default_maxiter), maxfun=maxfun,
        gtol=_check_number("gtol", opts.get("gtol", default_gtol(dtype)), lo=0.0),
        ftol=_check_number("ftol", opts.get("ftol", default_ftol), lo=0.0),
        xtol=_check_number("xtol", opts.get("xtol", 0.0), lo=0.0),
        line_search=ls, c1=c1, c2=c2,
        maxls=_check_number("maxls", opts.get("maxls", 20), lo=1, integer=True),
        ls_xtol=100 * float(np.finfo(dtype).eps),
        fnoise=math.sqrt(float(np.finfo(dtype).eps)),
        disp=bool(disp))
    scaling = check_bool(opts.get("scaling", True), "options['scaling']")
    check_bool(opts.get("return_all", False), "options['return_all']")
    norm = opts.get("norm", np.inf)
    if check_real(norm, "options['norm']", allow_inf=True) != math.inf:
        raise ValueError(f"options['norm']: expected inf (fastopt tests the max-norm of "
                         f"the gradient, scipy's default), got {describe_value(norm)}")
    return qn, scaling


def _step_array(value: Any, name: str, n: int) -> float | np.ndarray:
    """A finite-difference step: a positive scalar, or one per variable."""
    if np.ndim(value) == 0:
        return check_real(value, name, 0.0, closed="neither")
    a = np.asarray(value)
    if a.dtype.kind not in "fiu" or a.size != n:
        raise ValueError(f"{name}: expected a positive number or {n} of them (one per "
                         f"variable), got {describe_value(value)}")
    a = a.astype(np.float64).reshape(-1)
    if not (np.all(np.isfinite(a)) and np.all(a > 0)):
        raise ValueError(f"{name}: expected finite steps > 0, got {describe_value(value)}")
    return a


#: scipy's default absolute finite-difference step (``eps``) of the methods that have one
DEFAULT_FD_EPS = {"BFGS": math.sqrt(float(np.finfo(np.float64).eps)), "L-BFGS-B": 1e-8}


def fd_steps(opts: Mapping[str, Any], n: int, kind: str | None = None, jac: Any = None
             ) -> tuple[float | np.ndarray | None, float | np.ndarray | None]:
    """``(absolute, relative)`` finite-difference steps from ``eps`` and
    ``finite_diff_rel_step`` (None: not given). As scipy: an absolute step wins; BFGS and
    L-BFGS-B (`kind`) have one by default (``DEFAULT_FD_EPS``), so
    ``finite_diff_rel_step`` counts there only with ``eps=None``; and a scheme named in
    `jac` (``"2-point"``, ``"3-point"``) takes relative steps, whatever ``eps`` says."""
    out = []
    for key in ("eps", "finite_diff_rel_step"):
        value = opts.get(key)
        if key == "eps" and "eps" not in opts:
            value = DEFAULT_FD_EPS.get(kind or "")
        if key == "eps" and isinstance(jac, str):
            value = None
        out.append(None if value is None else _step_array(value, f"options[{key!r}]", n))
    return out[0], out[1]


def l1_weights(value: Any, n: int, dtype: np.dtype) -> float | np.ndarray:
    """``options['l1']``: a weight ``c >= 0`` or one per variable."""
    if np.ndim(value) == 0:
        return check_real(value, "options['l1']", 0.0)
    c = np.asarray(value, dtype=np.float64)
    if c.size != n:
        raise ValueError(f"options['l1']: expected a scalar or one weight per variable "
                         f"({n}), got shape {c.shape}")
    c = c.reshape(-1)
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("options['l1']: expected finite weights >= 0, got "
                         f"{describe_value(value)}")
    return c.astype(dtype)


def bfgs_H0(value: Any, n: int, what: str) -> np.ndarray:
    """An initial inverse Hessian: ``(n, n)``, finite, symmetric positive definite."""
    H = np.asarray(value, dtype=np.float64)
    if H.shape != (n, n):
        raise ValueError(f"{what}: expected shape ({n}, {n}), got {H.shape}")
    if not np.all(np.isfinite(H)):
        raise ValueError(f"{what}: expected finite values, got {describe_value(value)}")
    if not np.allclose(H, H.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(H).max())):
        raise ValueError(f"{what}: expected a symmetric matrix, got one that is not")
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        raise ValueError(f"{what}: expected a positive definite matrix, got one that "
                         f"is not") from None
    return H
