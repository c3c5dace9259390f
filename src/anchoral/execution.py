"""Where pool-wide work runs: in this process (``LocalExecutor``, the default) or as Ray
tasks and actors on a local instance or an existing cluster (``RayExecutor``).

An executor offers one primitive, an ordered ``map(function, items, shared=...)``, and
the pool-wide jobs built on it, each giving the same result as the local path:

- ``encode(encoder, inputs)``: pool encoding over blocks, the encoder loaded once per
  worker (a pool of Ray actors), rows concatenated in input order;
- ``predict_proba(model, inputs)`` / ``embed(model, inputs)``: a fitted model over
  blocks of the pool, the model shipped once;
- ``knn(queries, database, k)``: ``anchoral.index.knn`` split by blocks of queries,
  the database shipped once.

Large values (the pool's features, the fitted model, the search database) go to Ray's
object store once through ``ray.put``; every task receives a reference, and workers on
the same node read the arrays in place (zero-copy) instead of receiving a copy each.
A read-only pool (memory-mapped from the embedding cache) is put once and reused by
later calls, so a run ships its pool once rather than once per round.
"""

from __future__ import annotations

import math
import re
import socket
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import numpy as np

from anchoral import index
from anchoral.errors import AnchoralError, ValidationError, unknown_name
from anchoral.validation import check_positive_int

DEFAULT_BLOCK_ROWS = 65536
"""Rows of the pool per prediction task (the MLP head's own inference block, so blocks match it)."""
KEEP_MIN_BYTES = 2**20
"""Read-only arrays at least this large keep their object-store reference across calls ..."""
KEEP_ARRAYS = 2
"""... the most recently used this many of them (the pool's features and one more)."""
RAY_INSTALL_HINT = "ray is not installed: pip install 'anchoral[ray]'"
_CLIENT_ADDRESS = re.compile(r"^ray://[^\s:/]+:\d+$")
_GCS_ADDRESS = re.compile(r"^[^\s:/]+:\d+$")


class ExecutionError(AnchoralError, RuntimeError):
    """The execution backend is missing or unreachable; the message says how to fix it."""


def _take(inputs, rows: slice):
    """Rows ``rows`` of an array or of a list of inputs (texts)."""
    return inputs[rows] if isinstance(inputs, np.ndarray) else list(inputs[rows])


def _blocks(n_rows: int, n_blocks: int) -> list[slice]:
    """``n_blocks`` contiguous, near-equal slices covering ``range(n_rows)`` (fewer if rows are few)."""
    n_blocks = max(1, min(n_blocks, n_rows))
    bounds = np.linspace(0, n_rows, n_blocks + 1).round().astype(int)
    return [slice(int(start), int(stop)) for start, stop in zip(bounds[:-1], bounds[1:])]


def _predict_block(rows: slice, *, model, inputs) -> np.ndarray:
    return model.predict_proba(_take(inputs, rows))


def _embed_block(rows: slice, *, model, inputs) -> np.ndarray:
    return model.embed(_take(inputs, rows))


def _knn_block(rows: slice, *, queries, database, k, options) -> tuple[np.ndarray, np.ndarray]:
    return index.knn(queries[rows], database, k, **options)


class Executor(ABC):
    """Runs pool-wide work; subclasses implement ``map`` and may specialise the jobs."""

    name = ""

    @abstractmethod
    def map(self, function: Callable, items: Sequence, *, shared: dict | None = None) -> list:
        """``[function(item, **shared) for item in items]``, in the order of ``items``.

        ``shared`` holds keyword arguments common to every call (large arrays, a fitted
        model): a distributed executor ships each of them once, not once per item.
        """

    @property
    def parallelism(self) -> int:
        """How many tasks run at once (CPUs available to the executor)."""
        return 1

    def close(self) -> None:
        """Release what the executor started (nothing for the local one)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def for_reuse(self, array: np.ndarray) -> np.ndarray:
        """``array`` as it should be passed to repeated calls (every round of a run): unchanged here."""
        return array

    def encode(self, encoder, inputs, *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """``encoder.encode(inputs)`` as float32 rows in input order."""
        return encoder.encode(inputs, batch_size=batch_size, progress=progress)

    def predict_proba(self, model, inputs) -> np.ndarray:
        """The fitted ``model``'s class probabilities for every row of ``inputs``."""
        return model.predict_proba(inputs)

    def embed(self, model, inputs) -> np.ndarray:
        """The fitted ``model``'s representation f_enc of every row of ``inputs``."""
        return model.embed(inputs)

    def knn(self, queries, database, k: int, **options) -> tuple[np.ndarray, np.ndarray]:
        """``anchoral.index.knn(queries, database, k, **options)``."""
        return index.knn(queries, database, k, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LocalExecutor(Executor):
    """Everything in this process, exactly as without an executor (the default)."""

    name = "local"

    def map(self, function: Callable, items: Sequence, *, shared: dict | None = None) -> list:
        shared = shared or {}
        return [function(item, **shared) for item in items]


def check_ray_address(address) -> str | None:
    """``address`` if it is a valid Ray address (or ``None``), else a ValidationError listing the forms."""
    if address is None or (isinstance(address, str) and (address == "auto" or _CLIENT_ADDRESS.match(address)
                                                         or _GCS_ADDRESS.match(address))):
        return address
    raise ValidationError(
        f"address must be None (start a local Ray instance), 'auto', 'HOST:PORT' (a cluster's head node) "
        f"or 'ray://HOST:PORT' (Ray Client); got {address!r}")


class RayExecutor(Executor):
    """Pool-wide work as Ray tasks (prediction, k-NN search) and actors (encoding).

    Parameters
    ----------
    address : str, optional
        ``None`` starts a local Ray instance in this process (stopped by ``close``);
        ``"auto"`` connects to the cluster a ``ray start --head`` on this machine runs;
        ``"HOST:6379"`` to a cluster's head node; ``"ray://HOST:10001"`` through Ray Client
        from outside the cluster. If Ray is already initialised in this process, that
        connection is used (and left open by ``close``).
    num_cpus : int, optional
        CPUs of the local instance (default: all); only with ``address=None``.
    block_rows : int, default 65536
        Pool rows per prediction task (more tasks are made if the pool has few blocks).
    runtime_env : dict, optional
        Ray runtime environment for the workers, e.g. ``{"pip": ["anchoral[ray]"]}`` on a
        cluster whose nodes lack anchoral.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, *,
                 block_rows: int = DEFAULT_BLOCK_ROWS, runtime_env: dict | None = None):
        check_ray_address(address)
        if num_cpus is not None:
            num_cpus = check_positive_int(num_cpus, "num_cpus")
            if address is not None:
                raise ValidationError(f"num_cpus sizes a local Ray instance; it cannot be set with address={address!r} "
                                      "(the cluster's nodes declare their own CPUs)")
        if runtime_env is not None and not isinstance(runtime_env, dict):
            raise ValidationError(f"runtime_env must be a dict (a Ray runtime environment); got {runtime_env!r}")
        self.address = address
        self.num_cpus = num_cpus
        self.block_rows = check_positive_int(block_rows, "block_rows")
        self.runtime_env = runtime_env
        self._ray = _import_ray()
        self._started = False
        self._kept: dict[int, tuple[np.ndarray, Any]] = {}
        self._connect()

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        options = {"address": self.address, "include_dashboard": False, "log_to_driver": False,
                   "runtime_env": self.runtime_env}
        if self.num_cpus is not None:
            options["num_cpus"] = self.num_cpus
        try:
            if self.address not in (None, "auto"):
                _check_listening(self.address)  # ray.init retries an unreachable head for minutes
            ray.init(**options)
        except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
            if self.address is None:
                raise ExecutionError(f"could not start a local Ray instance: {exc}") from exc
            raise ExecutionError(
                f"could not connect to the Ray cluster at address={self.address!r}: {exc}. Start one with "
                f"`ray start --head` on its head node and pass its address ('HOST:6379', or 'ray://HOST:10001' "
                f"from outside the cluster), or address=None for a local instance") from exc
        self._started = True

    @property
    def parallelism(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        """Stop the Ray instance this executor started (a connection it found open stays open)."""
        self._kept.clear()
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False

    def for_reuse(self, array: np.ndarray) -> np.ndarray:
        """A read-only view of ``array``: passed to every round of a run, it is put in the object
        store once (see ``_put``) instead of once per call."""
        view = array.view()
        view.flags.writeable = False
        return view

    def _put(self, value):
        """A reference to ``value`` in the object store. Read-only arrays of at least
        ``KEEP_MIN_BYTES`` (a memory-mapped pool from the embedding cache) are put once and
        the reference kept (the last ``KEEP_ARRAYS`` of them), so a pool is shipped once per
        run, not once per round; anything writable or small is put again on every call."""
        if not (isinstance(value, np.ndarray) and not value.flags.writeable and value.nbytes >= KEEP_MIN_BYTES):
            return self._ray.put(_shareable(value))
        kept = self._kept.pop(id(value), None)
        if kept is None or kept[0] is not value:
            kept = (value, self._ray.put(_shareable(value)))
        self._kept[id(value)] = kept  # most recently used last
        while len(self._kept) > KEEP_ARRAYS:
            del self._kept[next(iter(self._kept))]
        return kept[1]

    def map(self, function: Callable, items: Sequence, *, shared: dict | None = None) -> list:
        ray = self._ray
        references = {name: self._put(value) for name, value in (shared or {}).items()}
        task = ray.remote(num_cpus=1)(_call)
        function_reference = ray.put(function)
        return ray.get([task.remote(function_reference, item, **references) for item in items])

    def predict_proba(self, model, inputs) -> np.ndarray:
        return np.concatenate(self.map(_predict_block, self._pool_blocks(len(inputs)),
                                       shared={"model": model, "inputs": inputs}))

    def embed(self, model, inputs) -> np.ndarray:
        return np.concatenate(self.map(_embed_block, self._pool_blocks(len(inputs)),
                                       shared={"model": model, "inputs": inputs}))

    def knn(self, queries, database, k: int, **options) -> tuple[np.ndarray, np.ndarray]:
        """The search split by blocks of queries, one task each, the database shipped once.

        Each query's neighbours depend only on that query and the database, so the
        result equals one search over all queries; ``method="auto"`` is resolved here,
        for the whole search, so every block uses the method one search would use."""
        queries = np.asarray(queries)
        rows = options.get("rows")
        n_searched = len(database) if rows is None else len(rows)
        options = {**options, "method": index.choose_method(len(queries), n_searched, options.get("method", "auto"))}
        results = self.map(_knn_block, _blocks(len(queries), self.parallelism),
                           shared={"queries": queries, "database": database, "k": k, "options": options})
        return np.concatenate([d for d, _ in results]), np.concatenate([i for _, i in results])

    def encode(self, encoder, inputs, *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """Encode blocks of the inputs on a pool of actors, each loading the encoder once.

        Texts are cut into blocks along their length order (so each block pads little),
        in multiples of the encoder's length-sorted chunks (``4 x batch_size``); arrays
        (images) into contiguous row blocks. Rows are written back in input order.
        No progress bar is shown (``progress`` is accepted for the Encoder interface)."""
        from ray.util import ActorPool

        batch_size = check_positive_int(batch_size, "batch_size")
        n = len(inputs)
        if n == 0:
            return encoder.encode(inputs, batch_size=batch_size, progress=False)
        n_actors = min(self.parallelism, math.ceil(n / batch_size))
        if isinstance(inputs, np.ndarray):
            order = np.arange(n)
            blocks = _blocks(n, n_actors * 4)
        else:
            inputs = list(inputs)
            order = np.argsort([len(text) for text in inputs], kind="stable")
            chunk = 4 * batch_size
            step = chunk * max(1, math.ceil(n / (n_actors * 4 * chunk)))
            blocks = [slice(start, min(start + step, n)) for start in range(0, n, step)]
        actor = self._ray.remote(num_cpus=1)(_EncoderWorker)
        encoder_reference = self._ray.put(encoder)
        actors = [actor.remote(encoder_reference) for _ in range(min(n_actors, len(blocks)))]
        try:
            pieces = list(ActorPool(actors).map(
                lambda worker, rows: worker.encode.remote(_take_rows(inputs, order[rows]), batch_size), blocks))
        finally:
            for worker in actors:
                self._ray.kill(worker)
        output = np.empty((n, pieces[0].shape[1]), dtype=np.float32)
        for rows, piece in zip(blocks, pieces):
            output[order[rows]] = piece
        return output

    def _pool_blocks(self, n_rows: int) -> list[slice]:
        return _blocks(n_rows, max(self.parallelism, math.ceil(n_rows / self.block_rows)))

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus!r}, block_rows={self.block_rows})"


class _EncoderWorker:
    """A Ray actor holding one encoder; its model loads on the first block and stays loaded."""

    def __init__(self, encoder):
        self.encoder = encoder

    def encode(self, inputs, batch_size: int) -> np.ndarray:
        return np.ascontiguousarray(self.encoder.encode(inputs, batch_size=batch_size, progress=False),
                                    dtype=np.float32)


def _check_listening(address: str, timeout: float = 5.0) -> None:
    """Raise ConnectionError unless something accepts TCP connections at ``[ray://]HOST:PORT``."""
    host, port = address.removeprefix("ray://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"nothing accepts connections at {host}:{port} ({exc})") from exc


def _call(function: Callable, item, **shared):
    return function(item, **shared)


def _take_rows(inputs, rows: np.ndarray):
    return inputs[rows] if isinstance(inputs, np.ndarray) else [inputs[row] for row in rows]


def _shareable(value: Any):
    """A memory-mapped array as a plain ndarray view (what the object store serialises)."""
    return np.asarray(value) if isinstance(value, np.memmap) else value


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ExecutionError(RAY_INSTALL_HINT) from exc
    return ray


EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(name: str = "local", **options) -> Executor:
    """Build the executor registered as ``name`` (``"local"`` or ``"ray"``) with ``options``
    (for ``"ray"``: ``address``, ``num_cpus``, ``block_rows``, ``runtime_env``)."""
    if not isinstance(name, str) or name not in EXECUTORS:
        raise unknown_name("executor", str(name), EXECUTORS)
    try:
        return EXECUTORS[name](**options)
    except TypeError as exc:
        raise ValidationError(f"invalid options for executor {name!r}: {exc}") from exc


def knn(queries, database, k: int, *, executor: Executor | None = None, **options):
    """``anchoral.index.knn`` through ``executor`` (split by blocks of queries), or here if ``None``."""
    if executor is None:
        return index.knn(queries, database, k, **options)
    return executor.knn(queries, database, k, **options)
