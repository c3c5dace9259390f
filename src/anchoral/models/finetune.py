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

Cheaper options that are still fine-tuning (docs/finetune.md measures each against full
fine-tuning): ``train_layers=k`` trains only the top k layers and the head, with the
frozen lower layers' token states computed once per text and cached (``frozen_states``),
so every epoch and every pool pass runs only the top layers (``bert_layers``);
``lp_ft=True`` fits the head on frozen features first, then fine-tunes from there
(LP-FT, Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution", §4).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from anchoral.errors import ValidationError
from anchoral.models.base import STOP_EPOCH_CAP, STOP_LOSS_RATIO, FitReport
from anchoral.models.bert_layers import check_layered, lower_states, top_states
from anchoral.models.frozen_states import (STATE_DTYPES, FrozenStateCache, check_cache_dir, default_state_cache_dir,
                                           tensors_digest, tokenizer_digest)
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
        14.9 s on one (``benchmarks/finetune_speed.py --sizes 100 --pool 500 --max-epochs 3 --options full``).
    progress : bool, default True
        Show transient progress bars for fitting and inference.
    train_layers : int or None, default None
        None: full fine-tuning (every weight, embeddings included). k: train only the top k
        transformer layers and the head; the embeddings and the lower layers stay at their
        pretrained weights, run in eval mode (no dropout) and get no gradient, so their token
        states are computed once per text and cached (``cache_states``). 0 trains the head
        alone on frozen features (a linear probe). Must be from 0 to the checkpoint's
        ``num_hidden_layers``; needs a BERT-layout encoder (``bert_layers``).
    lp_ft : bool, default False
        LP-FT (Kumar et al. 2022, §4): before fine-tuning, fit the head alone on the frozen
        pretrained representation (the first phase is exactly a ``train_layers=0`` fit with
        ``lp_epochs`` and ``lp_learning_rate``), then fine-tune everything trainable from that
        head. The FitReport describes the second phase; ``extra`` records the first.
    lp_epochs : int, default 100
        Epoch cap of the head-only first phase of LP-FT (it runs on features computed once, so
        an epoch costs milliseconds).
    lp_learning_rate : float, default 1e-3
        Learning rate of the head-only first phase of LP-FT.
    cache_states : bool, default True
        With ``train_layers``: keep the frozen lower layers' token states per text (in memory,
        and in ``cache_dir`` if given) and reuse them in every epoch, fit and pool pass. False
        recomputes them with the whole model's forward pass at every step (the reference the
        cache is tested against; several times slower).
    cache_dir : path, "auto" or None, default None
        Also keep the frozen states on disk under ``cache_dir/<fingerprint>/``, shared by
        processes and runs with the same checkpoint, tokenizer, ``train_layers`` and precision;
        must be writable. ``"auto"``: ``frozen-states/`` in the anchoral cache (``$ANCHORAL_CACHE``,
        else the user cache directory, next to the embedding cache); a labeling project whose
        model has ``train_layers`` uses it unless told otherwise, so its rounds, which each build
        a new model, reuse the pool's states. None: memory only (a model instance keeps them
        across its fits).
    cache_dtype : {"float16", "float32"}, default "float16"
        Storage dtype of the cached states (computing is float32 on CPU). float16 halves the
        memory (5,000 VADER sentences: about 95 MB for MiniLM); after a 3-epoch top-2 fit on 200
        sentences, probabilities differed from float32 storage by at most 4e-5 (docs/finetune.md;
        the tests allow 1e-3).
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
        train_layers: int | None = None,
        lp_ft: bool = False,
        lp_epochs: int = 100,
        lp_learning_rate: float = 1e-3,
        cache_states: bool = True,
        cache_dir: str | os.PathLike | None = None,
        cache_dtype: str = "float16",
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
        self.train_layers = self._check_train_layers(train_layers)
        self.lp_ft = bool(lp_ft)
        if self.lp_ft and self.train_layers == 0:
            raise ValidationError("lp_ft=True needs layers to fine-tune after the linear probe; with train_layers=0 "
                                  "the model is the linear probe alone (set lp_ft=False or train_layers >= 1)")
        self.lp_epochs = check_positive_int(lp_epochs, "lp_epochs")
        self.lp_learning_rate = _positive_float(lp_learning_rate, "lp_learning_rate")
        self.cache_states = bool(cache_states)
        if cache_dtype not in STATE_DTYPES:
            raise ValidationError(f"cache_dtype must be one of {', '.join(STATE_DTYPES)}; got {cache_dtype!r}")
        self.cache_dtype = cache_dtype
        if cache_dir is not None and (self.train_layers is None or not self.cache_states):
            raise ValidationError("cache_dir keeps the frozen layers' states, so it needs train_layers set and "
                                  "cache_states=True (full fine-tuning trains every layer: nothing stays frozen)")
        if cache_dir == "auto":
            cache_dir = default_state_cache_dir()
        self.cache_dir = None if cache_dir is None else check_cache_dir(cache_dir)

        self.tokenizer_ = None
        self.encoder_ = None
        self.classifier_ = None
        self.head_dropout_ = None
        self.pretrained_state_ = None
        self.initial_classifier_state_ = None
        self.fitted_ = False
        self.boundary_ = None  # index of the first trained layer (train_layers set)
        self.frozen_states_ = None  # FrozenStateCache of the frozen lower layers' token states
        self.lp_head_state_ = None  # the head after LP-FT's first phase
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

    def _check_train_layers(self, train_layers) -> int | None:
        """None, or an integer from 0 to the checkpoint's layer count (read from its config.json)."""
        if train_layers is None:
            return None
        n_layers = json.loads((self.checkpoint / "config.json").read_text()).get("num_hidden_layers")
        expected = "an integer from 0" + (f" to {n_layers} (the checkpoint's num_hidden_layers)" if n_layers else "")
        if (isinstance(train_layers, bool) or not isinstance(train_layers, (int, np.integer)) or train_layers < 0
                or (n_layers is not None and train_layers > n_layers)):
            raise ValidationError(f"train_layers must be None (full fine-tuning) or {expected}; got {train_layers!r}")
        return int(train_layers)

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
        if self.train_layers is not None:
            self._freeze_lower_layers()

    def _freeze_lower_layers(self) -> None:
        """Set ``boundary_``, switch off gradients below it, and open the frozen-state cache."""
        n_layers = check_layered(self.encoder_)
        if self.train_layers > n_layers:
            raise ValidationError(f"train_layers must be from 0 to {n_layers} (the checkpoint's layer count); "
                                  f"got {self.train_layers}")
        self.boundary_ = n_layers - self.train_layers
        self.encoder_.requires_grad_(False)
        for layer in self._trained_layers():
            layer.requires_grad_(True)
        if self.cache_states:
            self.frozen_states_ = FrozenStateCache(self._frozen_fingerprint(), self.cache_dtype, self.cache_dir)

    def _trained_layers(self) -> list[nn.Module]:
        return list(self.encoder_.encoder.layer[self.boundary_ :])

    def _frozen_fingerprint(self) -> str:
        """What the frozen states depend on: the pretrained weights of the embeddings and the layers
        below the boundary, the model configuration, the tokenizer files, where the boundary lies,
        the storage dtype and the numeric precision of the device."""
        frozen = ("embeddings.", *(f"encoder.layer.{index}." for index in range(self.boundary_)))
        weights = tensors_digest((name, tensor) for name, tensor in sorted(self.pretrained_state_.items())
                                 if name.startswith(frozen))
        precision = str(self._amp_dtype()).removeprefix("torch.") if self._autocasting() else "float32"
        config = {key: value for key, value in self.encoder_.config.to_dict().items() if key != "_name_or_path"}
        description = json.dumps({
            "config": config, "tokenizer": tokenizer_digest(self.checkpoint),
            "weights": weights, "boundary": self.boundary_, "dtype": self.cache_dtype, "precision": precision,
        }, sort_keys=True, default=str)
        return "frozen-" + hashlib.sha256(description.encode()).hexdigest()

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

    def _collate_states(self, states: list[torch.Tensor], rows) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad the cached frozen states of ``rows`` (stored without padding) to the longest among
        them: float32 states and the attention mask."""
        width = max(states[i].shape[0] for i in rows)
        hidden = torch.zeros((len(rows), width, states[rows[0]].shape[1]), dtype=torch.float32)
        mask = torch.zeros((len(rows), width), dtype=torch.int64)
        for position, i in enumerate(rows):
            hidden[position, : states[i].shape[0]] = states[i]
            mask[position, : states[i].shape[0]] = 1
        return hidden.to(self.device), mask.to(self.device)

    def _autocasting(self) -> bool:
        return self.device.type == "cuda" and self.mixed_precision

    def _autocast(self):
        return torch.autocast("cuda", dtype=self._amp_dtype()) if self._autocasting() else nullcontext()

    def _amp_dtype(self) -> torch.dtype:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _threads(self):
        if self.num_threads is None or self.device.type != "cpu":
            return nullcontext()
        return _torch_threads(self.num_threads)

    def _pooled(self, token_ids: list[list[int]], rows, states: list[torch.Tensor] | None) -> torch.Tensor:
        """f_enc in float32 of ``rows``: the final layer's CLS vector or its attention-masked mean,
        from the top layers over the cached frozen ``states``, or from the whole encoder if None."""
        if states is None:
            ids, mask = self._collate(token_ids, rows)
            with self._autocast():
                hidden = self.encoder_(input_ids=ids, attention_mask=mask).last_hidden_state
        else:
            frozen, mask = self._collate_states(states, rows)
            with self._autocast():
                hidden = top_states(self.encoder_, frozen, mask, self.boundary_, cls_only=self.pooling == "cls")
        hidden = hidden.float()
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def _representations(self, token_ids: list[list[int]], description: str,
                         states: list[torch.Tensor] | None) -> torch.Tensor:
        """f_enc of every tokenised text, in input order, on the model's device, in eval mode."""
        self.encoder_.eval()
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        order = np.argsort(lengths, kind="stable")  # similar lengths share a batch: little padding
        output = torch.empty((len(token_ids), self.encoder_.config.hidden_size), device=self.device)
        with torch.inference_mode(), progress_bar(self.progress, transient=True) as bar:
            task = bar.add_task(description, total=len(token_ids))
            for start in range(0, len(token_ids), self.eval_batch_size):
                rows = order[start : start + self.eval_batch_size]
                output[torch.from_numpy(rows).to(self.device)] = self._pooled(token_ids, rows, states)
                bar.advance(task, len(rows))
        return output

    # -- frozen lower layers ------------------------------------------------------
    def _frozen_states(self, token_ids: list[list[int]]) -> list[torch.Tensor] | None:
        """The cached frozen lower-layer states of each text (the missing ones computed now), or
        None when there is no cache (full fine-tuning, or ``cache_states=False``)."""
        if self.frozen_states_ is None:
            return None
        return self.frozen_states_.states(token_ids, self._compute_frozen_states)

    def _compute_frozen_states(self, token_ids: list[list[int]]) -> list[torch.Tensor]:
        """Token states after the embeddings and the frozen layers, one (n_tokens, hidden) tensor per text."""
        self.encoder_.eval()
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        order = np.argsort(lengths, kind="stable")
        states: list[torch.Tensor] = [None] * len(token_ids)
        with torch.no_grad(), progress_bar(self.progress, transient=True) as bar:
            task = bar.add_task("caching the frozen layers' states", total=len(token_ids))
            for start in range(0, len(token_ids), self.eval_batch_size):
                rows = order[start : start + self.eval_batch_size]
                with self._autocast():
                    hidden = lower_states(self.encoder_, *self._collate(token_ids, rows), self.boundary_)
                hidden = hidden.float().cpu()
                for position, i in enumerate(rows):
                    states[i] = hidden[position, : lengths[i]]
                bar.advance(task, len(rows))
        return states

    def cache_frozen_states(self, texts) -> int:
        """Compute and keep the frozen lower layers' token states of ``texts`` now (e.g. a pool
        before its first round, so no round pays for it); returns how many were computed."""
        if self.train_layers is None or not self.cache_states:
            raise ValidationError("cache_frozen_states needs train_layers set and cache_states=True "
                                  "(full fine-tuning has no frozen layers)")
        texts = check_texts(texts, "texts")
        self._load()
        before = self.frozen_states_.stats["computed"]
        with self._threads():
            self._frozen_states(self._tokenize(texts))
        return self.frozen_states_.stats["computed"] - before

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
        self.lp_head_state_ = None
        token_ids = self._tokenize(texts)
        targets = torch.from_numpy(np.array(labels, dtype=np.int64)).to(self.device)
        counts_before = dict(self.frozen_states_.stats) if self.frozen_states_ is not None else {}
        states = self._frozen_states(token_ids)
        extra = {"device": str(self.device), "checkpoint": str(self.checkpoint), "train_layers": self.train_layers,
                 "lp_ft": self.lp_ft}
        if self.train_layers == 0 or self.lp_ft:
            features = self._representations(token_ids, "encoding training texts", states)
            if self.lp_ft:
                phase = self._fit_head(features, targets, self.lp_epochs, self.lp_learning_rate)
            else:
                phase = self._fit_head(features, targets, self.max_epochs, self.learning_rate)
        if self.lp_ft:
            self.lp_head_state_ = {key: value.detach().clone() for key, value in self.classifier_.state_dict().items()}
            extra.update(lp_epochs=phase.epochs, lp_steps=phase.steps, lp_first_loss=phase.first_loss,
                         lp_final_loss=phase.final_loss, lp_stop_reason=phase.stop_reason,
                         lp_correct=float(phase.correctness[-1].mean()))
        if self.train_layers != 0:
            phase = self._fine_tune(token_ids, targets, states)
        if self.frozen_states_ is not None:
            extra["frozen_states"] = {key: count - counts_before[key] for key, count in self.frozen_states_.stats.items()}
        self.encoder_.eval()
        self.fitted_ = True
        return FitReport(
            epoch_losses=tuple(phase.epoch_losses),
            first_loss=phase.first_loss,
            final_loss=phase.final_loss,
            correctness=np.stack(phase.correctness),
            stop_reason=phase.stop_reason,
            epochs=phase.epochs,
            steps=phase.steps,
            seconds=time.perf_counter() - started,
            extra=extra,
        )

    def _train_mode(self) -> None:
        """Dropout on where weights train; the frozen lower layers stay in eval mode."""
        if self.train_layers is None:
            self.encoder_.train()
            return
        self.encoder_.eval()
        for layer in self._trained_layers():
            layer.train()

    def _fine_tune(self, token_ids: list[list[int]], targets: torch.Tensor,
                   states: list[torch.Tensor] | None) -> _Phase:
        """Train the encoder's trainable layers and the head on the texts (length-grouped, dynamically
        padded batches); the top layers run over the cached frozen ``states`` when given."""
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        if self.train_layers is None:
            trained = list(self.encoder_.parameters())
        else:
            trained = [parameter for layer in self._trained_layers() for parameter in layer.parameters()]
        return self._train(
            [*trained, *self.classifier_.parameters()], self.learning_rate, self.max_epochs, targets, "fine-tuning",
            batches=lambda rng: length_grouped_batches(lengths, self.batch_size, rng),
            logits=lambda rows: self.classifier_(self.head_dropout_(self._pooled(token_ids, rows, states))),
            all_logits=lambda: self.classifier_(self._representations(token_ids, "scoring training texts", states)),
            train_mode=self._train_mode,
        )

    def _fit_head(self, features: torch.Tensor, targets: torch.Tensor, max_epochs: int,
                  learning_rate: float) -> _Phase:
        """Train the head alone on fixed representations: the ``train_layers=0`` fit and LP-FT's
        first phase (a linear probe: Kumar et al. 2022, §4)."""
        n_texts = features.shape[0]

        def batches(rng: np.random.Generator) -> list[np.ndarray]:
            permutation = rng.permutation(n_texts)
            return [permutation[start : start + self.batch_size] for start in range(0, n_texts, self.batch_size)]

        def logits(rows: np.ndarray) -> torch.Tensor:
            return self.classifier_(self.head_dropout_(features[torch.from_numpy(rows).to(self.device)]))

        return self._train(list(self.classifier_.parameters()), learning_rate, max_epochs, targets, "fitting the head",
                           batches=batches, logits=logits, all_logits=lambda: self.classifier_(features),
                           train_mode=lambda: None)

    def _train(self, parameters: list[nn.Parameter], learning_rate: float, max_epochs: int, targets: torch.Tensor,
               description: str, *, batches: Callable[[np.random.Generator], list[np.ndarray]],
               logits: Callable[[np.ndarray], torch.Tensor], all_logits: Callable[[], torch.Tensor],
               train_mode: Callable[[], None]) -> _Phase:
        """AdamW at a constant learning rate on minibatches from ``batches`` until Tamkin's rule or
        ``max_epochs``; after every epoch, which training examples ``all_logits`` gets right."""
        optimizer = torch.optim.AdamW(
            parameters, lr=learning_rate, eps=self.adam_epsilon, weight_decay=self.weight_decay,
            fused=True,  # one kernel for all tensors: 0.05-0.08 s a step on CPU instead of 0.3-0.4 s for MiniLM
        )
        scaler = torch.amp.GradScaler("cuda", enabled=self._autocasting() and self._amp_dtype() == torch.float16)
        loss_function = nn.CrossEntropyLoss()
        order_rng = np.random.default_rng(self.seed)
        n_batches = -(-targets.shape[0] // self.batch_size)
        phase = _Phase()
        with progress_bar(self.progress, transient=True) as bar:
            task = bar.add_task(description, total=max_epochs * n_batches)
            while phase.epochs < max_epochs and phase.stop_reason != STOP_LOSS_RATIO:
                phase.epochs += 1
                bar.update(task, description=f"{description}, epoch {phase.epochs}")
                train_mode()
                self.head_dropout_.train()
                batch_losses = []
                for rows in batches(order_rng):
                    loss = loss_function(logits(rows), targets[torch.from_numpy(rows).to(self.device)])
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if self.max_grad_norm is not None:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(parameters, self.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    phase.steps += 1
                    bar.advance(task)
                    phase.final_loss = float(loss.detach())
                    if phase.steps == 1:
                        phase.first_loss = phase.final_loss
                    batch_losses.append(phase.final_loss)
                    if self.stop_loss_ratio > 0 and phase.final_loss < self.stop_loss_ratio * phase.first_loss:
                        phase.stop_reason = STOP_LOSS_RATIO
                        break
                phase.epoch_losses.append(float(np.mean(batch_losses)))
                self.head_dropout_.eval()
                with torch.inference_mode():
                    predicted = all_logits().argmax(dim=1)
                phase.correctness.append((predicted == targets).cpu().numpy())
        return phase

    # -- inference ---------------------------------------------------------------
    def _embed_tensor(self, texts: list[str]) -> torch.Tensor:
        """f_enc of ``texts``; the latest pass since the last fit is reused when the texts repeat,
        so a strategy reading both ``pool_probabilities`` and ``pool_embeddings`` encodes the pool once.
        With ``train_layers``, only the trained top layers run: the frozen states come from the cache."""
        if self._last_pass is not None and self._last_pass[0] == texts:
            return self._last_pass[1]
        with self._threads():
            token_ids = self._tokenize(texts)
            representations = self._representations(token_ids, "encoding texts", self._frozen_states(token_ids))
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


@dataclass
class _Phase:
    """The record of one training phase (``FineTunedTransformer._train``)."""

    epoch_losses: list = field(default_factory=list)
    correctness: list = field(default_factory=list)
    first_loss: float = float("nan")
    final_loss: float = float("nan")
    stop_reason: str = STOP_EPOCH_CAP
    epochs: int = 0
    steps: int = 0


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and np.isfinite(value)


def _positive_float(value, name: str) -> float:
    if not _is_number(value) or value <= 0:
        raise ValidationError(f"{name} must be a positive number; got {value!r}")
    return float(value)
