"""all-MiniLM-L6-v2's architecture and tokenizer with randomly initialised weights: the
"not pretrained" arm of Tamkin et al. §6.2 / Fig. 6 (same network, no pretraining).

The weights come from the Hugging Face model class's own initialiser (BERT's: normal
with std ``initializer_range``, zero biases, unit LayerNorm) seeded by ``seed``; the
pooling and normalisation are the pretrained encoder's (mean over tokens, L2), so the
two encoders differ only in their weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from anchoral.encoders.minilm import _forbid_hub_access, bundled_model_dir
from anchoral.encoders.base import check_texts
from anchoral.errors import ValidationError
from anchoral.progress import progress_bar
from anchoral.validation import check_positive_int


class RandomInitMiniLMEncoder:
    """Frozen, randomly initialised MiniLM-L6 (384-d, mean pooling, L2-normalised).

    Parameters
    ----------
    seed : int, default 0
        Seeds the weight initialisation (the same seed gives the same network).
    max_seq_length : int, default 128
    model_dir : path, optional
        Where the architecture (config.json) and tokenizer come from; the bundled checkpoint by default.
        Its weights are never loaded.
    """

    dimension = 384

    def __init__(self, seed: int = 0, *, max_seq_length: int = 128, model_dir: str | Path | None = None):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValidationError(f"seed must be a non-negative integer; got {seed!r}")
        self.seed = seed
        self.max_seq_length = check_positive_int(max_seq_length, "max_seq_length")
        self.model_dir = Path(model_dir) if model_dir is not None else bundled_model_dir()
        self._model = None
        self._tokenizer = None
        self.fingerprint = self._compute_fingerprint()

    def _compute_fingerprint(self) -> str:
        import torch
        import transformers

        digest = hashlib.sha256()
        for name in ("config.json", "tokenizer.json"):
            file = self.model_dir / name
            if file.exists():
                digest.update(file.read_bytes())
        digest.update(f"{self.seed}/{self.max_seq_length}/{transformers.__version__}/{torch.__version__}".encode())
        return f"minilm-l6-random-init-{digest.hexdigest()[:16]}"

    def _load(self):
        if self._model is None:
            _forbid_hub_access()
            import torch
            from transformers import AutoConfig, AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            config = AutoConfig.from_pretrained(str(self.model_dir), local_files_only=True)
            generator_state = torch.random.get_rng_state()
            torch.manual_seed(self.seed)
            try:
                self._model = AutoModel.from_config(config).eval()
            finally:
                torch.random.set_rng_state(generator_state)
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        return self._model, self._tokenizer

    def encode(self, inputs: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """Embed strings as float32 rows, in input order."""
        import torch

        texts = check_texts(inputs, "MiniLM")
        batch_size = check_positive_int(batch_size, "batch_size")
        output = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return output
        model, tokenizer = self._load()
        order = np.argsort([len(text) for text in texts], kind="stable")
        with progress_bar(progress) as bar, torch.inference_mode():
            task = bar.add_task("encoding with random-init MiniLM", total=len(texts))
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                  max_length=self.max_seq_length, return_tensors="pt")
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                output[rows] = pooled.numpy()
                bar.advance(task, len(rows))
        return output
