"""ALFA-Mix, active learning by feature mixing (Parvaneh et al., CVPR 2022, §3; reference:
AminParvaneh/alpha_mix_active_learning, ``alpha_closed_form_approx`` mode).

For an unlabeled x with representation z = f_enc(x) and pseudo-label y_hat = argmax
f_cls(z), and for each class anchor z*_c (the mean representation of the labeled
examples of class c), mix

    z~ = (1 - a) * z + a * z*_c          (a a per-dimension vector)

and call x a candidate if f_cls(z~) predicts a class other than y_hat for any anchor.
The closed-form a (paper Eq. 5, the reference code's recommended mode) points the
mixing along the loss gradient:

    a = eps' * ||z* - z|| / ||grad|| * grad / (z* - z),   eps' = eps / sqrt(d),

grad = d CE(f_cls(z), y_hat) / dz. In this mode the reference code does not clamp a
(its clamp to [1e-8, eps] belongs to the sampled and learned a of its other modes), and
neither does this module: a clamp floors every dimension where grad and z* - z differ
in sign, which removes a large share of the candidates (REFERENCE.md, ALFA-Mix).

Schedule (as the reference code's query loop): eps starts at 0 and grows by the step
while it is below 1, so it takes the values step, 2*step, ... and the last one may pass
1 (step 0.2: 0.2, ..., 1.0; step 0.3: 0.3, 0.6, 0.9, 1.2); candidates accumulate over
the values tried; the loop stops at the first eps giving more than b candidates, or
after the last value. The batch is one representative per cluster of k-means (b clusters)
on the L2-normalised candidate representations; with b or fewer candidates all are
taken and the rest is filled uniformly *without* replacement from the other
unlabeled examples (the reference's fill can repeat indices).

Choices where the reference leaves room, documented here:
- where z*_c - z is 0 in a dimension the mix cannot move it whatever a is, so a is set
  to 0 there instead of dividing by ~0 (the reference adds 1e-8 to the divisor, which
  changes the mixed point only where |z*_c - z| is below ~1e-6); a zero gradient gives
  a = 0 everywhere;
- a class with no labeled example takes the mean of all labeled representations as
  its anchor (as the reference code does);
- the gradient comes from torch autograd through the model's classifier layer when the
  model is an ``MLPHead``; any other model gets central finite differences of its
  ``proba_from_embedding`` (model-agnostic, 2d extra forward passes);
- clusters of the final k-means are represented by their member nearest the centre;
  a cluster left empty (rare) is replaced by a random other candidate.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from anchoral.errors import ValidationError
from anchoral.models.mlp import MLPHead
from anchoral.models.finetune import FineTunedTransformer
from anchoral.strategies.base import RoundState, Selection, Strategy
from anchoral.strategies.bertkm import check_minibatch_above, fit_kmeans, l2_normalise
from anchoral.validation import check_positive_int

BLOCK_ROWS = 16384
FINITE_DIFFERENCE_STEP = 1e-3


def _torch_classifier_layer(model):
    """The torch module mapping representations to logits, if the model exposes one."""
    if isinstance(model, MLPHead) and model.network_ is not None:
        return model.network_[2]
    if isinstance(model, FineTunedTransformer) and model.classifier_ is not None:
        return model.classifier_
    return None


def cross_entropy_gradient(model, embeddings: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d CE(f_cls(z), y) / dz for every row z of ``embeddings`` with target ``y``, shape (N, d).

    Uses torch autograd through the model's classifier layer when one is known (an
    ``MLPHead``'s last layer, a ``FineTunedTransformer``'s classification head); otherwise central finite differences of -log p_y from the model's
    ``proba_from_embedding``, with step 1e-3 * max(1, mean |z|).
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    layer = _torch_classifier_layer(model)
    gradients = np.empty(embeddings.shape, dtype=np.float32)
    for start in range(0, embeddings.shape[0], BLOCK_ROWS):
        block = slice(start, start + BLOCK_ROWS)
        if layer is not None:
            device = next(layer.parameters()).device
            z = torch.from_numpy(embeddings[block].copy()).to(device).requires_grad_(True)
            logits = layer(z).float()
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(targets[block]).to(device), reduction="sum")
            (gradient,) = torch.autograd.grad(loss, z)
            gradients[block] = gradient.cpu().numpy()
        else:
            gradients[block] = _finite_difference_gradient(model, embeddings[block], targets[block])
    return gradients


def _finite_difference_gradient(model, embeddings: np.ndarray, targets: np.ndarray) -> np.ndarray:
    rows = np.arange(embeddings.shape[0])
    step = FINITE_DIFFERENCE_STEP * max(1.0, float(np.abs(embeddings).mean()))
    gradient = np.empty(embeddings.shape, dtype=np.float64)

    def loss(shifted):
        probabilities = np.asarray(model.proba_from_embedding(shifted), dtype=np.float64)
        return -np.log(np.maximum(probabilities[rows, targets], 1e-300))

    for dimension in range(embeddings.shape[1]):
        shifted = embeddings.astype(np.float64)
        shifted[:, dimension] += step
        upper = loss(shifted)
        shifted[:, dimension] -= 2 * step
        gradient[:, dimension] = (upper - loss(shifted)) / (2 * step)
    return gradient


def closed_form_alpha(embeddings: np.ndarray, anchor: np.ndarray, gradients: np.ndarray, eps: float) -> np.ndarray:
    """Per-dimension mixing coefficients a (ALFA-Mix Eq. 5), not clamped (the reference's closed-form mode).

    ``eps`` is the undivided cap; the formula uses eps / sqrt(d). a is 0 in dimensions
    where the anchor and the point coincide (the mix cannot move them).
    """
    difference = anchor[None, :] - embeddings
    scaled_eps = eps / math.sqrt(embeddings.shape[1])
    gradient_norms = np.linalg.norm(gradients, axis=1)
    scale = np.divide(
        scaled_eps * np.linalg.norm(difference, axis=1),
        gradient_norms,
        out=np.zeros(embeddings.shape[0], dtype=np.float64),
        where=gradient_norms > 0,
    )
    movable = np.abs(difference) > 1e-12
    ratio = np.divide(gradients, difference, out=np.zeros(difference.shape, dtype=np.float64), where=movable)
    return scale[:, None] * ratio


def prediction_flips(model, embeddings, predictions, anchor, gradients, eps: float) -> np.ndarray:
    """Whether mixing each row with ``anchor`` (closed-form a at ``eps``) changes its prediction."""
    flips = np.empty(embeddings.shape[0], dtype=bool)
    for start in range(0, embeddings.shape[0], BLOCK_ROWS):
        block = slice(start, start + BLOCK_ROWS)
        z = embeddings[block].astype(np.float64)
        alpha = closed_form_alpha(z, anchor, gradients[block], eps)
        mixed = z + alpha * (anchor[None, :] - z)
        mixed_predictions = np.asarray(model.proba_from_embedding(mixed.astype(np.float32))).argmax(axis=1)
        flips[block] = mixed_predictions != predictions[block]
    return flips


def class_anchors(embeddings: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, list[int]]:
    """Mean representation per class; classes without a labeled example get the overall mean."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    overall = embeddings.mean(axis=0)
    anchors = np.empty((n_classes, embeddings.shape[1]), dtype=np.float64)
    missing = []
    for label in range(n_classes):
        members = labels == label
        if members.any():
            anchors[label] = embeddings[members].mean(axis=0)
        else:
            anchors[label] = overall
            missing.append(label)
    return anchors, missing


def eps_schedule(step: float) -> list[float]:
    """step, 2*step, ...: eps grows by the step while it is below 1, so the last value may pass 1."""
    count = math.ceil(1.0 / step - 1e-9)
    return [round(k * step, 12) for k in range(1, count + 1)]


def _nearest_member_per_cluster(vectors: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> np.ndarray:
    distances = np.einsum("ij,ij->i", vectors - centres[labels], vectors - centres[labels])
    order = np.lexsort((distances, labels))
    first_of_cluster = np.ones(order.size, dtype=bool)
    first_of_cluster[1:] = labels[order][1:] != labels[order][:-1]
    return order[first_of_cluster]


class AlfaMix(Strategy):
    """ALFA-Mix (Parvaneh et al., CVPR 2022), closed-form alpha; see the module docstring.

    Parameters
    ----------
    eps_step : float, default 0.2
        Growth step of the cap eps (the reference's ``alpha_cap``, recommended 0.2).
    n_init : int, default 1
        k-means restarts for the final clustering.
    minibatch_above : int, default 20000
        Candidate count above which MiniBatchKMeans replaces KMeans (see ``fit_kmeans``).

    Needs at least one labeled example and a model whose ``proba_from_embedding`` works.
    ``Selection.scores`` is ``None``. Diagnostics: ``candidate_count``, ``final_eps``,
    ``candidates_per_eps`` (cumulative count after each eps tried), ``filled_at_random``,
    ``classes_without_labels``, ``gradient`` (``"autograd"`` or ``"finite-differences"``).
    """

    name = "alfamix"

    def __init__(self, eps_step: float = 0.2, n_init: int = 1, minibatch_above: int = 20_000):
        if not isinstance(eps_step, (int, float)) or isinstance(eps_step, bool) or not 0 < eps_step <= 1:
            raise ValidationError(f"eps_step must be a number in (0, 1]; got {eps_step!r}")
        self.eps_step = float(eps_step)
        self.n_init = check_positive_int(n_init, "n_init")
        self.minibatch_above = check_minibatch_above(minibatch_above)

    def _select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        if state.labeled_indices.size == 0:
            raise ValidationError("ALFA-Mix needs at least one labeled example to build class anchors; L is empty")
        unlabeled = state.unlabeled_indices
        embeddings = state.pool_embeddings[unlabeled]
        predictions = state.pool_probabilities[unlabeled].argmax(axis=1)
        anchors, missing = class_anchors(
            state.pool_embeddings[state.labeled_indices], state.labeled_labels, state.n_classes
        )
        try:
            gradients = cross_entropy_gradient(state.model, embeddings, predictions)
            candidates = np.zeros(unlabeled.size, dtype=bool)
            counts = []
            for eps in eps_schedule(self.eps_step):
                for anchor in anchors:
                    candidates |= prediction_flips(state.model, embeddings, predictions, anchor, gradients, eps)
                counts.append(int(candidates.sum()))
                if counts[-1] > n:
                    break
        except NotImplementedError as exc:
            raise ValidationError(
                f"ALFA-Mix mixes representations, so the model must implement proba_from_embedding (f_cls); "
                f"{type(state.model).__name__} does not"
            ) from exc

        candidate_positions = np.flatnonzero(candidates)
        if candidate_positions.size > n:
            vectors = l2_normalise(embeddings[candidate_positions])
            centres, labels = fit_kmeans(vectors, n, rng, n_init=self.n_init, minibatch_above=self.minibatch_above)
            chosen = candidate_positions[_nearest_member_per_cluster(vectors, centres, labels)]
            pool_for_fill = np.setdiff1d(candidate_positions, chosen, assume_unique=True)
        else:
            chosen = candidate_positions
            pool_for_fill = np.flatnonzero(~candidates)
        filled = n - chosen.size
        if filled:
            chosen = np.concatenate([chosen, rng.choice(pool_for_fill, size=filled, replace=False)])
        return Selection(
            indices=unlabeled[chosen],
            diagnostics={
                "candidate_count": counts[-1],
                "final_eps": eps,
                "candidates_per_eps": counts,
                "filled_at_random": int(filled),
                "classes_without_labels": missing,
                "gradient": "autograd" if _torch_classifier_layer(state.model) is not None else "finite-differences",
            },
        )
