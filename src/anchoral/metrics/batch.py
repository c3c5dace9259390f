"""What a selected batch is like: ALVIN §5.1 / Table 3's uncertainty, diversity and
representativeness. Pure functions of arrays, computed outside the strategies.

Conventions (the paper leaves them open):
- ``unlabeled`` is the unlabeled pool U at the moment the batch B was chosen, so B ⊂ U.
- The representation space is the frozen encoder's features (one fixed space shared
  by every strategy, so the numbers compare across strategies and rounds).
"""

from __future__ import annotations

import numpy as np

from anchoral.errors import ValidationError

REPRESENTATIVENESS_NEIGHBOURS = 10


def predictive_entropy(probabilities: np.ndarray) -> np.ndarray:
    """-sum_c p_c log p_c per row (natural log; 0 log 0 = 0)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValidationError(f"probabilities must be 2-D (n_examples, n_classes); got shape {probabilities.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0)
    return -terms.sum(axis=1)


def batch_uncertainty(reference_entropy: np.ndarray, batch: np.ndarray) -> float:
    """ALVIN Table 3 "Unc.": mean predictive entropy of the batch under a reference model
    trained on the whole labeled pool (Yuan et al. 2020), given that model's entropy of
    every pool example and the batch's pool indices."""
    batch = _check_batch(batch, len(reference_entropy))
    return float(np.mean(np.asarray(reference_entropy, dtype=np.float64)[batch]))


def batch_diversity(features: np.ndarray, batch: np.ndarray, unlabeled: np.ndarray) -> float:
    """ALVIN Table 3 "Div." (Ein-Dor et al. 2020):
    D(B) = ( (1/|U|) sum_{x in U} min_{x' in B} ||x - x'|| )^-1.
    Higher = the batch covers the unlabeled pool more evenly. ``batch`` and
    ``unlabeled`` are pool indices (rows of ``features``)."""
    features = np.asarray(features, dtype=np.float64)
    batch = _check_batch(batch, features.shape[0])
    unlabeled = _check_batch(unlabeled, features.shape[0], name="unlabeled")
    nearest = np.full(unlabeled.size, np.inf)
    for member in batch:  # |B| passes over U keep memory at O(|U| d)
        nearest = np.minimum(nearest, np.linalg.norm(features[unlabeled] - features[member], axis=1))
    mean_distance = float(nearest.mean())
    return float("inf") if mean_distance == 0 else 1.0 / mean_distance


def batch_representativeness(features: np.ndarray, batch: np.ndarray, unlabeled: np.ndarray,
                             k: int = REPRESENTATIVENESS_NEIGHBOURS) -> float:
    """ALVIN Table 3 "Repr.": for each x in B, the mean cosine similarity to its k most
    similar examples in U (x itself excluded), averaged over B. Higher = the batch sits
    in dense regions rather than among outliers."""
    features = np.asarray(features, dtype=np.float64)
    batch = _check_batch(batch, features.shape[0])
    unlabeled = _check_batch(unlabeled, features.shape[0], name="unlabeled")
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.where(norms > 0, norms, 1.0)
    similarity = unit[batch] @ unit[unlabeled].T
    similarity[batch[:, None] == unlabeled[None, :]] = -np.inf  # a point is not its own neighbour
    k = min(k, unlabeled.size - 1 if np.isin(batch, unlabeled).any() else unlabeled.size)
    if k <= 0:
        raise ValidationError("representativeness needs at least one other unlabeled example")
    top = -np.sort(-similarity, axis=1)[:, :k]
    return float(top.mean())


def _check_batch(indices, n: int, name: str = "batch") -> np.ndarray:
    indices = np.asarray(indices, dtype=np.int64).ravel()
    if indices.size == 0:
        raise ValidationError(f"{name} is empty; expected at least one pool index")
    if indices.min() < 0 or indices.max() >= n:
        raise ValidationError(f"{name} indices must lie in [0, {n}); got range [{indices.min()}, {indices.max()}]")
    return indices
