"""``fastopt.minimize``: argument checking, options and dispatch to the solvers."""
from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ._quasi_newton import QNOptions, run_quasi_newton
from ._scipy import optimize_warning
from .bfgs import BfgsMemory
from .first_order import FIRST_ORDER_METHODS, run_first_order
from .lbfgs import LbfgsMemory
from .objective import Objective
from .owlqn import run_owlqn

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

__all__ = ["minimize"]

_METHODS = {"bfgs": "BFGS", "l-bfgs": "L-BFGS", "lbfgs": "L-BFGS",
            "l-bfgs-owlqn": "L-BFGS-OWLQN", "owlqn": "L-BFGS-OWLQN", "owl-qn": "L-BFGS-OWLQN"}
_LINE_SEARCHES = {"more-thuente": "more-thuente", "morethuente": "more-thuente",
                  "backtracking": "backtracking", "armijo": "backtracking"}

_COMMON = {"maxiter", "maxfun", "gtol", "ftol", "xtol", "line_search", "c1", "c2", "maxls",
           "scaling", "warm_start", "finite_diff_rel_step", "disp"}
_KNOWN = {
    "BFGS": _COMMON | {"hess_inv0", "xrtol"},
    "L-BFGS": _COMMON | {"m", "maxcor", "l1"},
    "L-BFGS-OWLQN": _COMMON | {"m", "maxcor", "l1"},
}


def _default_gtol(dtype: np.dtype) -> float:
    """Gradient tolerance: 1e-5 in float64 (scipy's default); in float32 the
    gradient of a typical objective is only accurate to ~1e-4 of its terms, so
    ``1e-5 * sqrt(eps32 / eps64)**0.5`` ~ 1e-4 is used there."""
    if dtype == np.float32:
        return 1e-4
    return 1e-5


def _check_number(name, value, *, lo=None, hi=None, lo_open=False, hi_open=False,
                  integer=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"options[{name!r}] must be a {'integer' if integer else 'number'}, "
                        f"got {value!r}")
    if integer and not isinstance(value, numbers.Integral):
        if not float(value).is_integer():
            raise TypeError(f"options[{name!r}] must be an integer, got {value!r}")
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"options[{name!r}] must not be NaN")
    bad = ((lo is not None and (v <= lo if lo_open else v < lo))
           or (hi is not None and (v >= hi if hi_open else v > hi)))
    if bad:
        lo_s = "" if lo is None else f"{lo} {'<' if lo_open else '<='} "
        hi_s = "" if hi is None else f" {'<' if hi_open else '<='} {hi}"
        raise ValueError(f"options[{name!r}] must satisfy {lo_s}{name}{hi_s}, got {value!r}")
    return int(v) if integer else v


def _wrap_callback(callback):
    """scipy's convention: ``callback(intermediate_result)`` when that is the only
    parameter's name, else the legacy ``callback(xk)`` with a copy of x."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    try:
        params = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        params = set()
    if params == {"intermediate_result"}:
        return lambda res: callback(intermediate_result=res)
    return lambda res: callback(np.copy(res.x))


def _prepare_x0(x0) -> tuple[np.ndarray, tuple[int, ...], np.dtype]:
    try:
        a = np.asarray(x0)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"x0 must be array-like of real numbers: {exc}") from None
    if a.dtype.kind == "c":
        raise TypeError("x0 must be real; got a complex array (split real and imaginary "
                        "parts into separate variables)")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"x0 must be an array of real numbers, got dtype {a.dtype}")
    if a.size == 0:
        raise ValueError("x0 must have at least one element")
    dtype = np.dtype(np.float32) if a.dtype == np.float32 else np.dtype(np.float64)
    shape = a.shape if a.ndim else (1,)
    x = np.array(a, dtype=dtype, copy=True).reshape(-1)
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.isfinite(x))[0])
        raise ValueError(f"x0 must be finite; element {bad} (of the flattened x0) is "
                         f"{x[bad]}")
    return x, shape, dtype


def _l1_weights(value, n, dtype):
    if np.ndim(value) == 0:
        c = _check_number("l1", value, lo=0.0)
        if not math.isfinite(c):
            raise ValueError("options['l1'] must be finite")
        return c
    c = np.asarray(value, dtype=np.float64)
    if c.size != n:
        raise ValueError(f"options['l1'] must be a scalar or have one weight per variable "
                         f"({n}), got shape {c.shape}")
    c = c.reshape(-1)
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("options['l1'] weights must be finite and >= 0")
    return c.astype(dtype)


def _bfgs_H0(value, n, what):
    H = np.asarray(value, dtype=np.float64)
    if H.shape != (n, n):
        raise ValueError(f"{what} must have shape ({n}, {n}), got {H.shape}")
    if not np.all(np.isfinite(H)):
        raise ValueError(f"{what} must be finite")
    if not np.allclose(H, H.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(H).max())):
        raise ValueError(f"{what} must be symmetric")
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        raise ValueError(f"{what} must be positive definite") from None
    return H


def minimize(fun: Callable[..., Any], x0: ArrayLike, args: tuple | Any = (),
             method: str = "L-BFGS", jac: Callable[..., ArrayLike] | bool | str | None = None,
             tol: float | None = None,
             callback: Callable[..., Any] | None = None,
             options: Mapping[str, Any] | None = None) -> OptimizeResult:
    r"""Minimise a scalar function of one or more variables (scipy's conventions).

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float`` where ``x`` has the shape of ``x0``; with
        ``jac=True``, ``fun(x, *args) -> (float, gradient)``.  ``fun`` receives
        a copy of the current point (the same buffer is refilled for the next
        call when ``fun`` kept no reference to it), and a returned gradient is
        copied unless ``fun`` kept no reference to it either.
    x0 : array_like
        Starting point, never modified.  float32 ``x0`` runs the float32 path
        (``res.x`` is float32); any other real dtype is converted to float64.
        Any shape is accepted: the solvers work on the flattened vector and
        ``fun``, ``jac``, the callback and ``res.x``/``res.jac`` see ``x0``'s
        shape (a 0-d ``x0`` becomes shape ``(1,)``, as in scipy).
    args : tuple
        Extra arguments of ``fun`` and ``jac`` (a non-tuple is wrapped).
    method : str
        ``"L-BFGS"`` (default), ``"BFGS"``, ``"L-BFGS-OWLQN"`` (needs
        ``options["l1"]``), or a first-order optimizer from ``fastopt.optim``:
        ``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"``, ``"adagrad"``,
        ``"adadelta"``.  Case-insensitive.
    jac : callable, bool, {"2-point", "3-point"} or None
        Gradient: ``jac(x, *args)``; ``True`` if ``fun`` returns ``(f, g)``;
        ``None``/``"2-point"``/``"3-point"``: finite differences, which cost
        ``n`` (or ``2n``) extra calls of ``fun`` per gradient -- slow, for
        small problems and checks only.
    tol : float, optional
        As scipy: sets ``gtol`` for BFGS and the first-order methods, ``gtol``
        and ``ftol`` for L-BFGS and OWL-QN (explicit options win).
    callback : callable, optional
        Called after each iteration as ``callback(intermediate_result)`` (if that
        is its only parameter's name) with an ``OptimizeResult`` holding ``x``,
        ``fun``, ``jac``, ``nit``, ``nfev``, ``njev`` and ``step_size`` (the
        accepted line-search step :math:`\alpha_k`), or as ``callback(xk)``.
        Raising ``StopIteration`` stops the run (``status = 99``).
    options : dict, optional
        Quasi-Newton methods (defaults in brackets):

        * ``maxiter`` [BFGS: ``200 n``, L-BFGS: 15000], ``maxfun`` [BFGS: none,
          L-BFGS: 15000]: iteration and evaluation limits.
        * ``gtol`` [1e-5; 1e-4 for float32]: stop when
          :math:`\|g\|_\infty \le` ``gtol`` (OWL-QN: the pseudo-gradient).
        * ``ftol`` [0, off]: stop when
          :math:`f_k - f_{k+1} \le \mathrm{ftol}\,\max(|f_k|, |f_{k+1}|, 1)`.
        * ``xtol`` [0, off; ``xrtol`` is accepted for BFGS as in scipy]: stop when
          :math:`\|x_{k+1} - x_k\|_\infty \le \mathrm{xtol}(\mathrm{xtol} + \|x_k\|_\infty)`.
        * ``line_search`` ["more-thuente"] or "backtracking" (Armijo); ``c1``
          [1e-4], ``c2`` [0.9] (``0 < c1 < c2 < 1``), ``maxls`` [20].
        * ``m`` [10] (alias ``maxcor``): L-BFGS pairs kept.
        * ``scaling`` [True]: :math:`H_0 = \gamma I`,
          :math:`\gamma = s^T y / y^T y` (newest pair for L-BFGS; first pair,
          before the first update, for BFGS).
        * ``warm_start``: a previous result of the same method (or its
          ``hess_inv``; for L-BFGS also ``{"s": ..., "y": ..., "gamma": ...}``)
          whose curvature memory starts this run.
        * ``hess_inv0`` (BFGS): initial inverse Hessian, symmetric positive
          definite.
        * ``l1`` (L-BFGS, OWL-QN): :math:`c \ge 0`, scalar or one weight per
          variable; minimises :math:`f(x) + \sum_i c_i |x_i|` with OWL-QN.
        * ``finite_diff_rel_step``: relative step of finite differences.
        * ``disp`` [False]: print the final message.

        First-order methods: ``maxiter`` [1000], ``maxfun``, ``gtol`` [1e-5],
        ``disp``; every other key (``lr``, ``betas``, ``momentum``, ...) goes to
        the optimizer's constructor.  Unknown options of the quasi-Newton
        methods raise ``scipy.optimize.OptimizeWarning``.

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        ``x`` (dtype of the run, shape of ``x0``), ``fun``, ``jac``, ``nit``,
        ``nfev``, ``njev``, ``status``, ``success``, ``message`` (see
        :mod:`fastopt.optimize.result` for the status table), and ``hess_inv``:
        a dense ``ndarray`` for BFGS, an
        :class:`~fastopt.optimize.lbfgs.LbfgsInverseHessian`
        (``scipy.sparse.linalg.LinearOperator``) for L-BFGS and OWL-QN.

    Raises
    ------
    TypeError
        ``fun`` or ``callback`` not callable, ``x0`` not real, wrong option types.
    ValueError
        Unknown ``method``, non-finite or empty ``x0``, option values out of range.

    Notes
    -----
    BFGS keeps the dense inverse Hessian and updates it with a symmetric rank-2
    update, :math:`O(n^2)` per iteration; L-BFGS costs :math:`O(mn)`.
    Line-search failures do not raise: the run moves to the best point seen,
    forgets its curvature memory and retries along :math:`-g` once, then stops
    with ``status = 2`` and a message saying which condition failed.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.optimize import minimize
    >>> from scipy.optimize import rosen, rosen_der
    >>> res = minimize(rosen, np.zeros(5), jac=rosen_der)
    >>> bool(res.success), bool(np.allclose(res.x, 1, atol=1e-4))
    (True, True)
    >>> res.hess_inv.shape, res.nfev == res.njev
    ((5, 5), True)
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    key = method.strip().lower()
    if key in FIRST_ORDER_METHODS:
        kind = "first-order"
    elif key in _METHODS:
        kind = _METHODS[key]
    else:
        raise ValueError(f"unknown method {method!r}; choose one of 'BFGS', 'L-BFGS', "
                         f"'L-BFGS-OWLQN', " + ", ".join(repr(k) for k in FIRST_ORDER_METHODS))
    if not isinstance(args, tuple):
        args = (args,)
    if options is None:
        options = {}
    elif not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    opts: dict[str, Any] = dict(options)
    if tol is not None:
        tol = _check_number("tol", tol, lo=0.0)
    cb = _wrap_callback(callback)
    x, shape, dtype = _prepare_x0(x0)
    n = x.size

    if kind == "first-order":
        if tol is not None:
            opts.setdefault("gtol", tol)
        maxiter = _check_number("maxiter", opts.get("maxiter", 1000), lo=0, integer=True)
        maxfun = opts.get("maxfun")
        maxfun = None if maxfun is None else _check_number("maxfun", maxfun, lo=1, integer=True)
        gtol = _check_number("gtol", opts.get("gtol", 1e-5), lo=0.0)
        obj = Objective(fun, shape, dtype, args, jac, maxfun=maxfun)
        res = run_first_order(obj, x, key, opts, maxiter, maxfun, gtol, cb)
        _disp(opts.get("disp"), res)
        return res

    unknown = set(opts) - _KNOWN[kind]
    if unknown:
        names = ", ".join(repr(k) for k in sorted(unknown))
        warnings.warn(f"Unknown solver options for method {kind!r}: {names}",
                      optimize_warning(), stacklevel=2)
    if tol is not None:
        opts.setdefault("gtol", tol)
        if kind != "BFGS":
            opts.setdefault("ftol", tol)
    l1 = opts.get("l1")
    if kind == "L-BFGS-OWLQN" and l1 is None:
        raise ValueError("method 'L-BFGS-OWLQN' needs options['l1'] (the weight c of "
                         "c * ||x||_1)")
    if l1 is not None:
        l1 = _l1_weights(l1, n, dtype)
        if np.ndim(l1) == 0 and l1 == 0.0 and kind == "L-BFGS":
            l1 = None
        elif kind == "L-BFGS":
            kind = "L-BFGS-OWLQN"
    if "xrtol" in opts:
        opts.setdefault("xtol", opts["xrtol"])
    if "maxcor" in opts:
        opts.setdefault("m", opts["maxcor"])

    ls = opts.get("line_search", "more-thuente")
    if not isinstance(ls, str) or ls.lower() not in _LINE_SEARCHES:
        raise ValueError(f"options['line_search'] must be 'more-thuente' or 'backtracking', "
                         f"got {ls!r}")
    ls = _LINE_SEARCHES[ls.lower()]
    c1 = _check_number("c1", opts.get("c1", 1e-4), lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    c2 = _check_number("c2", opts.get("c2", 0.9), lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if ls == "more-thuente" and not c1 < c2:
        raise ValueError(f"options 'c1' and 'c2' must satisfy 0 < c1 < c2 < 1, got "
                         f"c1={c1}, c2={c2}")
    if kind == "BFGS":
        default_maxiter, default_maxfun = 200 * n, None
    else:
        default_maxiter, default_maxfun = 15000, 15000
    maxiter = _check_number("maxiter", opts.get("maxiter", default_maxiter), lo=0, integer=True)
    maxfun = opts.get("maxfun", default_maxfun)
    maxfun = None if maxfun is None else _check_number("maxfun", maxfun, lo=1, integer=True)
    qn = QNOptions(
        maxiter=maxiter, maxfun=maxfun,
        gtol=_check_number("gtol", opts.get("gtol", _default_gtol(dtype)), lo=0.0),
        ftol=_check_number("ftol", opts.get("ftol", 0.0), lo=0.0),
        xtol=_check_number("xtol", opts.get("xtol", 0.0), lo=0.0),
        line_search=ls, c1=c1, c2=c2,
        maxls=_check_number("maxls", opts.get("maxls", 20), lo=1, integer=True),
        ls_xtol=100 * float(np.finfo(dtype).eps),
        fnoise=math.sqrt(float(np.finfo(dtype).eps)),
        disp=bool(opts.get("disp", False)))
    scaling = opts.get("scaling", True)
    if not isinstance(scaling, (bool, np.bool_)):
        raise TypeError(f"options['scaling'] must be True or False, got {scaling!r}")
    fd_step = opts.get("finite_diff_rel_step")
    if fd_step is not None:
        fd_step = _check_number("finite_diff_rel_step", fd_step, lo=0.0, lo_open=True)
    obj = Objective(fun, shape, dtype, args, jac, fd_rel_step=fd_step, maxfun=maxfun)
    warm = opts.get("warm_start")

    if kind == "BFGS":
        H0 = opts.get("hess_inv0")
        if H0 is not None and warm is not None:
            raise ValueError("give either options['hess_inv0'] or options['warm_start'], "
                             "not both")
        if warm is not None:
            H0 = warm.get("hess_inv") if isinstance(warm, Mapping) else warm
            if not isinstance(H0, np.ndarray):
                raise TypeError("options['warm_start'] for BFGS must be a BFGS result "
                                "(with a dense hess_inv) or an (n, n) array")
            H0 = _bfgs_H0(H0, n, "options['warm_start'].hess_inv")
        elif H0 is not None:
            H0 = _bfgs_H0(H0, n, "options['hess_inv0']")
        bfgs_memory = BfgsMemory(n, dtype, H0)
        if not scaling:
            bfgs_memory.pristine = False

        def finalize(res):
            res["hess_inv"] = bfgs_memory.dense()
            return res
        res = run_quasi_newton(obj, x, bfgs_memory, qn, cb, finalize)
    else:
        m = _check_number("m", opts.get("m", 10), lo=1, integer=True)
        memory = LbfgsMemory(n, m, dtype, scaling=bool(scaling))
        if warm is not None:
            _load_lbfgs_warm_start(memory, warm)

        def finalize(res):
            res["hess_inv"] = memory.operator()
            return res
        if kind == "L-BFGS-OWLQN":
            res = run_owlqn(obj, x, memory, l1, qn, cb, finalize)
        else:
            res = run_quasi_newton(obj, x, memory, qn, cb, finalize)
    _disp(qn.disp, res)
    return res


def _load_lbfgs_warm_start(memory: LbfgsMemory, warm) -> None:
    from scipy.optimize import OptimizeResult

    from .inverse_hessian import LbfgsInverseHessian
    if isinstance(warm, OptimizeResult) or (isinstance(warm, Mapping) and "hess_inv" in warm):
        warm = warm["hess_inv"]
    if isinstance(warm, LbfgsInverseHessian):
        memory.load(warm.s, warm.y, warm.gamma)
    elif isinstance(warm, Mapping) and "s" in warm and "y" in warm:
        memory.load(warm["s"], warm["y"], warm.get("gamma"))
    else:
        raise TypeError("options['warm_start'] for L-BFGS must be an L-BFGS result, its "
                        "hess_inv, or a dict with 's' and 'y' arrays of shape (k, n)")


def _disp(flag, res):
    if flag:
        print(f"{res.message}\n         Current function value: {res.fun:.6g}\n"
              f"         Iterations: {res.nit}\n         Function evaluations: {res.nfev}\n"
              f"         Gradient evaluations: {res.njev}")
