"""The papers' own setting: a pretrained transformer fully fine-tuned every round.

ALVIN §4 (Implementation Details) fine-tunes BERT-base with batch size 16, learning
rate 2e-5 and AdamW (epsilon 1e-8), and uses the final layer's CLS token as the
representation it interpolates. Tamkin et al. §2 restart every round from the
pretrained weights and stop without a validation set once the training loss falls to
0.1% of its starting value. ``FineTunedTransformer`` does both behind the same
``Model`` interface as the fast ``MLPHead``, but consumes texts
(``input_kind = "texts"``).

f_enc (``embed``) is the encoder's pooled final layer (CLS, or a masked mean); f_cls
(``proba_from_embedding``) is a linear layer + softmax of our own on top of it, so
``predict_proba(texts) == proba_from_embedding(embed(texts))``.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from anchoral.errors import ValidationError
from anchoral.models.base import STOP_EPOCH_CAP, STOP_LOSS_RATIO, FitReport
from anchoral.models.mlp import _torch_threads
from anchoral.progress import progress_bar
from anchoral.validation import check_features, check_labels, check_positive_int

POOLINGS = ("cls", "mean")
LENGTH_GROUP_BATCHES = 4
"""Training minibatches are drawn at random, then every run of this many batches is
sorted by length before it is cut, so each batch pads to a similar length. On VADER
sentences that pads 1.27x the real tokens instead of 1.9x for fully random batches,
while batch composition still changes every epoch (grouping all examples would fix it)."""


def check_texts(texts, name: str = "texts") -> list[str]:
    """Return ``texts`` as a non-empty list of strings, or raise naming ``name``."""
    if isinstance(texts, (str, bytes)):
        raise ValidationError(f"{name} must be a sequence of strings; got a single {type(texts).__name__} (wrap it in a list)")
    if isinstance(texts, np.ndarray) and texts.dtype.kind not in "OU":
        raise ValidationError(
            f"{name} must be a sequence of strings (this model fine-tunes a transformer on raw texts); "
            f"got a numeric array of shape {texts.shape} — pass the texts, not encoder features"
        )
    try:
        items = list(texts)
    except TypeError as exc:
        raise ValidationError(f"{name} must be a sequence of strings; got {type(texts).__name__}") from exc
    if not items:
        raise ValidationError(f"{name} is empty; expected at least one text")
    for position, item in enumerate(items):
        if not isinstance(item, str):
            raise ValidationError(f"{name} must contain only strings; item {position} is a {type(item).__name__}")
    return items


DEVICE_ENV = "ANCHORAL_DEVICE"


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> the device named by ``$ANCHORAL_DEVICE`` (what ``--device`` sets) if
    set, else CUDA when available, else CPU; otherwise the named device, checked."""
    if not isinstance(device, str):
        raise ValidationError(f"device must be 'auto', 'cpu' or 'cuda[:index]'; got {device!r}")
    if device == "auto":
        chosen = os.environ.get(DEVICE_ENV, "").strip()
        if chosen and chosen != "auto":
            return resolve_device(chosen)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise ValidationError(f"device must be 'auto', 'cpu' or 'cuda[:index]'; got {device!r}") from exc
    if chosen.type not in ("cpu", "cuda"):
        raise ValidationError(f"device must be 'auto', 'cpu' or 'cuda[:index]'; got {device!r}")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError(f"device={device!r} but PyTorch sees no CUDA GPU here; use device='cpu' or 'auto'")
    return chosen


def length_grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of training minibatches: a random permutation, sorted by length within
    each run of ``LENGTH_GROUP_BATCHES`` batches, cut into batches, in shuffled order."""
    permutation = rng.permutation(lengths.size)
    group = batch_size * LENGTH_GROUP_BATCHES
    batches = []
    for start in range(0, lengths.size, group):
        members = permutation[start : start + group]
        members = members[np.argsort(lengths[members], kind="stable")]
        batches.extend(members[cut : cut + batch_size] for cut in range(0, members.size, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


class FineTunedTransformer:
    """A Hugging Face BERT-family encoder plus a linear head, fully fine-tuned by ``fit``.

    Every ``fit`` reloads the pretrained encoder weights and the same seeded head
    (Tamkin et al. §2), trains all weights with AdamW at a constant learning rate, and
    stops when a minibatch loss falls below ``stop_loss_ratio`` x the fit's first
    minibatch loss, or at ``max_epochs``. After each epoch one pass in eval mode over
    the training texts records which are predicted correctly (ALVIN §3.1).

    Parameters
    ----------
    n_classes : int
        Number of classes (>= 2).
    seed : int, default 0
        Fixes the head's initial weights, the minibatch order and dropout; the same
        seed and data give the same fitted model on the same device and thread count.
    checkpoint : path, optional
        A local Hugging Face checkpoint directory (``config.json``, weights, tokenizer) of a
        BERT-family encoder; default: the bundled all-MiniLM-L6-v2 (``bundled_model_dir()``).
        Nothing is fetched from a model hub.
    learning_rate : float, default 2e-5 (ALVIN §4)
    batch_size : int, default 16 (ALVIN §4)
    adam_epsilon : float, default 1e-8 (ALVIN §4)
    weight_decay : float, default 0.0 (AdamW's decoupled decay; the papers state none)
    max_epochs : int, default 20
        Hard cap next to the stopping rule (Tamkin §2 asks for one; neither paper gives an
        epoch count). Measured with MiniLM on 100 VADER sentences: at learning rate 2e-5 the
        loss falls to ~1% of its start in 20 epochs and the cap ends the fit; at 1e-4 the
        rule fires after 14-16 epochs (docs/finetune.md).
    stop_loss_ratio : float, default 1e-3
        Tamkin §2: stop once a minibatch loss < ``stop_loss_ratio`` x the first minibatch
        loss of this fit. ``0`` disables the rule (train to ``max_epochs``).
    max_grad_norm : float or None, default 1.0
        Gradient-norm clipping, as in the BERT and Hugging Face fine-tuning recipes; None disables.
    max_length : int, default 128
        Texts are truncated to this many word pieces.
    pooling : {"cls", "mean"}, default "cls"
        f_enc: the final layer's CLS vector (ALVIN's choice) or the attention-masked mean.
    dropout : float or None, default None
        Dropout on the pooled representation while training; None takes the checkpoint's
        ``classifier_dropout`` or ``hidden_dropout_prob`` (as BertForSequenceClassification does).
    device : str, default "auto"
        "auto" = CUDA when available, else CPU; or "cpu", "cuda", "cuda:1".
    mixed_precision : bool, default True
        On CUDA, run the encoder under autocast (bfloat16 where supported, else float16 with
        loss scaling). Ignored on CPU, which always trains in float32.
    eval_batch_size : int, default 64
        Batch size of inference (``embed`` / ``predict_proba`` and the per-epoch pass).
    num_threads : int or None, default None
        CPU intra-op threads during fit and inference; None = torch's own setting (one per
        core unless the process changed it; ``anchoral run --jobs N`` workers use one each).
        On the idle 2-core build machine a round of 100 labels took 9.1 s on two threads and
        14.9 s on one (``benchmarks/finetune_speed.py --sizes 100 --pool 500 --max-epochs 3``).
    progress : bool, default True
        Show transient progress bars for fitting and inference.
    """

    input_kind = "texts"

    def __init__(
        self,
        n_classes: int,
        *,
        seed: int = 0,
        checkpoint: str | os.PathLike | None = None,
        learning_rate: float = 2e-5,
        batch_size: int = 16,
        adam_epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        max_epochs: int = 20,
        stop_loss_ratio: float = 1e-3,
        max_grad_norm: float | None = 1.0,
        max_length: int = 128,
        pooling: str = "cls",
        dropout: float | None = None,
        device: str = "auto",
        mixed_precision: bool = True,
        eval_batch_size: int = 64,
        num_threads: int | None = None,
        progress: bool = True,
    ):
        self.n_classes = check_positive_int(n_classes, "n_classes")
        if self.n_classes < 2:
            raise ValidationError(f"n_classes must be at least 2; got {n_classes}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValidationError(f"seed must be an integer; got {seed!r}")
        self.seed = int(seed)
        self.checkpoint = self._check_checkpoint(checkpoint)
        self.learning_rate = _positive_float(learning_rate, "learning_rate")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.adam_epsilon = _positive_float(adam_epsilon, "adam_epsilon")
        if not _is_number(weight_decay) or weight_decay < 0:
            raise ValidationError(f"weight_decay must be a non-negative number; got {weight_decay!r}")
        self.weight_decay = float(weight_decay)
        self.max_epochs = check_positive_int(max_epochs, "max_epochs")
        if not _is_number(stop_loss_ratio) or not 0 <= stop_loss_ratio < 1:
            raise ValidationError(f"stop_loss_ratio must be in [0, 1); got {stop_loss_ratio!r}")
        self.stop_loss_ratio = float(stop_loss_ratio)
        self.max_grad_norm = None if max_grad_norm is None else _positive_float(max_grad_norm, "max_grad_norm")
        self.max_length = check_positive_int(max_length, "max_length")
        if pooling not in POOLINGS:
            raise ValidationError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
        self.pooling = pooling
        if dropout is not None and (not _is_number(dropout) or not 0 <= dropout < 1):
            raise ValidationError(f"dropout must be None or in [0, 1); got {dropout!r}")
        self.dropout = None if dropout is None else float(dropout)
        self.device = resolve_device(device)
        self.mixed_precision = bool(mixed_precision)
        self.eval_batch_size = check_positive_int(eval_batch_size, "eval_batch_size")
        self.num_threads = None if num_threads is None else check_positive_int(num_threads, "num_threads")
        self.progress = bool(progress)

        self.tokenizer_ = None
        self.encoder_ = None
        self.classifier_ = None
        self.head_dropout_ = None
        self.pretrained_state_ = None
        self.initial_classifier_state_ = None
        self.fitted_ = False
        self._last_pass = None  # (texts, representations) of the latest inference pass since the last fit

    # -- construction ------------------------------------------------------------
    @staticmethod
    def _check_checkpoint(checkpoint) -> Path:
        if checkpoint is None:
            from anchoral.encoders.minilm import bundled_model_dir

            return bundled_model_dir()
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise ValidationError(f"checkpoint must be a path to a local checkpoint directory; got {checkpoint!r}")
        path = Path(checkpoint)
        if not (path / "config.json").is_file():
            raise ValidationError(
                f"checkpoint must be a local Hugging Face checkpoint directory containing config.json; "
                f"{str(path)!r} is not one (models are never downloaded: save one with save_pretrained first)"
            )
        return path

    @property
    def hidden_size(self) -> int:
        """Width of the representation f_enc (loads the checkpoint's config if needed)."""
        self._load()
        return int(self.encoder_.config.hidden_size)

    def _load(self) -> None:
        """Load tokenizer and encoder from the local checkpoint and build the seeded head, once."""
        if self.encoder_ is not None:
            return
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.tokenizer_ = AutoTokenizer.from_pretrained(str(self.checkpoint), local_files_only=True)
        encoder = AutoModel.from_pretrained(str(self.checkpoint), local_files_only=True)
        config = encoder.config
        self.pretrained_state_ = {key: value.detach().clone() for key, value in encoder.state_dict().items()}
        self.encoder_ = encoder.to(self.device)

        classifier = nn.Linear(config.hidden_size, self.n_classes)
        generator = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():  # BERT's own initialisation: N(0, initializer_range), zero bias
            nn.init.normal_(classifier.weight, std=getattr(config, "initializer_range", 0.02), generator=generator)
            classifier.bias.zero_()
        self.initial_classifier_state_ = {key: value.clone() for key, value in classifier.state_dict().items()}
        self.classifier_ = classifier.to(self.device)
        rate = self.dropout
        if rate is None:
            rate = getattr(config, "classifier_dropout", None)
        if rate is None:
            rate = getattr(config, "hidden_dropout_prob", 0.1)
        self.head_dropout_ = nn.Dropout(float(rate))
        self.pad_token_id_ = self.tokenizer_.pad_token_id if self.tokenizer_.pad_token_id is not None else 0

    def _reset_weights(self) -> None:
        self.encoder_.load_state_dict(self.pretrained_state_)
        self.classifier_.load_state_dict(self.initial_classifier_state_)

    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise ValidationError("this FineTunedTransformer is not fitted yet; call fit(texts, labels) first")

    # -- batching ----------------------------------------------------------------
    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer_(
            texts, truncation=True, max_length=self.max_length,
            return_attention_mask=False, return_token_type_ids=False,
        )["input_ids"]

    def _collate(self, token_ids: list[list[int]], rows) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad ``rows`` to the longest among them (dynamic padding): input ids and attention mask."""
        width = max(len(token_ids[i]) for i in rows)
        ids = np.full((len(rows), width), self.pad_token_id_, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for position, i in enumerate(rows):
            ids[position, : len(token_ids[i])] = token_ids[i]
            mask[position, : len(token_ids[i])] = 1
        return torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device)

    def _autocast(self):
        if self.device.type != "cuda" or not self.mixed_precision:
            return nullcontext()
        return torch.autocast("cuda", dtype=self._amp_dtype())

    def _amp_dtype(self) -> torch.dtype:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _threads(self):
        if self.num_threads is None or self.device.type != "cpu":
            return nullcontext()
        return _torch_threads(self.num_threads)

    def _pool(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """f_enc in float32: the final layer's CLS vector or its attention-masked mean."""
        with self._autocast():
            hidden = self.encoder_(input_ids=ids, attention_mask=mask).last_hidden_state
        hidden = hidden.float()
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def _representations(self, token_ids: list[list[int]], description: str) -> torch.Tensor:
        """f_enc of every tokenised text, in input order, on the model's device, in eval mode."""
        self.encoder_.eval()
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        order = np.argsort(lengths, kind="stable")  # similar lengths share a batch: little padding
        output = torch.empty((len(token_ids), self.encoder_.config.hidden_size), device=self.device)
        with torch.inference_mode(), progress_bar(self.progress, transient=True) as bar:
            task = bar.add_task(description, total=len(token_ids))
            for start in range(0, len(token_ids), self.eval_batch_size):
                rows = order[start : start + self.eval_batch_size]
                output[torch.from_numpy(rows).to(self.device)] = self._pool(*self._collate(token_ids, rows))
                bar.advance(task, len(rows))
        return output

    # -- training ----------------------------------------------------------------
    def fit(self, texts, labels) -> FitReport:
        """Fine-tune from the pretrained weights on (texts, labels) until the stop rule or the cap."""
        started = time.perf_counter()
        texts = check_texts(texts, "texts")
        labels = check_labels(labels, len(texts), "labels")
        if labels.max() >= self.n_classes:
            raise ValidationError(f"labels must be class ids in [0, {self.n_classes}); got {labels.max()}")
        self._load()
        fork_devices = [self.device] if self.device.type == "cuda" else []
        with self._threads(), torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(self.seed)  # dropout masks; restored on exit
            report = self._fit(texts, labels, started)
        return report

    def _fit(self, texts: list[str], labels: np.ndarray, started: float) -> FitReport:
        self._reset_weights()
        self._last_pass = None
        self.fitted_ = False
        token_ids = self._tokenize(texts)
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        targets = torch.from_numpy(np.array(labels, dtype=np.int64)).to(self.device)
        parameters = [*self.encoder_.parameters(), *self.classifier_.parameters()]
        optimizer = torch.optim.AdamW(
            parameters, lr=self.learning_rate, eps=self.adam_epsilon, weight_decay=self.weight_decay,
            fused=True,  # one kernel for all tensors: 0.05-0.08 s a step on CPU instead of 0.3-0.4 s for MiniLM
        )
        scaler = torch.amp.GradScaler(
            "cuda", enabled=self.device.type == "cuda" and self.mixed_precision and self._amp_dtype() == torch.float16
        )
        loss_function = nn.CrossEntropyLoss()
        order_rng = np.random.default_rng(self.seed)
        n_batches = -(-len(texts) // self.batch_size)

        epoch_losses: list[float] = []
        correctness: list[np.ndarray] = []
        first_loss = final_loss = float("nan")
        stop_reason = STOP_EPOCH_CAP
        steps = epoch = 0
        with progress_bar(self.progress, transient=True) as bar:
            task = bar.add_task("fine-tuning", total=self.max_epochs * n_batches)
            while epoch < self.max_epochs and stop_reason != STOP_LOSS_RATIO:
                epoch += 1
                bar.update(task, description=f"fine-tuning, epoch {epoch}")
                self.encoder_.train()
                self.head_dropout_.train()
                batch_losses = []
                for rows in length_grouped_batches(lengths, self.batch_size, order_rng):
                    pooled = self._pool(*self._collate(token_ids, rows))
                    logits = self.classifier_(self.head_dropout_(pooled))
                    loss = loss_function(logits, targets[torch.from_numpy(rows).to(self.device)])
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if self.max_grad_norm is not None:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(parameters, self.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    steps += 1
                    bar.advance(task)
                    final_loss = float(loss.detach())
                    if steps == 1:
                        first_loss = final_loss
                    batch_losses.append(final_loss)
                    if self.stop_loss_ratio > 0 and final_loss < self.stop_loss_ratio * first_loss:
                        stop_reason = STOP_LOSS_RATIO
                        break
                epoch_losses.append(float(np.mean(batch_losses)))
                self.head_dropout_.eval()
                with torch.inference_mode():
                    predicted = self.classifier_(self._representations(token_ids, "scoring training texts")).argmax(dim=1)
                correctness.append((predicted == targets).cpu().numpy())
        self.encoder_.eval()
        self.fitted_ = True
        return FitReport(
            epoch_losses=tuple(epoch_losses),
            first_loss=first_loss,
            final_loss=final_loss,
            correctness=np.stack(correctness),
            stop_reason=stop_reason,
            epochs=epoch,
            steps=steps,
            seconds=time.perf_counter() - started,
            extra={"device": str(self.device), "checkpoint": str(self.checkpoint)},
        )

    # -- inference ---------------------------------------------------------------
    def _embed_tensor(self, texts: list[str]) -> torch.Tensor:
        """f_enc of ``texts``; the latest pass since the last fit is reused when the texts repeat,
        so a strategy reading both ``pool_probabilities`` and ``pool_embeddings`` encodes the pool once."""
        if self._last_pass is not None and self._last_pass[0] == texts:
            return self._last_pass[1]
        with self._threads():
            representations = self._representations(self._tokenize(texts), "encoding texts")
        self._last_pass = (texts, representations)
        return representations

    def embed(self, texts) -> np.ndarray:
        """f_enc: the fine-tuned final-layer CLS (or mean) vector of each text, shape (n, hidden_size)."""
        self._check_fitted()
        return self._embed_tensor(check_texts(texts, "texts")).cpu().numpy().copy()

    def _probabilities(self, representations: torch.Tensor) -> np.ndarray:
        with self._threads(), torch.inference_mode():
            return torch.softmax(self.classifier_(representations), dim=1).cpu().numpy()

    def proba_from_embedding(self, embeddings) -> np.ndarray:
        """f_cls: softmax of the linear head applied to representations from ``embed``."""
        self._check_fitted()
        embeddings = check_features(embeddings, "embeddings")
        if embeddings.shape[1] != self.hidden_size:
            raise ValidationError(f"embeddings must have {self.hidden_size} columns; got {embeddings.shape[1]}")
        return self._probabilities(torch.from_numpy(embeddings).to(self.device))

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities of ``texts``, shape (n, n_classes), in input order."""
        self._check_fitted()
        return self._probabilities(self._embed_tensor(check_texts(texts, "texts")))

    def predict(self, texts) -> np.ndarray:
        return self.predict_proba(texts).argmax(axis=1)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and np.isfinite(value)


def _positive_float(value, name: str) -> float:
    if not _is_number(value) or value <= 0:
        raise ValidationError(f"{name} must be a positive number; got {value!r}")
    return float(value)
