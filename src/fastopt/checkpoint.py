"""Checkpoints without pickle: :func:`save_state` / :func:`load_state`.

``np.savez(..., state=opt.state_dict())`` pickles the nested dict, and a schedule given as
``lr`` is a Python object, so loading it needs ``allow_pickle=True`` — and unpickling a file
runs whatever code it names. :func:`save_state` instead writes a plain ``.npz``: every array
as its own ``.npy`` entry and the structure around them (dicts, lists, numbers, strings,
fastopt's schedules) as one JSON document; :func:`load_state` reads it back with
``allow_pickle=False``. Everything round-trips bit for bit: arrays with their dtype and
shape, Python floats (written with ``repr``, which reads back exactly, NaN and infinities
included), arbitrarily large ints, numpy scalars with their dtype, and schedules (rebuilt
from their fields, so a ReduceLROnPlateau keeps its current lr and history)::

    fastopt.save_state("ckpt.npz", {"params": params, "optimizer": opt.state_dict(),
                                    "bn": bn.state_dict(), "epoch": epoch})
    ckpt = fastopt.load_state("ckpt.npz")
    opt.load_state_dict(ckpt["optimizer"]); bn.load_state_dict(ckpt["bn"])

Loading builds only data: dicts, lists, tuples, numbers, strings, None, numpy arrays and
scalars, torch tensors (for state saved from fastopt.torch or torch; torch is imported only
then) and instances of fastopt.schedules' own classes. Anything else (a lambda as lr, an
object of your own) is refused when saving, with a TypeError naming where it sits.
"""

from __future__ import annotations

import json
import math
import os
from typing import IO, Any, Union

import numpy as np

__all__ = ["save_state", "load_state"]

FileLike = Union[str, "os.PathLike[str]", IO[bytes]]

_HEADER = "__fastopt_state__"
_FORMAT = "fastopt-state"
_VERSION = 1


def save_state(file: FileLike, state: Any, *, compress: bool = False) -> None:
    """Write `state` (a nested structure of plain data) to an ``.npz`` file, no pickle.

    Parameters
    ----------
    file : str, path or binary file
        Where to write; as with ``np.savez``, ``.npz`` is appended to a path without it.
    state : dict, list, tuple, array, number, str, None or schedule
        Typically a dict of ``state_dict()`` results, arrays and counters. Containers nest
        freely; dict keys may be strings, numbers, None or tuples of those. Allowed leaves:
        numpy arrays and scalars (not of dtype object), Python bool/int/float/complex/str/
        None, torch tensors (saved as arrays, loaded as CPU tensors without grad) and the
        schedules of :mod:`fastopt.schedules`.
    compress : bool, default False
        Write with ``np.savez_compressed``.

    Raises
    ------
    TypeError
        For anything else (a function, an object, an optimizer instead of its
        ``state_dict()``), naming where it sits in `state`; nothing is written then.

    Examples
    --------
    >>> import io, numpy as np, fastopt
    >>> opt = fastopt.AdamW([np.ones(3)], lr=fastopt.schedules.one_cycle(0.01, 100))
    >>> opt.step([np.full(3, 0.5)])
    True
    >>> buf = io.BytesIO()
    >>> fastopt.save_state(buf, {"optimizer": opt.state_dict(), "epoch": 1})
    >>> _ = buf.seek(0)
    >>> ckpt = fastopt.load_state(buf)
    >>> ckpt["epoch"], ckpt["optimizer"]["param_groups"][0]["lr"]
    (1, one_cycle(max_lr=0.01, total_steps=100, pct_start=0.3, anneal_strategy='cos',
                  div_factor=25.0, final_div_factor=10000.0, three_phase=False))
    """
    if not isinstance(compress, (bool, np.bool_)):
        raise TypeError(f"compress: expected True or False, got {type(compress).__name__}")
    arrays: list[np.ndarray] = []
    tree = _encode(state, "state", arrays)
    header = json.dumps({"format": _FORMAT, "version": _VERSION, "tree": tree},
                        allow_nan=False, separators=(",", ":"))
    entries = {f"a{i}": a for i, a in enumerate(arrays)}
    entries[_HEADER] = np.frombuffer(header.encode("utf-8"), dtype=np.uint8)
    if compress:
        np.savez_compressed(file, **entries)  # type: ignore[arg-type]
    else:
        np.savez(file, **entries)  # type: ignore[arg-type]


def load_state(file: FileLike) -> Any:
    """Read what :func:`save_state` wrote (``np.load`` with ``allow_pickle=False``).

    Parameters
    ----------
    file : str, path or binary file

    Returns
    -------
    The saved structure, rebuilt: equal to what was saved, bit for bit.

    Raises
    ------
    ValueError
        If the file was not written by :func:`save_state` or is damaged.
    ImportError
        If it holds torch tensors and torch is not installed.

    Examples
    --------
    >>> import io, numpy as np, fastopt
    >>> buf = io.BytesIO()
    >>> fastopt.save_state(buf, {"w": np.arange(3.0), "best": float("inf")})
    >>> _ = buf.seek(0)
    >>> fastopt.load_state(buf)
    {'w': array([0., 1., 2.]), 'best': inf}
    """
    with np.load(file, allow_pickle=False) as data:
        if _HEADER not in data.files:
            raise ValueError("file: not written by fastopt.save_state (no "
                             f"{_HEADER!r} entry)")
        try:
            doc = json.loads(data[_HEADER].tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"file: damaged fastopt.save_state header ({err})") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError("file: not written by fastopt.save_state")
        if doc.get("version") != _VERSION:
            raise ValueError(f"file: fastopt.save_state format version {doc.get('version')!r}; "
                             f"this fastopt reads version {_VERSION}")
        return _Decoder(data).decode(doc.get("tree"), "state")


# -- encoding --------------------------------------------------------------------------------

def _encode(value: Any, path: str, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):  # first: np.float64 is a float too
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise TypeError(f"{path}: an array of dtype object cannot be saved without pickle")
        arrays.append(arr)
        return {"array" if isinstance(value, np.ndarray) else "scalar": len(arrays) - 1}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else {"float": repr(float(value))}
    if isinstance(value, complex):
        return {"complex": [_encode(value.real, path, arrays), _encode(value.imag, path, arrays)]}
    if _is_tensor(value):
        arrays.append(_tensor_to_numpy(value, path))
        return {"tensor": len(arrays) - 1}
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            where = f"{path}[{key!r}]"
            if not _is_key(key):
                raise TypeError(f"{where}: a dict key of type {type(key).__name__}; save_state "
                                "takes keys that are strings, numbers, None or tuples of those")
            items.append([_encode(key, where, arrays), _encode(item, where, arrays)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f"{path}[{i}]", arrays) for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"tuple": items}
    from fastopt import schedules

    if isinstance(value, schedules.Schedule):
        cls = type(value)
        if cls.__module__ != schedules.__name__ or \
                getattr(schedules, cls.__name__, None) is not cls:
            raise TypeError(f"{path}: {cls.__module__}.{cls.__qualname__} is not one of "
                            "fastopt.schedules' own schedules; save_state stores data, not "
                            "code (pickle it yourself if you trust where it will be loaded)")
        getstate = getattr(value, "__getstate__", None)  # object has one from Python 3.11
        fields = getstate() if getstate is not None else value.__dict__
        if not isinstance(fields, dict):  # pragma: no cover - every schedule has fields
            raise TypeError(f"{path}: {cls.__name__} has no field dict to save")
        return {"schedule": cls.__name__,
                "fields": _encode(dict(fields), f"{path}.<{cls.__name__}>", arrays)}
    if hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
        raise TypeError(f"{path}: an object of type {type(value).__name__}; save its "
                        "state_dict() and restore it with load_state_dict()")
    if callable(value):
        raise TypeError(f"{path}: {getattr(value, '__qualname__', type(value).__name__)} is "
                        "a function, which save_state cannot store without pickle; give the "
                        "optimizer a fastopt.schedules schedule instead (or pickle it yourself "
                        "if you trust where it will be loaded)")
    raise TypeError(f"{path}: cannot save a {type(value).__name__} without pickle")


def _is_key(key: Any) -> bool:
    if key is None or isinstance(key, (bool, int, float, str, np.integer, np.floating)):
        return True
    return isinstance(key, tuple) and all(_is_key(k) for k in key)


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach") \
        and hasattr(value, "numpy")


def _tensor_to_numpy(t: Any, path: str) -> np.ndarray:
    t = t.detach().cpu().resolve_conj().resolve_neg()
    try:
        return np.array(t.numpy(), copy=True)
    except TypeError:  # bfloat16 and other dtypes numpy lacks
        raise TypeError(f"{path}: a tensor of dtype {t.dtype}, which numpy (and so .npz) "
                        "cannot hold") from None


# -- decoding --------------------------------------------------------------------------------

class _Decoder:
    def __init__(self, data: Any) -> None:
        self.data = data

    def array(self, index: Any, path: str) -> np.ndarray:
        key = f"a{index}" if isinstance(index, int) and not isinstance(index, bool) else None
        if key is None or key not in self.data.files:
            raise ValueError(f"file: {path} refers to a missing array {index!r}")
        return self.data[key]

    def decode(self, node: Any, path: str) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v, f"{path}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, dict) or len(node) not in (1, 2):
            raise ValueError(f"file: damaged entry at {path}")
        tag = next(iter(node))
        body = node[tag]
        if tag == "dict" and isinstance(body, list):
            out = {}
            for item in body:
                if not isinstance(item, list) or len(item) != 2:
                    raise ValueError(f"file: damaged dict at {path}")
                key = self.decode(item[0], path)
                if not _is_key(key):
                    raise ValueError(f"file: unhashable dict key at {path}")
                out[key] = self.decode(item[1], f"{path}[{key!r}]")
            return out
        if tag == "tuple" and isinstance(body, list):
            return tuple(self.decode(v, f"{path}[{i}]") for i, v in enumerate(body))
        if tag == "float" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "complex" and isinstance(body, list) and len(body) == 2:
            re, im = (self.decode(v, path) for v in body)
            if not isinstance(re, float) or not isinstance(im, float):
                raise ValueError(f"file: damaged complex number at {path}")
            return complex(re, im)
        if tag == "array":
            return self.array(body, path)
        if tag == "scalar":
            arr = self.array(body, path)
            if arr.shape != ():
                raise ValueError(f"file: damaged scalar at {path}")
            return arr[()]
        if tag == "tensor":
            arr = self.array(body, path)
            try:
                import torch
            except ImportError:
                raise ImportError(f"{path} is a torch tensor: loading it needs PyTorch (pip "
                                  "install torch==2.13.0)") from None
            return torch.from_numpy(np.array(arr, copy=True))
        if tag == "schedule" and isinstance(body, str) and set(node) == {"schedule", "fields"}:
            return self.schedule(body, node["fields"], path)
        raise ValueError(f"file: unknown entry {tag!r} at {path}")

    def schedule(self, name: str, fields_node: Any, path: str) -> Any:
        from fastopt import schedules

        cls = getattr(schedules, name, None)
        if not (isinstance(cls, type) and issubclass(cls, schedules.Schedule)
                and cls.__module__ == schedules.__name__):
            raise ValueError(f"file: {path} names {name!r}, not a fastopt.schedules schedule")
        fields = self.decode(fields_node, f"{path}.<{name}>")
        if not isinstance(fields, dict) or not all(isinstance(k, str) for k in fields):
            raise ValueError(f"file: damaged fields of the schedule at {path}")
        obj = cls.__new__(cls)
        try:
            setstate = getattr(obj, "__setstate__", None)
            if setstate is not None:
                setstate(fields)
            else:
                obj.__dict__.update(fields)
            obj(0)  # a schedule whose fields do not fit fails here, not in the training loop
        except Exception as err:
            raise ValueError(f"file: the {name} schedule at {path} cannot be rebuilt from its "
                             f"saved fields ({type(err).__name__}: {err})") from None
        return obj
