"""Cache of the token states a transformer's frozen lower layers give each text.

When only the top k layers of a transformer train (``FineTunedTransformer(train_layers=k)``),
the output of the layers below never changes: it is computed once per text and kept
here, so every epoch and every pool pass runs only the top layers.

Entries are keyed by the text's token ids (a hash of them), the way the embedding cache
(``anchoral.encoders.cache``) keys features by a hash of the text: a state is a pure
function of the ids and the frozen weights, so a tokenizer that splits a text differently,
or a different truncation length, gives a different key. A cache belongs to one
``fingerprint`` (frozen weights, config, tokenizer files, layer boundary, storage dtype,
numeric precision); nothing stored under another fingerprint is ever returned.

Each state is stored without padding: an array of shape (n_tokens, hidden_size). In memory
that is a dict of tensors; on disk (optional) ``root/<fingerprint>/shard-<hash>.npz`` files,
each holding the keys, the token counts, the states concatenated along the token axis and
the fingerprint they were computed under. Shards are written under a temporary name and
renamed into place (``encoders.cache``), so concurrent writers never corrupt each other; a
shard whose recorded fingerprint or shape does not match is skipped and counted.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from anchoral.encoders.cache import _write_atomically
from anchoral.errors import ValidationError

STATE_DTYPES = {"float16": np.float16, "float32": np.float32}
TOKENIZER_FILE_PREFIXES = ("tokenizer", "vocab", "merges", "special_tokens", "added_tokens", "spiece", "sentencepiece")


def token_key(token_ids: Sequence[int]) -> str:
    """The cache key of one tokenised text: a hash of its token ids."""
    return hashlib.sha256(np.asarray(token_ids, dtype=np.int64).tobytes()).hexdigest()[:32]


def tokenizer_digest(checkpoint: Path) -> str:
    """A hash of the checkpoint's tokenizer files (vocabulary, merges, configuration)."""
    digest = hashlib.sha256()
    for file in sorted(Path(checkpoint).iterdir()):
        if file.is_file() and file.name.startswith(TOKENIZER_FILE_PREFIXES):
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def tensors_digest(tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """A hash of named tensors' names, dtypes, shapes and bytes (in the order given)."""
    digest = hashlib.sha256()
    for name, tensor in tensors:
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def default_state_cache_dir() -> Path:
    """Where ``cache_dir="auto"`` keeps frozen states: ``frozen-states/`` in the anchoral cache."""
    from anchoral.data.archives import cache_dir

    return cache_dir() / "frozen-states"


def check_cache_dir(directory) -> Path:
    """``directory`` as a Path that exists and this process can write, or a one-line ValidationError."""
    if not isinstance(directory, (str, os.PathLike)):
        raise ValidationError(f"cache_dir must be a directory path, \"auto\" or None; got {directory!r}")
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=path, prefix=".write-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise ValidationError(
            f"cache_dir {str(path)!r} is not a writable directory ({type(exc).__name__}: {exc.strerror or exc}); "
            "pass a directory this process can write, or cache_dir=None to keep frozen states in memory only"
        ) from None
    return path


class FrozenStateCache:
    """Frozen lower-layer token states by token-id key, for one fingerprint.

    Parameters
    ----------
    fingerprint : str
        What the states were computed with (see the module docstring); part of every
        shard's path and recorded inside it.
    dtype : {"float16", "float32"}
        Storage dtype. float16 halves the memory (5,000 VADER sentences: about 95 MB instead
        of 190 MB for MiniLM); states are cast back to float32 for computing.
    directory : path or None
        Root of the on-disk cache; None keeps states in this process's memory only.

    ``stats`` counts, since construction: ``computed`` states, ``reused`` lookups served
    from the cache, ``from_disk`` states read from shards, ``rejected_shards`` shards
    skipped because their fingerprint or shape did not match (or they could not be read).
    """

    def __init__(self, fingerprint: str, dtype: str = "float16", directory: str | os.PathLike | None = None):
        if dtype not in STATE_DTYPES:
            raise ValidationError(f"cache_dtype must be one of {', '.join(STATE_DTYPES)}; got {dtype!r}")
        self.fingerprint = fingerprint
        self.dtype = dtype
        self.directory = None if directory is None else Path(directory) / fingerprint[:32]
        self._states: dict[str, torch.Tensor] = {}
        self._disk_read = False
        self.stats = {"computed": 0, "reused": 0, "from_disk": 0, "rejected_shards": 0}

    def __len__(self) -> int:
        return len(self._states)

    def states(self, token_ids: Sequence[Sequence[int]],
               compute: Callable[[list[Sequence[int]]], list[torch.Tensor]]) -> list[torch.Tensor]:
        """The cached state of each tokenised text, in input order; ``compute`` is called once
        with the token ids of the texts not cached yet and must return their states
        (each of shape (n_tokens, hidden_size)), which are then stored."""
        self._read_disk()
        keys = [token_key(ids) for ids in token_ids]
        missing: dict[str, Sequence[int]] = {}
        for key, ids in zip(keys, token_ids):
            if key not in self._states and key not in missing:
                missing[key] = ids
        self.stats["reused"] += len(keys) - sum(1 for key in keys if key in missing)
        if missing:
            computed = compute(list(missing.values()))
            stored = [state.detach().to("cpu", dtype=getattr(torch, self.dtype), copy=True) for state in computed]
            for (key, ids), state in zip(missing.items(), stored):
                if state.shape[0] != len(ids):
                    raise RuntimeError(f"a computed state has {state.shape[0]} rows for {len(ids)} tokens")
                self._states[key] = state
            self.stats["computed"] += len(stored)
            self._write_shard(list(missing), stored)
        return [self._states[key] for key in keys]

    def _write_shard(self, keys: list[str], states: list[torch.Tensor]) -> None:
        if self.directory is None:
            return
        lengths = np.array([state.shape[0] for state in states], dtype=np.int64)
        values = torch.cat(states).numpy()
        digest = hashlib.sha256("".join(keys).encode()).hexdigest()[:32]
        _write_atomically(
            self.directory / f"shard-{digest}.npz",
            lambda file: np.savez(file, keys=np.array(keys, dtype="U32"), lengths=lengths, states=values,
                                  fingerprint=np.array(self.fingerprint)),
            suffix=".npz.tmp",
        )

    def _read_disk(self) -> None:
        """Load every shard of this fingerprint once (lazily, on the first lookup)."""
        if self._disk_read or self.directory is None:
            return
        self._disk_read = True
        for shard in sorted(self.directory.glob("shard-*.npz")):
            try:
                with np.load(shard) as stored:
                    fingerprint, keys = str(stored["fingerprint"]), stored["keys"].tolist()
                    lengths, values = stored["lengths"], stored["states"]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                self.stats["rejected_shards"] += 1
                continue
            if (fingerprint != self.fingerprint or values.dtype != STATE_DTYPES[self.dtype] or values.ndim != 2
                    or len(keys) != lengths.size or int(lengths.sum()) != values.shape[0]):
                self.stats["rejected_shards"] += 1
                continue
            tensor = torch.from_numpy(values)
            for key, state in zip(keys, torch.split(tensor, lengths.tolist())):
                if key not in self._states:
                    self._states[key] = state
                    self.stats["from_disk"] += 1
