"""The fast default model: a small MLP head over frozen pretrained-encoder features."""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from anchoral.errors import ValidationError
from anchoral.models.base import STOP_EPOCH_CAP, STOP_LOSS_RATIO, FitReport
from anchoral.validation import check_features, check_labels, check_positive_int


@contextmanager
def _torch_threads(count: int):
    """Run a block with ``count`` intra-op threads. The head's matrices are tiny, so
    thread hand-offs cost more than they save: one thread trained 960 minibatches
    in 2 s where two threads took 39 s on a loaded 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class MLPHead:
    """One hidden layer (ReLU) + linear classifier, trained with Adam on minibatches.

    f_enc(x) is the hidden layer's activation (``embed``), f_cls the linear layer and
    softmax on top of it (``proba_from_embedding``).

    Parameters
    ----------
    n_classes : int
        Number of classes (>= 2); fixed so probabilities always have this many columns.
    hidden_dim : int, default 256
    learning_rate : float, default 1e-3
    batch_size : int, default 16 (ALVIN's fine-tuning batch size)
    max_epochs : int, default 100
        Hard cap so a fit always ends (Tamkin §2 asks for one next to the rule).
    stop_loss_ratio : float, default 1e-3
        Tamkin et al. §2 validation-free stopping: stop as soon as a minibatch loss falls
        below ``stop_loss_ratio`` x the first minibatch loss of this fit. ``0`` disables it.
    seed : int, default 0
        Fixes the initial weights (reused by every fit) and the minibatch order.
    """

    input_kind = "features"

    def __init__(
        self,
        n_classes: int,
        *,
        hidden_dim: int = 256,
        learning_rate: float = 1e-3,
        batch_size: int = 16,
        max_epochs: int = 100,
        stop_loss_ratio: float = 1e-3,
        seed: int = 0,
    ):
        self.n_classes = check_positive_int(n_classes, "n_classes")
        if self.n_classes < 2:
            raise ValidationError(f"n_classes must be at least 2; got {n_classes}")
        self.hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        if not learning_rate > 0:
            raise ValidationError(f"learning_rate must be positive; got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.max_epochs = check_positive_int(max_epochs, "max_epochs")
        if not 0 <= stop_loss_ratio < 1:
            raise ValidationError(f"stop_loss_ratio must be in [0, 1); got {stop_loss_ratio!r}")
        self.stop_loss_ratio = float(stop_loss_ratio)
        self.seed = int(seed)
        self.network_ = None
        self.initial_state_ = None

    # -- construction ------------------------------------------------------------
    def _build(self, n_features: int) -> None:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        try:
            self.network_ = nn.Sequential(
                nn.Linear(n_features, self.hidden_dim),
                nn.ReLU(),
                nn.Linear(self.hidden_dim, self.n_classes),
            )
        finally:
            torch.random.set_rng_state(generator_state)
        self.initial_state_ = {k: v.clone() for k, v in self.network_.state_dict().items()}
        self.n_features_ = n_features

    def _check_fitted(self) -> None:
        if self.network_ is None:
            raise ValidationError("this MLPHead is not fitted yet; call fit(features, labels) first")

    # -- training ----------------------------------------------------------------
    def fit(self, features, labels) -> FitReport:
        """Train from the initial weights on (features, labels) until the stop rule or the cap."""
        with _torch_threads(1):
            return self._fit(features, labels)

    def _fit(self, features, labels) -> FitReport:
        started = time.perf_counter()
        features = check_features(features, "features")
        labels = check_labels(labels, features.shape[0], "labels")
        if labels.max() >= self.n_classes:
            raise ValidationError(
                f"labels must be class ids in [0, {self.n_classes}); got {labels.max()}"
            )
        if self.network_ is None or self.n_features_ != features.shape[1]:
            self._build(features.shape[1])
        self.network_.load_state_dict(self.initial_state_)
        self.network_.train()

        inputs = torch.from_numpy(np.array(features, dtype=np.float32))
        targets = torch.from_numpy(labels)
        optimizer = torch.optim.Adam(self.network_.parameters(), lr=self.learning_rate)
        loss_function = nn.CrossEntropyLoss()
        order_generator = torch.Generator().manual_seed(self.seed)
        n = inputs.shape[0]

        epoch_losses: list[float] = []
        correctness: list[np.ndarray] = []
        first_loss = final_loss = float("nan")
        stop_reason = STOP_EPOCH_CAP
        steps = 0
        epoch = 0
        while epoch < self.max_epochs and stop_reason != STOP_LOSS_RATIO:
            epoch += 1
            permutation = torch.randperm(n, generator=order_generator)
            batch_losses = []
            for start in range(0, n, self.batch_size):
                rows = permutation[start : start + self.batch_size]
                loss = loss_function(self.network_(inputs[rows]), targets[rows])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
                final_loss = float(loss.detach())
                if steps == 1:
                    first_loss = final_loss
                batch_losses.append(final_loss)
                if self.stop_loss_ratio > 0 and final_loss < self.stop_loss_ratio * first_loss:
                    stop_reason = STOP_LOSS_RATIO
                    break
            epoch_losses.append(float(np.mean(batch_losses)))
            with torch.no_grad():
                predicted = self.network_(inputs).argmax(dim=1)
            correctness.append((predicted == targets).numpy())
        self.network_.eval()
        return FitReport(
            epoch_losses=tuple(epoch_losses),
            first_loss=first_loss,
            final_loss=final_loss,
            correctness=np.stack(correctness),
            stop_reason=stop_reason,
            epochs=epoch,
            steps=steps,
            seconds=time.perf_counter() - started,
        )

    # -- inference ---------------------------------------------------------------
    def _forward_blocks(self, array: np.ndarray, layer, block: int = 65536) -> np.ndarray:
        """``layer`` over blocks of rows, written into one preallocated output (no pool-sized temporaries)."""
        output = None
        with torch.no_grad():
            for start in range(0, array.shape[0], block):
                chunk = torch.from_numpy(np.array(array[start : start + block], dtype=np.float32))
                result = layer(chunk).numpy()
                if output is None:
                    output = np.empty((array.shape[0], *result.shape[1:]), dtype=np.float32)
                output[start : start + result.shape[0]] = result
        return output if output is not None else np.empty((0,), dtype=np.float32)

    def embed(self, features) -> np.ndarray:
        """f_enc: the hidden-layer representation, shape (n, hidden_dim)."""
        self._check_fitted()
        features = check_features(features, "features")
        self._check_width(features, "features", self.n_features_)
        return self._forward_blocks(features, self.network_[:2])

    def proba_from_embedding(self, embeddings) -> np.ndarray:
        """f_cls: class probabilities from hidden-layer representations."""
        self._check_fitted()
        embeddings = check_features(embeddings, "embeddings")
        self._check_width(embeddings, "embeddings", self.hidden_dim)
        return self._forward_blocks(embeddings, lambda z: torch.softmax(self.network_[2](z), dim=1))

    def predict_proba(self, features) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), rows summing to 1."""
        self._check_fitted()
        features = check_features(features, "features")
        self._check_width(features, "features", self.n_features_)
        return self._forward_blocks(features, lambda x: torch.softmax(self.network_(x), dim=1))

    def predict(self, features) -> np.ndarray:
        return self.predict_proba(features).argmax(axis=1)

    @staticmethod
    def _check_width(array: np.ndarray, name: str, expected: int) -> None:
        if array.shape[1] != expected:
            raise ValidationError(f"{name} must have {expected} columns; got {array.shape[1]}")
