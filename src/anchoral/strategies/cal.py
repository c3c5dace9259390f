"""CAL, contrastive active learning (Margatina et al. 2021, "Active Learning by
Acquiring Contrastive Examples", §2, Algorithm 1; reference: mourga/contrastive-active-learning).

A contrastive example sits close to labeled examples in representation space yet the
model predicts differently for it. For each unlabeled x, take its k nearest *labeled*
examples in the L2-normalised representation (the index holds L only, so x is never
its own neighbour) and score

    s(x) = (1/k) sum_{l in kNN_L(x)} KL(p_l || p_x),

with p_l the model's prediction for the labeled neighbour (not its gold label).
The top-b scores are selected.
"""

from __future__ import annotations

import numpy as np

from anchoral.errors import ValidationError
from anchoral.execution import knn
from anchoral.strategies.base import RoundState, Selection, Strategy
from anchoral.strategies.bertkm import l2_normalise
from anchoral.strategies.ranking import top_k_random_ties
from anchoral.validation import check_positive_int

PROBABILITY_FLOOR = 1e-12


def mean_neighbour_kl(neighbour_probabilities: np.ndarray, candidate_probabilities: np.ndarray) -> np.ndarray:
    """Mean over neighbours of KL(p_neighbour || p_candidate).

    ``neighbour_probabilities`` has shape (n_candidates, k, C), ``candidate_probabilities``
    (n_candidates, C). 0 log 0 = 0 for the neighbour's terms; candidate probabilities are
    floored at 1e-12 so a class the candidate rules out costs a large finite amount
    instead of infinity.
    """
    neighbours = np.asarray(neighbour_probabilities, dtype=np.float64)
    candidates = np.maximum(np.asarray(candidate_probabilities, dtype=np.float64), PROBABILITY_FLOOR)
    with np.errstate(divide="ignore", invalid="ignore"):
        neighbour_log = np.where(neighbours > 0, np.log(np.where(neighbours > 0, neighbours, 1.0)), 0.0)
    # KL(q || p) = sum_c q_c log q_c - sum_c q_c log p_c; average over neighbours first.
    negative_entropy = (neighbours * neighbour_log).sum(axis=2).mean(axis=1)
    cross = (neighbours.mean(axis=1) * np.log(candidates)).sum(axis=1)
    return negative_entropy - cross


class ContrastiveActiveLearning(Strategy):
    """CAL (Margatina et al., EMNLP 2021).

    Parameters
    ----------
    n_neighbours : int, default 10
        Labeled neighbours per candidate (the paper's k = 10); capped at |L|.

    Needs at least one labeled example. ``Selection.scores`` holds the mean KL score
    of each pick. Diagnostics: ``n_neighbours`` (the k actually used).
    """

    name = "cal"

    def __init__(self, n_neighbours: int = 10):
        self.n_neighbours = check_positive_int(n_neighbours, "n_neighbours")

    def _select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        labeled = state.labeled_indices
        if labeled.size == 0:
            raise ValidationError("CAL needs at least one labeled example to compare candidates with; L is empty")
        unlabeled = state.unlabeled_indices
        k = min(self.n_neighbours, labeled.size)
        representations = state.pool_embeddings
        _, neighbours = knn(l2_normalise(representations[unlabeled]), l2_normalise(representations[labeled]), k,
                            executor=state.executor)
        probabilities = state.pool_probabilities
        scores = mean_neighbour_kl(probabilities[labeled][neighbours], probabilities[unlabeled])
        best = top_k_random_ties(scores, n, rng)
        return Selection(indices=unlabeled[best], scores=scores[best], diagnostics={"n_neighbours": int(k)})
