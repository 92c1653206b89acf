"""How long fastopt's idle OpenMP threads spin before they sleep: set before libgomp loads.

GNU libgomp reads ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` once, when the library is
loaded (when ``fastopt._kernels`` is first imported). Its default, 300,000 spins of the
``pause`` instruction after every parallel region, is 7.5 ms on the 2-core AMD EPYC this
was measured on (25 ns per pause): a worker thread holds a core for 7.5 ms after each
kernel call, which is what stalls numpy's BLAS threads in a training loop and the
kernels themselves on a busy machine (README, Configuration). fastopt therefore loads its
OpenMP runtime with ``GOMP_SPINCOUNT=SPIN_COUNT`` (about 0.1 ms here; back-to-back
kernel calls still find their workers awake) unless the user set either variable.

The variable is set in ``os.environ`` only while ``fastopt._kernels`` loads and is removed
again, so child processes and libraries with a private runtime of their own (scikit-learn's
``libgomp-<hash>.so.1``) do not see it. A runtime is one per name, though: torch's wheels
ship theirs as ``libgomp.so.1``, the name fastopt's loads under, and other torch builds use
the system's, so with torch installed whichever of the two is imported first provides the
one runtime both use, and a spin count set for fastopt would be torch's too. A short spin
there is harmful: torch's fused CPU Adam and DeepSpeedCPUAdam open one parallel region per
tensor, and on a machine where another process kept a core busy their 500-tensor steps
took 105-120 ms (fused) and 300-360 ms (DeepSpeed) instead of 3-30 ms in 10 of 15 processes
with ``GOMP_SPINCOUNT=4000`` (fastopt's team 1 or 2, load 1.6-3.3); with 300,000 fused did
in none of those 15, DeepSpeed in one (the worker, asleep after its short spin while the
main thread was preempted, has to be woken and scheduled again for each region). Less
often, not never: one whole ``benchmarks/torch_dropin.py`` run at load 1.6-2.9 still had
fused at 230 ms. fastopt's own steps in those processes were 0.5-1.0 ms with the short
spin and 1.1-1.3 ms without (torch's spinning workers take CPU from them). So fastopt
sets nothing when an installed torch would share its runtime (found without importing
torch); ``GOMP_SPINCOUNT=4000`` in the environment asks for the short spin anyway. This
module imports nothing from fastopt: the package's ``__init__`` imports it before anything
loads ``fastopt._kernels``.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

#: libgomp's spin count for fastopt's runtime: 4,000 pauses, about 0.1 ms on the AMD EPYC
#: of the measurements (benchmarks/thread_policy.py), 0.2 ms where a pause is 50 ns.
SPIN_COUNT = 4000

#: The variables that decide libgomp's waiting; a user's setting of any of them wins.
USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

_state: dict[str, Any] = {}


def _loaded_openmp_libraries() -> set[str] | None:
    """Paths of the OpenMP runtimes mapped into this process (None: cannot tell)."""
    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    found = set()
    for line in lines:
        fields = line.split(maxsplit=5)
        path = fields[5] if len(fields) == 6 else ""
        name = os.path.basename(path)
        if name.startswith(("libgomp", "libomp", "libiomp")):
            found.add(path)
    return found


def torch_shares_runtime() -> bool:
    """Whether an installed torch would use the OpenMP runtime fastopt loads: True unless
    torch is absent or keeps a private copy under another name (a ``libgomp-<hash>.so.1``
    and no ``libgomp.so.1`` in ``torch/lib``, as older torch wheels did). Found without
    importing torch."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    for location in spec.submodule_search_locations:
        try:
            names = os.listdir(os.path.join(location, "lib"))
        except OSError:
            continue
        if "libgomp.so.1" not in names and any(n.startswith("libgomp-") for n in names):
            return False
    return True


def before_load() -> None:
    """Set ``GOMP_SPINCOUNT`` for the runtime about to load (unless the user chose, or an
    installed torch would share the runtime)."""
    user = {k: os.environ[k] for k in USER_VARIABLES if k in os.environ}
    _state.update(user=user, before=_loaded_openmp_libraries(), set_by_fastopt=False,
                  torch_shares=False)
    if not user:
        if torch_shares_runtime():
            _state["torch_shares"] = True
            return
        os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
        _state["set_by_fastopt"] = True


def after_load() -> None:
    """Remove the variable again and record whether fastopt's runtime saw it."""
    if _state.get("set_by_fastopt") and os.environ.get("GOMP_SPINCOUNT") == str(SPIN_COUNT):
        del os.environ["GOMP_SPINCOUNT"]
    after = _loaded_openmp_libraries()
    before = _state.get("before")
    if after is None or before is None:
        _state["loaded_now"] = None
    else:
        _state["loaded_now"] = sorted(after - before)
        _state["runtimes"] = sorted(after)


def describe(openmp: bool) -> dict[str, object]:
    """The wait policy in force and why (for show_config)."""
    user = _state.get("user") or {}
    loaded_now = _state.get("loaded_now")
    if not openmp:
        return {"wait_policy": "none (built without OpenMP)", "source": "build"}
    if user:
        setting = " ".join(f"{k}={v}" for k, v in user.items())
        return {"wait_policy": setting, "source": "your environment (fastopt sets nothing)"}
    if _state.get("torch_shares"):
        return {"wait_policy": "libgomp's default (300,000 spins)",
                "source": "fastopt sets nothing: the installed torch uses the same OpenMP "
                          "runtime, and a short spin there made torch's per-tensor parallel "
                          "regions wait for sleeping workers on a busy machine; "
                          f"GOMP_SPINCOUNT={SPIN_COUNT} asks for fastopt's short spin"}
    if loaded_now == []:
        return {"wait_policy": "libgomp's default (300,000 spins)",
                "source": "fastopt's choice NOT applied: an OpenMP runtime of the same file "
                          "was loaded before fastopt (" +
                          ", ".join(map(os.path.basename, _state.get("runtimes", []))) +
                          "); set GOMP_SPINCOUNT before starting Python"}
    return {"wait_policy": f"GOMP_SPINCOUNT={SPIN_COUNT} (spin ~0.1 ms, then sleep)",
            "source": "fastopt's default (no OMP_WAIT_POLICY or GOMP_SPINCOUNT set)"}
