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


class EmbeddingCache:
    """Directory of cached embeddings: ``root/<fingerprint>/<content-hash>.npy``."""

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
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.save(file, embeddings)
            os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp creates 0600; use the usual mode
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return np.load(path, mmap_mode="r")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_cache() -> EmbeddingCache:
    from anchoral.data.archives import cache_dir

    return EmbeddingCache(cache_dir() / "embeddings")
