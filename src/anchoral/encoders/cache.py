"""On-disk embedding cache keyed by encoder fingerprint + content hash of the inputs.

Embeddings are stored as ``.npy`` float32 files and returned memory-mapped, so a
large pool's features cost page cache, not process memory. Files are written to a
temporary name and renamed into place: a crash never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from anchoral.encoders.base import Encoder


def content_hash(texts: Sequence[str]) -> str:
    """A hash of the ordered inputs (length-prefixed, so no two lists collide by concatenation)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:32]


def text_key(text: str) -> str:
    """The per-text cache key: a hash of one input."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    """Directory of cached embeddings: ``root/<fingerprint>/<content-hash>.npy`` for whole
    input lists, and ``root/<fingerprint>/texts/shard-*.npz`` for single texts (``encode_each``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path_for(self, fingerprint: str, texts: Sequence[str]) -> Path:
        return self.root / fingerprint / f"{content_hash(texts)}.npy"

    def encode(self, encoder: Encoder, texts: Sequence[str], *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """Return the embeddings of ``texts``, computing and storing them on a miss."""
        texts = list(texts)
        path = self.path_for(encoder.fingerprint, texts)
        if path.exists():
            cached = np.load(path, mmap_mode="r")
            if cached.shape == (len(texts), encoder.dimension) and cached.dtype == np.float32:
                return cached
        embeddings = np.ascontiguousarray(encoder.encode(texts, batch_size=batch_size, progress=progress), dtype=np.float32)
        _write_atomically(path, lambda file: np.save(file, embeddings), suffix=".npy.tmp")
        return np.load(path, mmap_mode="r")

    def encode_each(self, encoder: Encoder, texts: Sequence[str], *, batch_size: int = 64,
                    progress: bool = True) -> np.ndarray:
        """The embeddings of ``texts`` (a new float32 array), cached text by text: only texts this
        encoder never embedded are computed, so benchmarks drawn from one corpus share the work.

        A whole-list entry written by ``encode`` is used if present. New texts go to a new shard
        file written atomically, so concurrent writers never corrupt each other.
        """
        texts = list(texts)
        keys = [text_key(text) for text in texts]
        known = self._text_rows(encoder)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts):
            if key not in known and key not in missing:
                missing[key] = text
        whole = self.path_for(encoder.fingerprint, texts)
        if whole.exists():
            cached = np.load(whole, mmap_mode="r")
            if cached.shape == (len(texts), encoder.dimension) and cached.dtype == np.float32:
                if missing:  # file the list's rows text by text too, for other lists to reuse
                    first_row = {key: row for row, key in reversed(list(enumerate(keys)))}
                    self._add_shard(encoder, list(missing), np.asarray(cached)[[first_row[k] for k in missing]])
                return np.array(cached)
        if missing:
            vectors = np.ascontiguousarray(
                encoder.encode(list(missing.values()), batch_size=batch_size, progress=progress), dtype=np.float32)
            self._add_shard(encoder, list(missing), vectors)
            known.update(zip(missing, vectors))
        output = np.empty((len(texts), encoder.dimension), dtype=np.float32)
        for row, key in enumerate(keys):
            output[row] = known[key]
        return output

    def encode_array(self, encoder: Encoder, inputs: np.ndarray, *, batch_size: int = 64,
                     progress: bool = True) -> np.ndarray:
        """The embeddings of an input array (e.g. images), cached under a hash of its bytes."""
        inputs = np.ascontiguousarray(inputs)
        digest = hashlib.sha256(f"{inputs.dtype.str}{inputs.shape}".encode())
        digest.update(inputs.tobytes())
        path = self.root / encoder.fingerprint / f"array-{digest.hexdigest()[:32]}.npy"
        if path.exists():
            cached = np.load(path)
            if cached.shape == (inputs.shape[0], encoder.dimension) and cached.dtype == np.float32:
                return cached
        embeddings = np.ascontiguousarray(encoder.encode(inputs, batch_size=batch_size, progress=progress),
                                          dtype=np.float32)
        _write_atomically(path, lambda file: np.save(file, embeddings), suffix=".npy.tmp")
        return embeddings

    def _add_shard(self, encoder: Encoder, keys: list[str], vectors: np.ndarray) -> None:
        shard = self.root / encoder.fingerprint / "texts" / f"shard-{content_hash(keys)}.npz"
        stored_keys = np.array(keys, dtype="U32")
        _write_atomically(shard, lambda file: np.savez(file, keys=stored_keys, vectors=vectors), suffix=".npz.tmp")

    def _text_rows(self, encoder: Encoder) -> dict[str, np.ndarray]:
        rows: dict[str, np.ndarray] = {}
        for shard in sorted((self.root / encoder.fingerprint / "texts").glob("shard-*.npz")):
            with np.load(shard) as stored:
                vectors = stored["vectors"]
                if vectors.ndim != 2 or vectors.shape[1] != encoder.dimension:
                    continue
                rows.update(zip(stored["keys"].tolist(), vectors))
        return rows


def _write_atomically(path: Path, write, *, suffix: str) -> None:
    """Write a file under a temporary name in its directory, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp creates 0600; use the usual mode
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_cache() -> EmbeddingCache:
    from anchoral.data.archives import cache_dir

    return EmbeddingCache(cache_dir() / "embeddings")
