"""``fastopt.minimize``: scipy's signature, the choice of method, and dispatch to the
solvers (options are checked in :mod:`._options`)."""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from fastopt._validation import check_bool, check_callable, check_options, describe_value

from ._options import (
    METHOD_DEFAULTS,
    _check_number,
    _qn_options,
    bfgs_H0,
    fd_steps,
    l1_weights,
    warn_unknown,
)
from ._quasi_newton import QNOptions, run_quasi_newton
from ._scipy import optimize_result, optimize_warning
from .bfgs import BfgsMemory
from .first_order import FIRST_ORDER_METHODS, run_first_order
from .lbfgs import LbfgsMemory
from .objective import Objective
from .owlqn import run_owlqn

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

# _check_number and _qn_options are imported here by name for code that reads them from
# this module (fastopt.distributed did)
__all__ = ["minimize"]

_METHODS = {"bfgs": "BFGS", "l-bfgs": "L-BFGS", "lbfgs": "L-BFGS", "l-bfgs-b": "L-BFGS-B",
            "l-bfgs-owlqn": "L-BFGS-OWLQN", "owlqn": "L-BFGS-OWLQN", "owl-qn": "L-BFGS-OWLQN"}


def _choose_method(method: Any, bounds: Any, constraints: Any) -> tuple[str, str]:
    """``(kind, key)``: the solver (``"BFGS"``, ``"L-BFGS"``, ``"L-BFGS-B"``,
    ``"L-BFGS-OWLQN"`` or ``"first-order"``) and the lower-case name. ``None`` chooses
    as scipy: L-BFGS-B with bounds, BFGS without."""
    if method is None:
        method = "L-BFGS-B" if bounds is not None else "BFGS"
    if not isinstance(method, str):
        raise TypeError(f"method: expected a string or None, got {describe_value(method)}")
    key = method.strip().lower()
    if key in FIRST_ORDER_METHODS:
        return "first-order", key
    if key in _METHODS:
        return _METHODS[key], key
    choices = ["BFGS", "L-BFGS-B", "L-BFGS", "L-BFGS-OWLQN", *FIRST_ORDER_METHODS]
    raise ValueError(f"method: expected None or one of {', '.join(map(repr, choices))}, "
                     f"got {method!r}")


def _check_constraints(constraints: Any) -> None:
    """Only the empty default: fastopt solves unconstrained and bound-constrained
    problems."""
    if constraints is None or (isinstance(constraints, (tuple, list)) and not constraints):
        return
    raise ValueError(f"constraints: expected () -- fastopt.minimize supports no "
                     f"constraints other than bounds (bounds=..., method 'L-BFGS-B'); for "
                     f"linear or nonlinear constraints use scipy.optimize.minimize with "
                     f"'SLSQP', 'trust-constr' or 'COBYQA'; got {describe_value(constraints)}")


def _minimize_bounded(obj: Objective, x: np.ndarray, bounds: Any, qn: QNOptions, m: int,
                      callback: Callable[[OptimizeResult], Any] | None) -> OptimizeResult:
    """L-BFGS-B with ``bounds``: everything but the bounds is prepared as for the unbounded
    run (the objective with its finite differences, the options with L-BFGS-B's defaults,
    the callback)."""
    # THE one place bounds reach a solver
    from .bounds import parse_bounds
    from .lbfgsb import minimize_lbfgsb
    box = parse_bounds(bounds, x.size, x.dtype)
    lower, upper = (None, None) if box is None else box
    if box is not None and np.all(box[0] == box[1]):
        return _all_fixed_result(obj, box[0])
    obj.set_box(lower, upper)   # finite differences stay in the box
    maxfun = 15000 if qn.maxfun is None else qn.maxfun
    obj.maxfun = None   # as scipy, L-BFGS-B checks maxfun after each iteration, not inside
    res = minimize_lbfgsb(obj, x, lower, upper, ftol=qn.ftol, gtol=qn.gtol, maxcor=m,
                          maxls=qn.maxls, maxiter=qn.maxiter, maxfun=maxfun,
                          callback=callback, shape=obj.shape)
    if obj.finite_differences and obj.fixed is not None:
        # scipy takes fixed variables out of a finite-difference problem: their
        # derivative is unknown (NaN), and so is the inverse Hessian of the whole
        res["jac"] = np.where(obj.fixed.reshape(obj.shape), np.nan, res["jac"])
        res["hess_inv"] = None
    return res


def _all_fixed_result(obj: Objective, lower: np.ndarray) -> OptimizeResult:
    """scipy's result when the bounds fix every variable: x = lower, one evaluation."""
    x = np.array(lower, dtype=obj.dtype)
    return optimize_result(x=x.reshape(obj.shape), fun=obj.f(x), success=True, status=0,
                           message="All independent variables were fixed by bounds.",
                           nfev=1, njev=0, nhev=0, nit=0)


def _wrap_callback(callback):
    """scipy's convention: ``callback(intermediate_result)`` when that is the only
    parameter's name, else the legacy ``callback(xk)`` with a copy of x."""
    if callback is None:
        return None
    check_callable(callback, "callback")
    try:
        params = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        params = set()
    if params == {"intermediate_result"}:
        return lambda res: callback(intermediate_result=res)
    return lambda res: callback(np.copy(res.x))


def _recording(callback, allvecs: list):
    """``return_all``: every iterate goes to ``allvecs`` before the user's callback."""
    def record(res):
        allvecs.append(res.x)
        if callback is not None:
            callback(res)
    return record


def _prepare_x0(x0) -> tuple[np.ndarray, tuple[int, ...], np.dtype]:
    try:
        a = np.asarray(x0)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"x0: expected an array of real numbers, got {exc}") from None
    if a.dtype.kind == "c":
        raise TypeError("x0: expected real numbers, got a complex array (split real and "
                        "imaginary parts into separate variables)")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"x0: expected an array of real numbers, got dtype {a.dtype}")
    if a.size == 0:
        raise ValueError("x0: expected at least one element, got an empty array")
    dtype = np.dtype(np.float32) if a.dtype == np.float32 else np.dtype(np.float64)
    shape = a.shape if a.ndim else (1,)
    x = np.array(a, dtype=dtype, copy=True).reshape(-1)
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.isfinite(x))[0])
        raise ValueError(f"x0: expected finite values, got {x[bad]} at element {bad} (of "
                         f"the flattened x0)")
    return x, shape, dtype


def minimize(fun: Callable[..., Any], x0: ArrayLike, args: tuple | Any = (),
             method: str | None = None,
             jac: Callable[..., ArrayLike] | bool | str | None = None,
             hess: Any = None, hessp: Any = None, bounds: Any = None,
             constraints: Any = (), tol: float | None = None,
             callback: Callable[..., Any] | None = None,
             options: Mapping[str, Any] | None = None) -> OptimizeResult:
    r"""Minimise a scalar function of one or more variables: a drop-in for
    :func:`scipy.optimize.minimize` (same signature, statuses and options).

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
    method : str, callable or None
        A callable is scipy's custom minimizer, called as
        ``method(fun, x0, args=..., jac=..., hess=..., hessp=..., bounds=...,
        constraints=..., callback=..., **options)``.
        ``None`` (default) chooses as scipy: ``"BFGS"`` without bounds,
        ``"L-BFGS-B"`` with them.  ``"L-BFGS-B"``, with or without bounds, is
        scipy's algorithm (:func:`fastopt.optimize.lbfgsb.minimize_lbfgsb`: its
        iterates, defaults such as ``ftol`` = 2.2e-9, messages and ``hess_inv``);
        ``"L-BFGS"`` is fastopt's own L-BFGS (``ftol`` = 0);
        ``"L-BFGS-OWLQN"`` (needs ``options["l1"]``); or a first-order optimizer
        from ``fastopt.optim``: ``"adam"``, ``"adamw"``, ``"sgd"``,
        ``"rmsprop"``, ``"adagrad"``, ``"adadelta"``.  Case-insensitive.
    jac : callable, bool, {"2-point", "3-point"} or None
        Gradient: ``jac(x, *args)``; ``True`` if ``fun`` returns ``(f, g)``;
        ``None``/``False``/``"2-point"``/``"3-point"``: finite differences, which
        cost ``n`` (or ``2n``) extra calls of ``fun`` per gradient -- slow, for
        small problems and checks only.
    hess, hessp : optional
        Accepted for scipy's signature and not used (the methods build their own
        curvature); giving one warns as scipy does (``RuntimeWarning``).
    bounds : scipy.optimize.Bounds or sequence of (min, max), optional
        Box constraints, solved by ``"L-BFGS-B"`` (the default method when
        ``bounds`` is given).  Other methods warn (``RuntimeWarning``, as
        scipy) and ignore them.
    constraints : ()
        Only the empty default: any other value raises ``ValueError``.
    tol : float, optional
        As scipy: sets ``gtol`` for BFGS and the first-order methods, ``gtol``
        and ``ftol`` for the L-BFGS methods (explicit options win).
    callback : callable, optional
        Called after each iteration as ``callback(intermediate_result)`` (if that
        is its only parameter's name) with an ``OptimizeResult`` holding ``x``,
        ``fun``, ``jac``, ``nit``, ``nfev``, ``njev`` and ``step_size`` (the
        accepted line-search step :math:`\alpha_k`), or as ``callback(xk)``.
        Raising ``StopIteration`` stops the run (``status = 99``).
    options : dict, optional
        Quasi-Newton methods (defaults in brackets):

        * ``maxiter`` [BFGS: ``200 n``, L-BFGS: 15000; ``None``: the default],
          ``maxfun`` [BFGS: none, L-BFGS: 15000]: iteration and evaluation limits.
        * ``gtol`` [1e-5; 1e-4 for float32]: stop when
          :math:`\|g\|_\infty \le` ``gtol`` (OWL-QN: the pseudo-gradient);
          ``norm`` (BFGS) is accepted with scipy's default ``inf`` only.
        * ``ftol`` [L-BFGS-B: 2.2e-9; others: 0, off]: stop when
          :math:`f_k - f_{k+1} \le \mathrm{ftol}\,\max(|f_k|, |f_{k+1}|, 1)`.
        * ``xtol`` [0, off; ``xrtol`` is accepted for BFGS as in scipy]: stop when
          :math:`\|x_{k+1} - x_k\|_\infty \le \mathrm{xtol}(\mathrm{xtol} + \|x_k\|_\infty)`.
        * ``line_search`` ["more-thuente"] or "backtracking" (Armijo); ``c1``
          [1e-4], ``c2`` [0.9] (``0 < c1 < c2 < 1``), ``maxls`` [20].
        * ``maxcor`` [10] (alias ``m``): L-BFGS pairs kept.
        * ``vector_free`` [None] (L-BFGS, OWL-QN): the form of the two-loop recursion
          (:class:`~fastopt.optimize.lbfgs.LbfgsMemory`): None chooses the vector-free
          form from 16 MiB per vector (n >= 2,097,152 float64), where it ran faster
          than the plain recursion, and the plain one below. The two give the same
          directions up to rounding, so iterates may differ in the last bits.
        * ``scaling`` [True]: :math:`H_0 = \gamma I`,
          :math:`\gamma = s^T y / y^T y` (newest pair for L-BFGS; first pair, before
          the first update, for BFGS). scipy's BFGS does not scale: ``scaling=False``
          gives its iterates (the same evaluations as scipy on all but 1 of the 140
          collection runs at n = 10 and 100). Scaling saves 16% of the evaluations over
          those runs (19,879 against 23,656; scipy 23,860), solves ``ext_hiebert`` at
          n = 100 within 5,000 iterations where the unscaled form does not, but takes
          over 1.5x scipy's evaluations on 20 runs whose first step sees only the
          stiffest directions (``diagonal9``, ``quad_diag_perturbed``; 28 iterations
          against 5 on ``diag(1, 10, 100, 1000)``).
        * ``warm_start``: a previous result of the same method (or its
          ``hess_inv``; for L-BFGS also ``{"s": ..., "y": ..., "gamma": ...}``)
          whose curvature memory starts this run.
        * ``hess_inv0`` (BFGS): initial inverse Hessian, symmetric positive
          definite.
        * ``l1`` (L-BFGS, OWL-QN): :math:`c \ge 0`, scalar or one weight per
          variable; minimises :math:`f(x) + \sum_i c_i |x_i|` with OWL-QN.
        * ``eps``: absolute finite-difference step (scalar or one per variable;
          wins over the next), ``finite_diff_rel_step``: relative step (scalar or
          one per variable) [:math:`\sqrt{\varepsilon}` for 2-point,
          :math:`\varepsilon^{1/3}` for 3-point; scipy's default is the absolute
          ``eps`` = 1.49e-8].
        * ``return_all`` [False]: ``res.allvecs`` lists every iterate, ``x0``
          first.
        * ``disp`` [False]: print the final message (a failed run warns it as
          ``OptimizeWarning``, as scipy); ``iprint`` (scipy's
          L-BFGS-B verbosity) and ``workers`` (scipy's parallel finite
          differences) are accepted and not used.

        First-order methods: ``maxiter`` [1000], ``maxfun``, ``gtol`` [1e-5],
        ``disp``; every other key (``lr``, ``betas``, ``momentum``, ...) goes to
        the optimizer's constructor.  Unknown options of the quasi-Newton
        methods warn with ``scipy.optimize.OptimizeWarning`` and are ignored, as
        in scipy.

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        ``x`` (dtype of the run, shape of ``x0``), ``fun``, ``jac``, ``nit``,
        ``nfev``, ``njev``, ``status`` (scipy's: 0 converged, 1 iteration or
        evaluation limit, 2 line search or precision failure, 3 NaN, 99
        callback), ``success``, ``message``, ``reason`` (fastopt's stop reason:
        ``"gtol"``, ``"ftol"``, ``"xtol"``, ... -- the table in
        :mod:`fastopt.optimize.result`), and ``hess_inv``: a dense ``ndarray``
        for BFGS, an :class:`~fastopt.optimize.lbfgs.LbfgsInverseHessian`
        (``scipy.sparse.linalg.LinearOperator``) for the L-BFGS methods.

    Raises
    ------
    TypeError
        ``fun`` or ``callback`` not callable, ``x0`` not real, wrong option types.
    ValueError
        Unknown ``method``, non-empty ``constraints``, non-finite or empty
        ``x0``, option values out of range.

    Notes
    -----
    BFGS keeps the dense inverse Hessian and updates it with a symmetric rank-2
    update, :math:`O(n^2)` per iteration, in fastopt's own C kernels (the same
    bits whatever the BLAS and the thread count); L-BFGS costs :math:`O(mn)`.
    Line-search failures do not raise: the run moves to the best point seen,
    forgets its curvature memory and retries along :math:`-g` once, then stops
    with ``status = 2`` and a message saying which condition failed.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.optimize import minimize
    >>> from scipy.optimize import rosen, rosen_der
    >>> res = minimize(rosen, np.zeros(5), jac=rosen_der)    # BFGS, as scipy
    >>> bool(res.success), res.status, bool(np.allclose(res.x, 1, atol=1e-4))
    (True, 0, True)
    >>> res.hess_inv.shape, res.nfev == res.njev
    ((5, 5), True)
    >>> res = minimize(rosen, np.zeros(5), jac=rosen_der, method="L-BFGS-B")
    >>> res.status, res.reason in ("gtol", "ftol")
    (0, True)
    """
    check_callable(fun, "fun")
    if callable(method):
        # scipy's custom minimizer: called with everything, unchecked (as scipy does)
        return method(fun, x0, args=args, jac=jac, hess=hess, hessp=hessp, bounds=bounds,
                      constraints=constraints, callback=callback, **check_options(options))
    kind, key = _choose_method(method, bounds, constraints)
    name = kind if method is None else method      # as scipy's warnings show it
    if hess is not None:
        warnings.warn(f"Method {name} does not use Hessian information (hess).",
                      RuntimeWarning, stacklevel=2)
    if hessp is not None:
        warnings.warn(f"Method {name} does not use Hessian-vector product information "
                      f"(hessp).", RuntimeWarning, stacklevel=2)
    _check_constraints(constraints)
    if not isinstance(args, tuple):
        args = (args,)
    opts = check_options(options)
    if tol is not None:
        tol = _check_number("tol", tol, lo=0.0, label="tol")
    if bounds is not None and kind != "L-BFGS-B":
        warnings.warn(f"Method {name} cannot handle bounds.", RuntimeWarning, stacklevel=2)
        bounds = None
    cb = _wrap_callback(callback)
    x, shape, dtype = _prepare_x0(x0)
    allvecs: list | None = None
    if opts.get("return_all"):
        allvecs = [x.reshape(shape).copy()]
        cb = _recording(cb, allvecs)

    if kind == "first-order":
        res, disp = _first_order(fun, x, shape, dtype, args, jac, key, opts, tol, cb)
    else:
        warn_unknown(opts, kind, stacklevel=2)
        res, disp = _quasi_newton(fun, x, shape, dtype, args, jac, kind, opts, tol, cb,
                                  bounds)
    if allvecs is not None:
        res["allvecs"] = allvecs
    _disp(disp, res)
    return res


def _first_order(fun, x, shape, dtype, args, jac, key, opts, tol, cb):
    if tol is not None:
        opts.setdefault("gtol", tol)
    opts.pop("return_all", None)
    maxiter = opts.get("maxiter")
    maxiter = 1000 if maxiter is None else _check_number("maxiter", maxiter, lo=0,
                                                         integer=True)
    maxfun = opts.get("maxfun")
    maxfun = None if maxfun is None else _check_number("maxfun", maxfun, lo=1, integer=True)
    gtol = _check_number("gtol", opts.get("gtol", 1e-5), lo=0.0)
    obj = Objective(fun, shape, dtype, args, jac, maxfun=maxfun)
    return run_first_order(obj, x, key, opts, maxiter, maxfun, gtol, cb), opts.get("disp")


def _quasi_newton(fun, x, shape, dtype, args, jac, kind, opts, tol, cb, bounds=None):
    n = x.size
    if tol is not None:
        opts.setdefault("gtol", tol)
        if kind != "BFGS":
            opts.setdefault("ftol", tol)
    l1 = opts.get("l1") if kind in ("L-BFGS", "L-BFGS-OWLQN") else None
    if kind == "L-BFGS-OWLQN" and l1 is None:
        raise ValueError("options['l1']: expected the weight c of c * ||x||_1, which "
                         "method 'L-BFGS-OWLQN' needs, got nothing")
    if l1 is not None:
        l1 = l1_weights(l1, n, dtype)
        if np.ndim(l1) == 0 and l1 == 0.0 and kind == "L-BFGS":
            l1 = None
        elif kind == "L-BFGS":
            kind = "L-BFGS-OWLQN"
    if "xrtol" in opts and kind == "BFGS":
        opts.setdefault("xtol", opts["xrtol"])
    if "maxcor" in opts:
        opts.setdefault("m", opts["maxcor"])

    maxiter, maxfun, ftol = METHOD_DEFAULTS[kind]
    qn, scaling = _qn_options(opts, dtype, 200 * n if maxiter is None else maxiter, maxfun,
                              ftol)
    qn.predicted_first_step = kind == "BFGS"   # scipy BFGS's first trial step
    abs_step, rel_step = fd_steps(opts, n, kind, jac)
    obj = Objective(fun, shape, dtype, args, jac, fd_rel_step=rel_step,
                    fd_abs_step=abs_step, maxfun=qn.maxfun)
    m = 0 if kind == "BFGS" else _check_number("m", opts.get("m", 10), lo=1, integer=True)
    if kind == "L-BFGS-B":   # with or without bounds: scipy's algorithm, iterates, hess_inv
        return _minimize_bounded(obj, x, bounds, qn, m, cb), qn.disp
    warm = opts.get("warm_start")

    if kind == "BFGS":
        H0 = opts.get("hess_inv0")
        if H0 is not None and warm is not None:
            raise ValueError("options['hess_inv0'], options['warm_start']: expected one "
                             "of them, got both")
        if warm is not None:
            H0 = warm.get("hess_inv") if isinstance(warm, Mapping) else warm
            if not isinstance(H0, np.ndarray):
                raise TypeError(f"options['warm_start']: expected a BFGS result (with a "
                                f"dense hess_inv) or an ({n}, {n}) array, got "
                                f"{describe_value(warm)}")
            H0 = bfgs_H0(H0, n, "options['warm_start'].hess_inv")
        elif H0 is not None:
            H0 = bfgs_H0(H0, n, "options['hess_inv0']")
        bfgs_memory = BfgsMemory(n, dtype, H0)
        if not scaling:
            bfgs_memory.pristine = False

        def finalize(res):
            res["hess_inv"] = bfgs_memory.dense()
            return res
        res = run_quasi_newton(obj, x, bfgs_memory, qn, cb, finalize)
    else:
        vector_free = opts.get("vector_free")
        memory = LbfgsMemory(n, m, dtype, scaling=scaling, vector_free=None
                             if vector_free is None else
                             check_bool(vector_free, "options['vector_free']"))
        if warm is not None:
            _load_lbfgs_warm_start(memory, warm)

        def finalize(res):
            res["hess_inv"] = memory.operator()
            return res
        if kind == "L-BFGS-OWLQN":
            res = run_owlqn(obj, x, memory, l1, qn, cb, finalize)
        else:
            res = run_quasi_newton(obj, x, memory, qn, cb, finalize)
    return res, qn.disp


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
        raise TypeError(f"options['warm_start']: expected an L-BFGS result, its hess_inv, "
                        f"or a dict with 's' and 'y' arrays of shape (k, n), got "
                        f"{describe_value(warm)}")


def _disp(flag, res):
    """``disp``: as scipy, a failed run warns (``OptimizeWarning``, the message) and a
    successful one prints; both then print the counters."""
    if not flag:
        return
    if res.success:
        print(res.message)
    else:
        warnings.warn(res.message, optimize_warning(), stacklevel=3)
    print(f"         Current function value: {res.fun:.6g}\n"
          f"         Iterations: {res.nit}\n         Function evaluations: {res.nfev}\n"
          f"         Gradient evaluations: {res.njev}")
