"""Minority-seeking selection: spend the batch where a label most likely fills an
under-represented (class x inferred group) cell of the labeled set.

The oracle that reaches 0.68 worst-group accuracy on vader-shortcut from 500 labels holds
every minority example of the pool; random sampling holds about 25 of its 250 and
uncertainty sampling about 60. This strategy aims the labels at the cells a
group-balanced labeled set would hold, without group labels:

1. groups = the k-means clusters of the pool's *pretrained* features
   (``anchoral.groups.clusters``: on a shortcut benchmark the attribute the features
   encode most strongly); cells = class x cluster;
2. only points whose cluster assignment is confident (margin to the second-nearest
   centre at or above the pool's median margin, ``confident_quantile = 0.5``) are
   candidates. This leaves out many minority examples (on vader-shortcut at rho 0.95,
   2-means finds the two majority class x attribute groups and the minority sits between
   them: 18 of the pool's 125 negative/review-or-tweet examples stay candidates), but the
   points between the clusters are also where cluster and attribute disagree: taking them
   (``confident_quantile = 0``) tripled the minority examples acquired, and filled the
   inferred minority cells with mis-clustered majority examples, which a head that
   balances those cells (DFR) then balanced on: see docs/strategies.md;
3. each cell's deficit = its share of a labeled set balanced over the cells after this
   batch, minus what it holds; the batch is split over the cells in proportion to the
   deficits (largest remainders);
4. within cell (c, k), the confident unlabeled points of cluster k with the highest
   predicted probability of class c (the round's model: a robust head makes these
   probabilities reflect the class, not the cluster).

A cell with too few candidates passes its share on to entropy over the unlabeled pool,
recorded in the diagnostics. Cost per call: one k-means of the pool (cached for the pool
and seed across rounds) and a sort of each cell's candidates.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from anchoral.errors import ValidationError
from anchoral.groups.clusters import assignment_margin, fit_clusters
from anchoral.strategies.base import RoundState, Selection, Strategy
from anchoral.strategies.ranking import top_k_random_ties
from anchoral.strategies.uncertainty import entropy
from anchoral.validation import check_positive_int


def split_by_deficit(counts: np.ndarray, n: int) -> np.ndarray:
    """How many of ``n`` new labels each cell gets: in proportion to its deficit against an even
    share of (labeled + n) over the cells, largest remainders first; all to the emptiest cells
    when nothing is short."""
    counts = np.asarray(counts, dtype=np.float64)
    target = (counts.sum() + n) / counts.size
    deficit = np.maximum(target - counts, 0.0)
    if deficit.sum() <= 0:
        deficit = np.ones(counts.size)
    share = deficit / deficit.sum() * n
    allocation = np.floor(share).astype(np.int64)
    order = np.lexsort((counts, -(share - allocation)))  # largest remainder, then the emptier cell
    allocation[order[: n - allocation.sum()]] += 1
    return allocation


class PoolClusters:
    """The pool's clusters, assignment margins and, per cluster, its members sorted by index;
    the members confident at a quantile are computed once per quantile."""

    def __init__(self, cluster: np.ndarray, margin: np.ndarray, n_clusters: int):
        self.cluster, self.margin = cluster, margin
        self.members = [np.flatnonzero(cluster == group) for group in range(n_clusters)]
        self._confident: dict[float, list[np.ndarray]] = {}

    def confident_members(self, quantile: float) -> list[np.ndarray]:
        if quantile not in self._confident:
            confident = self.margin >= np.quantile(self.margin, quantile)
            self._confident[quantile] = [members[confident[members]] for members in self.members]
        return self._confident[quantile]


_CLUSTERS: OrderedDict = OrderedDict()
CACHED_POOLS = 4
DIGEST_ROWS = 64


def pool_clusters(features: np.ndarray, n_clusters: int, seed: int) -> PoolClusters:
    """Cluster and assignment margin of every pool row (``anchoral.groups.clusters``), memoised:
    the pool does not change between rounds, and a k-means of it per round would cost more than
    the rest of the selection. The key is the pool's shape and a digest of 64 evenly spaced
    rows (two pools of one shape that agree on all of those rows would share an entry)."""
    rows = np.linspace(0, features.shape[0] - 1, min(DIGEST_ROWS, features.shape[0])).astype(np.int64)
    digest = hashlib.blake2b(np.ascontiguousarray(features[rows]).tobytes(), digest_size=16).hexdigest()
    key = (features.shape, digest, n_clusters, seed)
    if key not in _CLUSTERS:
        cluster, margin = assignment_margin(fit_clusters(features, n_clusters, seed), features)
        _CLUSTERS[key] = PoolClusters(cluster, margin, n_clusters)
        while len(_CLUSTERS) > CACHED_POOLS:
            _CLUSTERS.popitem(last=False)
    _CLUSTERS.move_to_end(key)
    return _CLUSTERS[key]


class MinoritySeeking(Strategy):
    """Minority-seeking selection (see the module docstring).

    Parameters
    ----------
    n_clusters : int, default 2
        k of the k-means of the pool's pretrained features (the values of the suspected attribute).
    confident_quantile : float in [0, 1), default 0.5
        Points whose assignment margin is below this quantile of the pool's margins are not
        candidates (0 = every point is; see the module docstring).
    seed : int, default 0
        Seeds the k-means (so every round and every strategy sees the same clusters).
    """

    name = "minority-seeking"

    def __init__(self, n_clusters: int = 2, confident_quantile: float = 0.5, seed: int = 0):
        self.n_clusters = check_positive_int(n_clusters, "n_clusters")
        if not (isinstance(confident_quantile, (int, float)) and 0 <= confident_quantile < 1):
            raise ValidationError(f"confident_quantile must be a number in [0, 1); got {confident_quantile!r}")
        self.confident_quantile = float(confident_quantile)
        self.seed = int(seed)

    def _select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        clusters = pool_clusters(state.features, self.n_clusters, self.seed)  # k > pool size: fit_clusters says so
        candidates_of = clusters.confident_members(self.confident_quantile)
        labels = np.asarray(state.labeled_labels)
        n_cells = state.n_classes * self.n_clusters
        cells = labels * self.n_clusters + clusters.cluster[state.labeled_indices]
        counts = np.bincount(cells, minlength=n_cells)
        allocation = split_by_deficit(counts, n)
        probabilities = state.pool_probabilities
        free = np.ones(state.pool_size, dtype=bool)  # unlabeled and not yet in this batch
        free[state.labeled_indices] = False
        n_confident_unlabeled = int(sum(free[members].sum() for members in candidates_of))
        chosen: list[np.ndarray] = []
        fallbacks: list[str] = []
        empty = [group for group, members in enumerate(clusters.members) if members.size == 0]
        if empty:
            fallbacks.append(f"the pool's features form only {self.n_clusters - len(empty)} of {self.n_clusters} "
                             f"clusters (empty: {empty}): their cells get no candidates")
        for cell in np.flatnonzero(allocation):
            label, group = divmod(int(cell), self.n_clusters)
            members = candidates_of[group]
            candidates = members[free[members]]
            want = int(allocation[cell])
            if candidates.size < want:
                fallbacks.append(f"cell {cell} (class {label}, cluster {group}): {candidates.size} candidates "
                                 f"< {want}: the rest by entropy")
            if candidates.size:
                picked = candidates[top_k_random_ties(probabilities[candidates, label], min(want, candidates.size), rng)]
                free[picked] = False
                chosen.append(picked)
        missing = n - sum(part.size for part in chosen)
        if missing:
            rest = np.flatnonzero(free)
            chosen.append(rest[top_k_random_ties(entropy(probabilities[rest]), missing, rng)])
        indices = np.concatenate(chosen)
        diagnostics = {
            "cell_counts": counts.tolist(), "allocation": allocation.tolist(), "fallbacks": fallbacks,
            "n_confident_unlabeled": n_confident_unlabeled, "n_clusters": self.n_clusters,
            "confident_quantile": self.confident_quantile,
        }
        return Selection(indices=indices, diagnostics=diagnostics)
