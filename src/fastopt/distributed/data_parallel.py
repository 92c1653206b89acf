"""Data-parallel training over MPI with the optimizer state sharded between ranks (ZeRO
stage 1)."""
from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastopt import _kernels
from fastopt.kernels import all_finite
from fastopt.optim import Optimizer
from fastopt.optim.optimizer import _as_key, checked_state_array, checkpoint_positions

from ._layout import Block, blocks_of, contiguous_view
from ._mpi import check_comm, mpi_type

__all__ = ["DataParallel", "pack_params", "state_nbytes"]

#: a param-group value that did not pickle (a lambda schedule): each rank keeps its own
_KEEP = "<fastopt.distributed: keep this rank's value>"


def pack_params(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Copies of ``arrays`` laid back to back, per dtype, in one flat buffer.

    :class:`DataParallel` gathers the updated parameters straight into such arrays (one
    ``Allgatherv`` in place); other parameters cost one extra copy of the parameters per
    step. Arrays of one dtype share one buffer, in their order.

    Parameters
    ----------
    arrays : sequence of ndarray
        float32 / float64 arrays.

    Returns
    -------
    list of ndarray
        C-contiguous, writeable views with the shapes, dtypes and values of ``arrays``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.distributed import pack_params
    >>> w, b = pack_params([np.ones((2, 3)), np.zeros(3)])
    >>> w.shape, b.shape, w.base is b.base
    ((2, 3), (3,), True)
    """
    arrays = [np.asarray(a) for a in arrays]
    views: list[np.ndarray | None] = [None] * len(arrays)
    by_dtype: dict[np.dtype, list[int]] = {}
    for i, a in enumerate(arrays):
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"arrays[{i}]: expected float32 or float64, got {a.dtype}")
        by_dtype.setdefault(a.dtype, []).append(i)
    for dtype, indices in by_dtype.items():
        flat = np.empty(sum(arrays[i].size for i in indices), dtype=dtype)
        offset = 0
        for i in indices:
            n = arrays[i].size
            view = flat[offset:offset + n].reshape(arrays[i].shape)
            np.copyto(view, arrays[i])
            views[i] = view
            offset += n
    return views  # type: ignore[return-value]


def state_nbytes(optimizer: Optimizer) -> int:
    """Bytes of the state arrays (step counters included) that ``optimizer`` holds.

    Parameters
    ----------
    optimizer : fastopt.optim.Optimizer
        Any fastopt optimizer (for a :class:`DataParallel`, pass its ``shard`` or call its
        :meth:`~DataParallel.state_nbytes`).

    Returns
    -------
    int
        The sum of ``nbytes`` over ``optimizer.state``.

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt
    >>> from fastopt.distributed import state_nbytes
    >>> opt = fastopt.Adam([np.zeros(1000, np.float32)])
    >>> opt.step([np.ones(1000, np.float32)])
    True
    >>> state_nbytes(opt)          # exp_avg, exp_avg_sq: 2 x 4000 bytes, step: 8 bytes
    8008
    """
    return int(sum(np.asarray(v).nbytes for slots in optimizer.state.values()
                   for v in slots.values()))


class DataParallel:
    r"""Data-parallel steps of a fastopt optimizer over MPI, its state sharded by rank.

    Every rank holds all parameters and computes gradients on its own part of the batch.
    ``step(grads)`` then

    1. averages the gradients over the ranks: one in-place ``Allreduce`` (sum) per bucket
       of the flat gradient vector, then division by the number of ranks;
    2. updates only this rank's contiguous slice of the flat multi-tensor layout (the
       parameters of one dtype flattened and concatenated in order; see below) with the
       optimizer's fused kernel -- the optimizer state exists for that slice only
       (ZeRO stage 1: about ``1/size`` of the state per rank, :meth:`state_nbytes`);
    3. gathers the updated slices on every rank (``Allgatherv``, in place).

    The result is the single-process optimizer's step on the averaged gradient, element for
    element the same arithmetic: given the same averaged gradients the parameters are
    bitwise those of the plain optimizer, for every optimizer and schedule. (Averages
    computed by MPI can differ from a single process's mean in the last bits: the
    reduction order differs.)

    Parameters
    ----------
    optimizer : fastopt.optim.Optimizer
        A fastopt optimizer (any class of :mod:`fastopt.optim`) over the full parameters,
        built the same way on every rank. It is not stepped and not changed: its param
        groups (options, schedules, step counts) and state, if any, are read from rank
        0's and split between the ranks; drop your reference to free its state.
    comm : mpi4py.MPI.Intracomm
        The ranks taking part (e.g. ``MPI.COMM_WORLD``).
    average : bool, default True
        Divide the summed gradients by the number of ranks (the mean of per-rank mean
        gradients is the full batch's mean gradient when the ranks' batches are of equal
        size). False: use the sum (for losses that sum over the examples).
    bucket_bytes : int, default 16 MiB
        Size of one ``Allreduce`` (the flat gradient vector is reduced in such chunks).
    broadcast_params : bool, default True
        Copy rank 0's parameter values to every rank at construction (as torch's
        DistributedDataParallel), so that all ranks start from the same point.

    Attributes
    ----------
    shard : fastopt.optim.Optimizer
        An optimizer of the same class over 1-D views of this rank's pieces of each
        parameter (empty views where it owns none), with the same param groups and
        options: per-parameter step counts and state, as the plain optimizer keeps them.
    param_groups : list of dict
        ``shard.param_groups``: change ``lr`` and other options there (on every rank).
    zero_copy : bool
        The parameters of each dtype lie back to back in one buffer
        (:func:`pack_params`), so the gather writes straight into them.

    Notes
    -----
    Every method but :meth:`state_nbytes` is collective: all ranks call it, with
    gradients of the same shapes (and ``None`` at the same positions). Argument errors are
    raised before any communication.

    The layout: the parameters of each dtype (float32, float64) form one flat vector;
    rank ``r`` of ``size`` owns elements ``[r N / size, (r + 1) N / size)`` of it, rounded
    to 64-byte boundaries. A rank's optimizer work and state bytes are therefore about
    ``1/size`` of the plain optimizer's; its gradient buffer (one flat copy, reduced in
    place) and its parameters are full size, as in ZeRO stage 1.

    Examples
    --------
    Run with ``mpirun -n 2 python script.py`` (one process also works):

    >>> import numpy as np
    >>> import fastopt
    >>> from mpi4py import MPI                                # doctest: +SKIP
    >>> from fastopt.distributed import DataParallel, pack_params
    >>> w, b = pack_params([np.zeros((3, 2)), np.zeros(2)])
    >>> dp = DataParallel(fastopt.Adam([w, b], lr=0.1), MPI.COMM_WORLD)  # doctest: +SKIP
    >>> dp.step([np.ones((3, 2)), np.ones(2)])               # doctest: +SKIP
    True
    >>> w                                                    # doctest: +SKIP
    array([[-0.1, -0.1],
           [-0.1, -0.1],
           [-0.1, -0.1]])
    """

    def __init__(self, optimizer: Optimizer, comm: Any, *, average: bool = True,
                 bucket_bytes: int = 1 << 24, broadcast_params: bool = True) -> None:
        MPI = check_comm(comm)
        if not isinstance(optimizer, Optimizer):
            raise TypeError("optimizer: expected a fastopt optimizer (fastopt.optim), got "
                            f"{type(optimizer).__name__}")
        if optimizer.state_dtype is not None:
            # the shards' 256-element quantization blocks would not be the plain optimizer's,
            # so its results (and its checkpoints) could not be the plain optimizer's
            raise ValueError(f"optimizer: DataParallel keeps the optimizer state in the "
                             f"parameters' dtype; got state_dtype={optimizer.state_dtype!r} "
                             f"(build the optimizer without state_dtype)")
        if any(_kernels.is_bfloat16(p) for g in optimizer.param_groups for p in g["params"]):
            raise TypeError("optimizer: DataParallel takes float32/float64 parameters, got "
                            "bfloat16 ones")
        for name, flag in (("average", average), ("broadcast_params", broadcast_params)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name}: expected True or False, got {flag!r}")
        if isinstance(bucket_bytes, (bool, np.bool_)) or not isinstance(
                bucket_bytes, (int, np.integer)) or bucket_bytes < 1:
            raise ValueError(f"bucket_bytes: expected a positive int, got {bucket_bytes!r}")
        self._MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.average = bool(average)
        self.bucket_bytes = int(bucket_bytes)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self._params = params
        self._check_same_everywhere(optimizer, params)
        self._blocks = blocks_of(params, self.size)
        self._flat = [contiguous_view([params[i] for i in b.indices]) for b in self._blocks]
        self.zero_copy = all(f is not None or b.total == 0
                             for f, b in zip(self._flat, self._blocks))
        self._grad_bufs = [np.empty(b.total, dtype=b.dtype) for b in self._blocks]
        self._param_bufs: list[np.ndarray | None] = [None] * len(self._blocks)
        # the owned piece of every parameter, and its place in the flat vector
        self._pieces: list[tuple[int, int, int]] = [(0, 0, 0)] * len(params)
        for b in self._blocks:
            for i, offset, start, stop in b.pieces(self.rank):
                self._pieces[i] = (offset, start, stop)
        views = [params[i].reshape(-1)[start:stop]
                 for i, (_, start, stop) in enumerate(self._pieces)]
        self.shard = _shard_optimizer(optimizer, views)
        if broadcast_params:
            self._broadcast_params()
        if comm.bcast(bool(optimizer.state) if self.rank == 0 else None, root=0):
            self.load_state_dict(optimizer.state_dict() if self.rank == 0 else None)

    # -- setup -------------------------------------------------------------------------
    def _check_same_everywhere(self, optimizer: Optimizer, params: list[np.ndarray]) -> None:
        signature = (type(optimizer).__name__,
                     [len(g["params"]) for g in optimizer.param_groups],
                     [(p.shape, p.dtype.str) for p in params])
        mine = repr(signature)
        first = self.comm.bcast(mine if self.rank == 0 else None, root=0)
        agree = self.comm.allreduce(int(mine == first), op=self._MPI.MIN)
        if not agree:
            raise ValueError("optimizer: the ranks hold different optimizers or parameters "
                             f"(rank {self.rank}: {mine}; rank 0: {first}); build the same "
                             "model and optimizer on every rank")

    def _broadcast_params(self) -> None:
        for b, flat in zip(self._blocks, self._flat):
            if b.total == 0:
                continue
            buf = flat if flat is not None else self._pack_params(b)
            self.comm.Bcast([buf, mpi_type(self._MPI, b.dtype)], root=0)
            if flat is None:
                self._unpack_params(b, buf, 0, b.total)

    def _pack_params(self, b: Block) -> np.ndarray:
        buf = np.empty(b.total, dtype=b.dtype)
        for i, offset in zip(b.indices, b.offsets):
            p = self._params[i]
            buf[offset:offset + p.size] = p.reshape(-1)
        return buf

    def _unpack_params(self, b: Block, buf: np.ndarray, lo: int, hi: int) -> None:
        """Copy elements outside ``[lo, hi)`` of the flat vector ``buf`` into the params."""
        for i, offset in zip(b.indices, b.offsets):
            p = self._params[i].reshape(-1)
            for a, z in ((0, lo), (hi, b.total)):   # the parts that other ranks own
                a, z = max(a - offset, 0), min(z - offset, p.size)
                if a < z:
                    p[a:z] = buf[offset + a:offset + z]

    # -- stepping ----------------------------------------------------------------------
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The param groups of :attr:`shard` (options are shared by all ranks)."""
        return self.shard.param_groups

    def step(self, grads: Sequence[np.ndarray | None], skip_if_nonfinite: bool = False) -> bool:
        """Average ``grads`` over the ranks and apply one update (collective).

        Parameters
        ----------
        grads : sequence of ndarray or None
            This rank's gradient of every parameter, in the flattened order of the
            optimizer's params, with their shapes and dtypes; never modified. ``None``
            leaves a parameter (and its state and step count) untouched, and must then be
            ``None`` on every rank.
        skip_if_nonfinite : bool, default False
            If the averaged gradient holds NaN or Inf anywhere (on any rank's slice),
            change nothing on any rank and return False.

        Returns
        -------
        bool
            Whether the update was applied.
        """
        if not isinstance(skip_if_nonfinite, (bool, np.bool_)):
            raise TypeError(f"skip_if_nonfinite: expected True or False, got "
                            f"{skip_if_nonfinite!r}")
        grads = self._check_grads(grads)
        MPI = self._MPI
        for b, buf in zip(self._blocks, self._grad_bufs):
            for i, offset in zip(b.indices, b.offsets):
                g = grads[i]
                part = buf[offset:offset + self._params[i].size]
                if g is None:
                    part.fill(0)
                else:
                    np.copyto(part.reshape(g.shape), g)
            step = max(1, self.bucket_bytes // b.dtype.itemsize)
            for start in range(0, b.total, step):
                self.comm.Allreduce(MPI.IN_PLACE, [buf[start:start + step],
                                                   mpi_type(MPI, b.dtype)], op=MPI.SUM)
            lo, hi = b.owned(self.rank)
            if self.average and self.size > 1:
                np.divide(buf[lo:hi], self.size, out=buf[lo:hi])
        if skip_if_nonfinite:
            finite = all(all_finite(buf[slice(*b.owned(self.rank))])
                         for b, buf in zip(self._blocks, self._grad_bufs) if b.total)
            if not self.comm.allreduce(int(finite), op=MPI.MIN):
                return False
        local: list[np.ndarray | None] = [None] * len(self._params)
        for b, buf in zip(self._blocks, self._grad_bufs):
            for i in b.indices:
                if grads[i] is not None:
                    offset, start, stop = self._pieces[i]
                    local[i] = buf[offset + start:offset + stop]
        self.shard.step(local)
        self._gather_params()
        return True

    def _check_grads(self, grads: Any) -> list[np.ndarray | None]:
        if isinstance(grads, np.ndarray):
            grads = [grads]
        grads = list(grads)
        if len(grads) != len(self._params):
            raise ValueError(f"grads: expected {len(self._params)} gradients (one per "
                             f"parameter), got {len(grads)}")
        for i, (g, p) in enumerate(zip(grads, self._params)):
            if g is None:
                continue
            if not isinstance(g, np.ndarray):
                raise TypeError(f"grads[{i}]: expected a numpy array or None, got "
                                f"{type(g).__name__}")
            if g.dtype != p.dtype:
                raise TypeError(f"grads[{i}]: dtype {g.dtype} differs from its parameter's "
                                f"{p.dtype}")
            if g.shape != p.shape:
                raise ValueError(f"grads[{i}]: shape {g.shape} differs from its parameter's "
                                 f"{p.shape}")
        return grads

    def _gather_params(self) -> None:
        MPI = self._MPI
        for b, flat in zip(self._blocks, self._flat):
            if b.total == 0 or self.size == 1:
                continue
            lo, hi = b.owned(self.rank)
            buf = flat
            if buf is None:
                buf = self._gather_buf(b)
                for i, offset in zip(b.indices, b.offsets):
                    _, start, stop = self._pieces[i]
                    buf[offset + start:offset + stop] = \
                        self._params[i].reshape(-1)[start:stop]
            counts = b.counts()
            self.comm.Allgatherv(MPI.IN_PLACE, [buf, counts, b.bounds[:-1],
                                                mpi_type(MPI, b.dtype)])
            if flat is None:
                self._unpack_params(b, buf, lo, hi)

    def _gather_buf(self, b: Block) -> np.ndarray:
        """The flat buffer that gathers block ``b`` when its parameters are not packed."""
        k = self._blocks.index(b)
        buf = self._param_bufs[k]
        if buf is None:
            buf = self._param_bufs[k] = np.empty(b.total, dtype=b.dtype)
        return buf

    # -- state -------------------------------------------------------------------------
    def state_nbytes(self) -> int:
        """Bytes of optimizer state this rank holds (not collective).

        About ``1/size`` of :func:`state_nbytes` of the plain optimizer, plus the 8-byte
        step counter of each parameter. The total over ranks is
        ``comm.allreduce(dp.state_nbytes())``.
        """
        return state_nbytes(self.shard)

    def _entries(self) -> dict[int, tuple[tuple[str, ...], dict[str, Any]]]:
        """This rank's state entries: ``{index: (names of the per-element arrays, the
        per-parameter scalars)}``. The arrays named in the class's ``state_names`` are split
        between the ranks like the parameters; every other entry (``step``, NAdam's
        ``mu_product``) is one value per parameter, the same on every rank, in the format of
        the plain optimizer's ``state_dict``."""
        sharded = set(self.shard.state_names)
        local = self.shard.state_dict()["state"]
        return {i: (tuple(sorted(k for k in slots if k in sharded)),
                    {k: v for k, v in slots.items() if k not in sharded})
                for i, slots in local.items()}

    def _order(self, b: Block, rank: int, entries: dict
               ) -> list[tuple[int, str, int, int]]:
        """``(index, name, start, stop)``: the state pieces of ``rank`` in block ``b``, in
        the order they travel."""
        order: list[tuple[int, str, int, int]] = []
        for i, _, start, stop in b.pieces(rank):
            if i in entries:
                order.extend((i, name, start, stop) for name in entries[i][0])
        return order

    def state_dict(self, root: int = 0) -> dict[str, Any] | None:
        """The full optimizer state, gathered on rank ``root`` (collective).

        Returns
        -------
        dict or None
            On ``root``: the plain optimizer's checkpoint format (``{"state": {index:
            {name: array, "step": int}}, "param_groups": [...]}``, arrays of the full
            parameters' shapes), which a plain fastopt optimizer or a DataParallel on any
            number of ranks loads. None on the other ranks.
        """
        MPI = self._MPI
        self._check_root(root)
        mine = self._entries()
        every = self.comm.gather(_fingerprint(mine), root=root)
        groups = self.shard.state_dict()["param_groups"] if self.rank == root else None
        full: dict[int, dict[str, Any]] = {}
        if self.rank == root:
            assert every is not None
            for r, theirs in enumerate(every):
                if theirs != every[root]:
                    raise RuntimeError(f"state_dict: rank {r}'s state entries differ from "
                                       f"rank {root}'s: a step was not taken on every rank")
            for i, (names, scalars) in mine.items():
                p = self._params[i]
                full[i] = {name: np.empty(p.size, dtype=p.dtype) for name in names}
                full[i].update(scalars)
        for b in self._blocks:
            order = self._order(b, self.rank, mine)
            send = np.empty(sum(z - a for _, _, a, z in order), dtype=b.dtype)
            pos = 0
            for i, name, a, z in order:
                send[pos:pos + z - a] = self.shard.state[i][name]
                pos += z - a
            if self.rank != root:
                self.comm.Gatherv([send, mpi_type(MPI, b.dtype)], None, root=root)
                continue
            orders = [self._order(b, r, mine) for r in range(self.size)]
            counts = [sum(z - a for _, _, a, z in o) for o in orders]
            displs = [int(d) for d in np.cumsum([0] + counts[:-1])]
            recv = np.empty(sum(counts), dtype=b.dtype)
            self.comm.Gatherv([send, mpi_type(MPI, b.dtype)],
                              [recv, counts, displs, mpi_type(MPI, b.dtype)], root=root)
            for o, pos in zip(orders, displs):
                for i, name, a, z in o:
                    full[i][name][a:z] = recv[pos:pos + z - a]
                    pos += z - a
        if self.rank != root:
            return None
        for i, (names, _) in mine.items():
            for name in names:
                full[i][name] = full[i][name].reshape(self._params[i].shape)
        return {"state": full, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any] | None, root: int = 0) -> None:
        """Load a full checkpoint given on rank ``root`` (collective).

        Parameters
        ----------
        state_dict : dict or None
            On ``root``: a checkpoint of the plain optimizer's format -- from
            :meth:`state_dict` on any number of ranks, or from a plain fastopt optimizer of
            the same class over the same parameters. The other ranks may pass None (what
            they pass is not read). Each rank receives its pieces (``Scatterv``).
        root : int, default 0

        Raises
        ------
        TypeError, ValueError
            On every rank, naming the first mismatch (structure, shapes, dtypes, state
            names, options); then nothing is changed on any rank.
        """
        MPI = self._MPI
        self._check_root(root)
        error: Exception | None = None
        meta = None
        arrays: dict[int, dict[str, np.ndarray]] = {}
        if self.rank == root:
            try:
                meta, arrays = self._split_checkpoint(state_dict)
            except (TypeError, ValueError) as exc:
                error = exc
        error, meta = self.comm.bcast((error, meta) if self.rank == root else None, root=root)
        if error is not None:
            raise error
        groups_payload, entries = meta
        groups = pickle.loads(groups_payload)
        pieces: dict[int, dict[str, Any]] = {i: {} for i in entries}
        for b in self._blocks:
            order = self._order(b, self.rank, entries)
            recv = np.empty(sum(z - a for _, _, a, z in order), dtype=b.dtype)
            if self.rank == root:
                orders = [self._order(b, r, entries) for r in range(self.size)]
                counts = [sum(z - a for _, _, a, z in o) for o in orders]
                send = np.empty(sum(counts), dtype=b.dtype)
                pos = 0
                for o in orders:
                    for i, name, a, z in o:
                        send[pos:pos + z - a] = arrays[i][name][a:z]
                        pos += z - a
                displs = [int(d) for d in np.cumsum([0] + counts[:-1])]
                self.comm.Scatterv([send, counts, displs, mpi_type(MPI, b.dtype)],
                                   [recv, mpi_type(MPI, b.dtype)], root=root)
            else:
                self.comm.Scatterv(None, [recv, mpi_type(MPI, b.dtype)], root=root)
            pos = 0
            for i, name, a, z in order:
                pieces[i][name] = recv[pos:pos + z - a]
                pos += z - a
        for i, (_, scalars) in entries.items():
            pieces[i].update(scalars)
        local_groups = []
        for saved, group in zip(groups, self.shard.param_groups):
            entry = {k: (group[k] if v == _KEEP else v) for k, v in saved.items()}
            local_groups.append(entry)
        backup = self.shard.state_dict()
        failure: Exception | None = None
        try:
            self.shard.load_state_dict({"state": pieces, "param_groups": local_groups})
        except (TypeError, ValueError) as exc:
            failure = exc
        failures = self.comm.allgather(failure)
        first = next((f for f in failures if f is not None), None)
        if first is not None:
            if failure is None:
                self.shard.load_state_dict(backup)
            raise first

    def _check_root(self, root: Any) -> None:
        if isinstance(root, (bool, np.bool_)) or not isinstance(root, (int, np.integer)) \
                or not 0 <= root < self.size:
            raise ValueError(f"root: expected a rank in [0, {self.size}), got {root!r}")

    def _split_checkpoint(self, state_dict: Any) -> tuple[tuple[bytes, dict], dict]:
        """On root: check a full checkpoint's structure, shapes and dtypes; return what
        every rank needs (the param groups, pickled, and each parameter's state names and
        step) and the flattened state arrays by parameter position."""
        position = checkpoint_positions(state_dict, self.shard.param_groups)
        groups, start = [], 0
        for saved in state_dict["param_groups"]:
            entry = {name: v for name, v in saved.items() if name != "params"}
            entry["params"] = list(range(start, start + len(saved["params"])))
            start += len(saved["params"])
            groups.append(entry)
        entries: dict[int, tuple[tuple[str, ...], dict[str, Any]]] = {}
        arrays: dict[int, dict[str, np.ndarray]] = {}
        sharded = set(self.shard.state_names)
        for key, slots in dict(state_dict["state"]).items():
            if _as_key(key) not in position:
                raise ValueError(f"state_dict: state for parameter {key!r}, which no group "
                                 "holds")
            i = position[_as_key(key)]
            p = self._params[i]
            slots = dict(slots)
            if not slots:
                continue
            arrays[i] = {}
            for name, value in slots.items():
                if name not in sharded:
                    continue     # a per-parameter scalar: every rank's optimizer checks it
                arrays[i][name] = checked_state_array(value, p, key, name).reshape(-1)
            entries[i] = (tuple(sorted(arrays[i])),
                          {k: v for k, v in slots.items() if k not in sharded})
        return (_pickle_groups(groups), entries), arrays


def _fingerprint(entries: dict[int, tuple[tuple[str, ...], dict[str, Any]]]) -> list:
    """The entries in a form that compares by value (numpy scalars by their bytes)."""
    return [(i, names, sorted((k, np.asarray(v).dtype.str, np.asarray(v).tobytes())
                              for k, v in scalars.items()))
            for i, (names, scalars) in sorted(entries.items())]


_UNPICKLABLE = (pickle.PicklingError, TypeError, AttributeError)


def _pickle_groups(groups: list[dict[str, Any]]) -> bytes:
    """The groups pickled for the other ranks; a value that does not pickle (a lambda
    schedule) travels as ``_KEEP``: those ranks keep their own."""
    try:
        return pickle.dumps(groups)
    except _UNPICKLABLE:
        safe = []
        for group in groups:
            entry = {}
            for k, v in group.items():
                try:
                    pickle.dumps(v)
                    entry[k] = v
                except _UNPICKLABLE:
                    entry[k] = _KEEP
            safe.append(entry)
        return pickle.dumps(safe)


def _shard_optimizer(optimizer: Optimizer, views: list[np.ndarray]) -> Optimizer:
    """An optimizer of ``optimizer``'s class and param groups over ``views``."""
    groups, start = [], 0
    for group in optimizer.param_groups:
        entry = {k: v for k, v in group.items() if k != "params"}
        n = len(group["params"])
        entry["params"] = views[start:start + n]
        start += n
        groups.append(entry)
    try:
        return type(optimizer)(groups, **copy.copy(optimizer.defaults))
    except TypeError as exc:
        raise TypeError(f"optimizer: DataParallel builds a {type(optimizer).__name__} over "
                        "this rank's pieces of the parameters as "
                        f"{type(optimizer).__name__}(param_groups, **optimizer.defaults), "
                        f"which failed: {exc}") from exc
