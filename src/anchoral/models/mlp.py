"""The fast default model: a small MLP head over frozen pretrained-encoder features."""

from __future__ import annotations

import time
from contextlib import contextmanager
from functools import cache

import numpy as np
import torch
from threadpoolctl import ThreadpoolController
from torch import nn

from anchoral.errors import ValidationError
from anchoral.models.base import STOP_EPOCH_CAP, STOP_LOSS_RATIO, FitReport
from anchoral.models.robust import RobustHeadMixin
from anchoral.validation import check_features, check_labels, check_positive_int

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@cache
def _blas_threads() -> ThreadpoolController:
    """The thread pools of NumPy's BLAS, found once per process (the search costs ~1 ms).
    Fits run with one BLAS thread for the reason ``_torch_threads`` gives: a fit of 500
    rows for 50 epochs took 0.43 s with one and 0.52 s with two on a loaded 2-core machine."""
    return ThreadpoolController()


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


def _check_sample_weight(sample_weight, n_rows: int) -> np.ndarray:
    """One finite, non-negative weight per example, not all zero, rescaled to mean 1
    (float32); ``None`` means every weight is 1."""
    if sample_weight is None:
        return np.ones(n_rows, dtype=np.float32)
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"sample_weight must be numeric; could not convert: {exc}") from exc
    if weights.shape != (n_rows,):
        raise ValidationError(
            f"sample_weight must have shape ({n_rows},), one weight per example; got shape {weights.shape}"
        )
    invalid = np.flatnonzero(~(np.isfinite(weights) & (weights >= 0)))
    if invalid.size:
        raise ValidationError(
            f"sample_weight must be finite and non-negative; got {float(weights[invalid[0]])} at position {invalid[0]}"
        )
    if not weights.any():
        raise ValidationError("sample_weight must not be all zero; got only zeros")
    weights = weights / weights.max()  # first to the max, so the mean cannot overflow
    return (weights / weights.mean()).astype(np.float32)


class _AdamTrainer:
    """Minibatch Adam on the head, with the forward and backward passes written out.

    The arithmetic of a step is two 16 x 385 x 256 products (the first layer forward and
    its gradient), a few small ones and one Adam update of every parameter: ~0.2 ms on
    one core, near its peak. Autograd, module calls and ``torch.optim`` added ~0.7 ms of
    bookkeeping to that (``benchmarks/fit_speed.py``). Here the passes are NumPy products
    into buffers allocated once per fit, and the update is the kernel behind
    ``torch.optim.Adam(fused=True)``, run once over all parameters, which sit in one flat
    float32 buffer (so moments, bias correction and eps are torch's own).

    Layout of the buffer: ``[W1^T; b1]``, one (n_features + 1, hidden) matrix applied to
    the features with a column of ones appended (one product gives the pre-activations
    with their bias, one product the gradient of both), then ``W2^T`` (hidden, n_classes)
    and ``b2``. The gradient and Adam's two moments are buffers of the same layout.
    """

    def __init__(
        self, initial_state: dict, features: np.ndarray, labels: np.ndarray, row_weights: np.ndarray,
        *, batch_size: int, learning_rate: float,
    ):
        n_rows, n_features = features.shape
        hidden_dim, n_classes = initial_state["2.weight"].shape[1], initial_state["2.weight"].shape[0]
        self.shape = (n_features, hidden_dim, n_classes)
        self.inputs = np.ones((n_rows, n_features + 1), dtype=np.float32)
        self.inputs[:, :n_features] = features
        self.labels, self.row_weights, self.learning_rate = labels, row_weights, learning_rate
        size = (n_features + 1) * hidden_dim + (hidden_dim + 1) * n_classes
        parameters, gradient, first_moment, second_moment = (np.zeros(size, dtype=np.float32) for _ in range(4))
        self.first, self.second, self.second_bias = self._views(parameters)
        self.first_gradient, self.second_gradient, self.second_bias_gradient = self._views(gradient)
        self.first[:n_features] = initial_state["0.weight"].numpy().T
        self.first[n_features] = initial_state["0.bias"].numpy()
        self.second[:] = initial_state["2.weight"].numpy().T
        self.second_bias[:] = initial_state["2.bias"].numpy()
        self.step_count = np.zeros(1, dtype=np.float32)  # torch reads it as Adam's 0-d step tensor
        self.adam_tensors = [[torch.from_numpy(array)] for array in (parameters, gradient, first_moment, second_moment)]
        self.adam_tensors += [[], [torch.from_numpy(self.step_count).reshape(())]]
        self.batch_inputs = np.empty((batch_size, n_features + 1), dtype=np.float32)
        self.batch_hidden = np.empty((batch_size, hidden_dim), dtype=np.float32)
        self.batch_hidden_gradient = np.empty((batch_size, hidden_dim), dtype=np.float32)
        self.batch_logits = np.empty((batch_size, n_classes), dtype=np.float32)
        self.batch_positions = np.arange(batch_size)
        self.all_hidden = np.empty((n_rows, hidden_dim), dtype=np.float32)

    def _views(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``[W1^T; b1]``, ``W2^T`` and ``b2`` as views of one flat buffer."""
        n_features, hidden_dim, n_classes = self.shape
        first_size = (n_features + 1) * hidden_dim
        first = flat[:first_size].reshape(n_features + 1, hidden_dim)
        second = flat[first_size : first_size + hidden_dim * n_classes].reshape(hidden_dim, n_classes)
        return first, second, flat[first_size + hidden_dim * n_classes :]

    def step(self, rows: np.ndarray) -> float:
        """One Adam step on the minibatch ``rows``; returns its loss, mean_i(w_i * CE_i)."""
        size = rows.size
        inputs = self.inputs.take(rows, axis=0, out=self.batch_inputs[:size])
        hidden = np.matmul(inputs, self.first, out=self.batch_hidden[:size])
        np.maximum(hidden, 0, out=hidden)
        logits = np.matmul(hidden, self.second, out=self.batch_logits[:size])
        logits += self.second_bias
        logits -= logits.max(axis=1, keepdims=True)
        positions, labels, weights = self.batch_positions[:size], self.labels[rows], self.row_weights[rows]
        exponentials = np.exp(logits)
        totals = exponentials.sum(axis=1)
        loss = float((np.log(totals) - logits[positions, labels]) @ weights) / size
        logit_gradient = exponentials  # becomes w_i (softmax_i - onehot(y_i)) / size, in place
        logit_gradient /= totals[:, None]
        logit_gradient[positions, labels] -= 1
        logit_gradient *= (weights / size)[:, None]
        np.matmul(hidden.T, logit_gradient, out=self.second_gradient)
        logit_gradient.sum(axis=0, out=self.second_bias_gradient)
        hidden_gradient = np.matmul(logit_gradient, self.second.T, out=self.batch_hidden_gradient[:size])
        np.multiply(hidden_gradient, hidden > 0, out=hidden_gradient)
        np.matmul(inputs.T, hidden_gradient, out=self.first_gradient)
        self.step_count[0] += 1
        torch._fused_adam_(
            *self.adam_tensors, lr=self.learning_rate, beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1], weight_decay=0.0,
            eps=ADAM_EPS, amsgrad=False, maximize=False,
        )
        return loss

    def correctness(self) -> np.ndarray:
        """Which training examples the current weights classify correctly."""
        hidden = np.matmul(self.inputs, self.first, out=self.all_hidden)
        np.maximum(hidden, 0, out=hidden)
        logits = hidden @ self.second
        logits += self.second_bias
        return logits.argmax(axis=1) == self.labels

    def write_to(self, network: nn.Sequential) -> None:
        """Copy the current weights into ``network`` (Linear, ReLU, Linear)."""
        n_features = self.shape[0]
        with torch.no_grad():
            network[0].weight.copy_(torch.from_numpy(self.first[:n_features].T))
            network[0].bias.copy_(torch.from_numpy(self.first[n_features]))
            network[2].weight.copy_(torch.from_numpy(self.second.T))
            network[2].bias.copy_(torch.from_numpy(self.second_bias))


class MLPHead(RobustHeadMixin):
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
    head : str, default "plain"
        How the head is trained (``anchoral.models.robust``): ``"plain"`` (ERM, the papers'
        setting), ``"class-balanced"``, ``"group-reweight"``, ``"jtt"``, ``"dfr"``, or
        ``"auto"`` / ``"auto-class"`` (the best of those by a label-free cross-validated rule).
    groups : str, default "clusters"
        The label-free group inference the robust heads use (``anchoral.groups``):
        ``"clusters"``, ``"out-of-fold"``, ``"early-stopped"`` or ``"dynamics"``.
    n_clusters : int, default 2
        k of the k-means behind ``groups="clusters"``.
    n_folds : int, default 5
        Folds of ``groups="out-of-fold"``.
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
        head: str = "plain",
        groups: str = "clusters",
        n_clusters: int = 2,
        n_folds: int = 5,
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
        self._set_robust_options(head, groups, n_clusters, n_folds)
        self.network_ = None
        self.initial_state_ = None

    def plain_copy(self) -> "MLPHead":
        """A fresh, unfitted head with the same hyper-parameters and seed, trained by plain ERM."""
        return MLPHead(self.n_classes, hidden_dim=self.hidden_dim, learning_rate=self.learning_rate,
                       batch_size=self.batch_size, max_epochs=self.max_epochs,
                       stop_loss_ratio=self.stop_loss_ratio, seed=self.seed)

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
    def fit_weighted(self, features, labels, sample_weight=None) -> FitReport:
        """The plain fit from the initial weights until the stop rule or the cap. With
        ``sample_weight`` (finite, non-negative, not all zero; rescaled to mean 1) a minibatch's
        loss is mean_i(w_i * CE_i) over its rows; without, the plain mean cross-entropy."""
        with _torch_threads(1), _blas_threads().limit(limits=1, user_api="blas"):
            return self._fit(features, labels, sample_weight)

    def set_last_layer(self, weights, biases) -> None:
        """Replace f_cls's weights (n_classes, hidden_dim) and biases (n_classes,) of a fitted head."""
        self._check_fitted()
        layer = self.network_[2]
        weights = np.asarray(weights, dtype=np.float32)
        biases = np.asarray(biases, dtype=np.float32)
        if weights.shape != tuple(layer.weight.shape) or biases.shape != tuple(layer.bias.shape):
            raise ValidationError(
                f"the last layer takes weights of shape {tuple(layer.weight.shape)} and biases of shape "
                f"{tuple(layer.bias.shape)}; got {weights.shape} and {biases.shape}"
            )
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(weights))
            layer.bias.copy_(torch.from_numpy(biases))

    def _fit(self, features, labels, sample_weight) -> FitReport:
        started = time.perf_counter()
        features = check_features(features, "features")
        labels = check_labels(labels, features.shape[0], "labels")
        if labels.max() >= self.n_classes:
            raise ValidationError(
                f"labels must be class ids in [0, {self.n_classes}); got {labels.max()}"
            )
        row_weights = _check_sample_weight(sample_weight, labels.size)
        if self.network_ is None or self.n_features_ != features.shape[1]:
            self._build(features.shape[1])
        trainer = _AdamTrainer(
            self.initial_state_, features, labels, row_weights,
            batch_size=self.batch_size, learning_rate=self.learning_rate,
        )
        order_generator = torch.Generator().manual_seed(self.seed)

        epoch_losses: list[float] = []
        correctness: list[np.ndarray] = []
        first_loss = final_loss = float("nan")
        stop_reason = STOP_EPOCH_CAP
        steps = 0
        epoch = 0
        while epoch < self.max_epochs and stop_reason != STOP_LOSS_RATIO:
            epoch += 1
            permutation = torch.randperm(labels.size, generator=order_generator).numpy()
            batch_losses = []
            for start in range(0, labels.size, self.batch_size):
                final_loss = trainer.step(permutation[start : start + self.batch_size])
                steps += 1
                if steps == 1:
                    first_loss = final_loss
                batch_losses.append(final_loss)
                if self.stop_loss_ratio > 0 and final_loss < self.stop_loss_ratio * first_loss:
                    stop_reason = STOP_LOSS_RATIO
                    break
            epoch_losses.append(float(np.mean(batch_losses)))
            correctness.append(trainer.correctness())
        trainer.write_to(self.network_)
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
