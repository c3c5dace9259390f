"""ALVIN: Active Learning Via INterpolation (Korakakis et al. 2024, Algorithm 1).

One round, as pinned down in REFERENCE.md ("ALVIN"):

1. infer which labeled examples are minority from the training dynamics of the
   last fit (ALVIN §2.2, "Inferring Minority/Majority Examples"; ``minority=`` swaps in
   any other label-free inference of ``anchoral.groups``);
2. per class, pair each (sampled) minority example with a random majority example
   of the same class (§2.2, "Anchor Creation", Algorithm 1 lines 3-6);
3. draw K interpolation weights per pair from Beta(alpha, beta) and interpolate the
   pair's representations f_enc into K anchors (lines 7-9);
4. the union of every anchor's k nearest unlabeled neighbours (Euclidean) is the
   candidate set I (line 10);
5. pick the batch from I by predictive entropy (line 11).

The ablations of ALVIN Fig. 2a are named variants of the same class: ``alvin-ran``,
``alvin-int-all``, ``alvin-uni`` and ``alvin-kmean``.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from anchoral.errors import ValidationError
from anchoral.execution import knn
from anchoral.groups import check_method, infer_groups, infer_minority
from anchoral.strategies.base import RoundState, Selection, Strategy
from anchoral.strategies.ranking import top_k_random_ties
from anchoral.strategies.uncertainty import entropy
from anchoral.validation import check_positive_int

PAIRINGS = ("random", "all", "random-pairs")
SELECTIONS = ("entropy", "uniform", "kmeans")


def interpolate(minority_repr, majority_repr, lam) -> np.ndarray:
    """Anchors between minority and majority representations: (1 - lam) * f(x_min) + lam * f(x_maj).

    ``lam`` is the weight on the *majority* representation: ``lam = 0`` gives the
    minority point and ``lam = 1`` the majority point. This follows ALVIN §2.2's prose
    ("when lam is closer to 0, the anchor is predominantly influenced by the minority
    instance") and the results of its Table 8 (Beta(2, 5), i.e. anchors nearer the
    minority, gives the better OOD accuracy); the paper's Eq. 1 writes lam on the
    minority side instead. REFERENCE.md (ALVIN, step 3) records the choice.

    Parameters
    ----------
    minority_repr, majority_repr : arrays of the same shape (n_pairs, d), or (d,) for one pair.
    lam : weights in [0, 1] of shape (n_pairs,) for one anchor per pair, or
        (n_pairs, K) for K anchors per pair (for one pair: a scalar or (K,)).

    Returns
    -------
    anchors of shape ``lam.shape + (d,)``.
    """
    minority_repr = np.asarray(minority_repr)
    majority_repr = np.asarray(majority_repr)
    lam = np.asarray(lam, dtype=np.float64)
    if minority_repr.shape != majority_repr.shape or minority_repr.ndim not in (1, 2):
        raise ValidationError(
            f"minority_repr and majority_repr must have the same shape (n_pairs, d) or (d,); "
            f"got {minority_repr.shape} and {majority_repr.shape}"
        )
    pair_shape = minority_repr.shape[:-1]
    if lam.shape[: len(pair_shape)] != pair_shape or lam.ndim - len(pair_shape) not in (0, 1):
        raise ValidationError(
            f"lam must have shape {pair_shape} (one weight per pair) or {pair_shape + ('K',)} "
            f"(K weights per pair); got {lam.shape}"
        )
    if not ((lam >= 0) & (lam <= 1)).all():
        raise ValidationError("lam must lie in [0, 1] (the weight on the majority representation)")
    if lam.ndim > len(pair_shape):
        minority_repr = minority_repr[..., None, :]
        majority_repr = majority_repr[..., None, :]
    weight = lam[..., None]
    return (1 - weight) * minority_repr + weight * majority_repr


@dataclass(frozen=True)
class Pairs:
    """Interpolation pairs, as positions into the labeled set (``state.labeled_indices``).

    ``minority_positions[p]`` is the endpoint an anchor reaches at lam = 0 and
    ``majority_positions[p]`` the one at lam = 1 (for ``pairing="random-pairs"`` both
    are random labeled examples of one class, whatever their group).
    ``fallbacks`` lists the classes that formed fewer or no pairs, and why.
    """

    minority_positions: np.ndarray
    majority_positions: np.ndarray
    fallbacks: tuple[str, ...]

    @property
    def size(self) -> int:
        return int(self.minority_positions.size)


def form_pairs(
    labels: np.ndarray,
    minority_mask: np.ndarray,
    n_classes: int,
    rng: np.random.Generator,
    *,
    pairing: str = "random",
    max_minority_per_class: int | None = None,
) -> Pairs:
    """Pair labeled examples within each class (ALVIN Algorithm 1, lines 3-6).

    For class c, L_min_c is its minority (a random ``max_minority_per_class`` of them
    when capped) and L_maj_c an equal-size random sample of its majority. With fewer
    majority than minority examples, all majority are used and an equal-size random
    sample of the minority. Then, per ``pairing``:

    - ``"random"`` (ALVIN): each x_i in L_min_c gets a majority partner drawn from
      L_maj_c, independently per minority example (line 6 samples, so a majority
      example may be drawn twice);
    - ``"all"`` (ablation int-all): each x_i in L_min_c with every majority example of c;
    - ``"random-pairs"`` (ablation ran): as many pairs per class as ``"random"`` forms,
      each of two distinct labeled examples of c drawn at random, ignoring groups.

    A class without minority or without majority examples forms no pairs.
    """
    if pairing not in PAIRINGS:
        raise ValidationError(f"pairing must be one of {', '.join(PAIRINGS)}; got {pairing!r}")
    minority_parts, majority_parts, fallbacks = [], [], []
    for c in range(n_classes):
        in_class = labels == c
        minority = np.flatnonzero(in_class & minority_mask)
        majority = np.flatnonzero(in_class & ~minority_mask)
        if minority.size == 0:
            fallbacks.append(f"class {c}: no minority examples")
        if majority.size == 0:
            fallbacks.append(f"class {c}: no majority examples")
        if minority.size == 0 or majority.size == 0:
            continue
        if max_minority_per_class is not None and minority.size > max_minority_per_class:
            minority = np.sort(rng.choice(minority, max_minority_per_class, replace=False))
        if pairing == "all":
            minority_parts.append(np.repeat(minority, majority.size))
            majority_parts.append(np.tile(majority, minority.size))
            continue
        n_pairs = min(minority.size, majority.size)
        if majority.size < minority.size:
            fallbacks.append(
                f"class {c}: {majority.size} majority < {minority.size} minority: paired a random {n_pairs} minority"
            )
            minority = np.sort(rng.choice(minority, n_pairs, replace=False))
        if pairing == "random":
            majority_sample = rng.choice(majority, n_pairs, replace=False)
            minority_parts.append(minority)
            majority_parts.append(majority_sample[rng.integers(n_pairs, size=n_pairs)])
        else:
            members = np.flatnonzero(in_class)
            first = rng.integers(members.size, size=n_pairs)
            second = (first + rng.integers(1, members.size, size=n_pairs)) % members.size
            minority_parts.append(members[first])
            majority_parts.append(members[second])
    empty = np.empty(0, dtype=np.int64)
    return Pairs(
        minority_positions=np.concatenate(minority_parts).astype(np.int64) if minority_parts else empty,
        majority_positions=np.concatenate(majority_parts).astype(np.int64) if majority_parts else empty,
        fallbacks=tuple(fallbacks),
    )


def _nearest_to_each_centroid(representations: np.ndarray, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the member of each k-means cluster nearest its centroid (distinct by construction).

    Fewer than ``n_clusters`` positions come back only when k-means leaves clusters
    empty (fewer distinct points than clusters).
    """
    from sklearn.cluster import KMeans  # imported on first use (about 2 s; see groups/clusters.py)
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(n_clusters=n_clusters, n_init=1, random_state=int(rng.integers(2**31 - 1)))
        assignment = kmeans.fit_predict(representations)
    offsets = representations - kmeans.cluster_centers_[assignment]
    distance_to_own_centroid = np.einsum("ij,ij->i", offsets, offsets)
    order = np.lexsort((distance_to_own_centroid, assignment))
    _, first_of_each_cluster = np.unique(assignment[order], return_index=True)
    return order[first_of_each_cluster]


class ALVIN(Strategy):
    """Active Learning Via INterpolation (Korakakis et al. 2024, Algorithm 1).

    Parameters
    ----------
    n_anchors_per_pair : int, default 15
        K, anchors per minority-majority pair (ALVIN §3: K = 15; Fig. 2c sweeps 1-25).
    alpha, beta : float, default 2.0
        Shape of Beta(alpha, beta), the law of lam, the weight on the *majority*
        representation (see ``interpolate``). ALVIN uses alpha = beta = 2; Fig. 2b
        alpha = beta = 0.5; Table 8 Beta(2, 5) (anchors nearer the minority) and Beta(5, 2).
    k_neighbors : int, default 10
        Nearest unlabeled neighbours taken per anchor (the paper does not state k).
    max_minority_per_class : int or None, default None
        Cap on |L_min_c|; ``None`` uses every inferred minority example of the class.
    pairing : {"random", "all", "random-pairs"}, default "random"
        How pairs are formed (``form_pairs``): ALVIN's random majority partner, or the
        ablations int-all and ran.
    selection : {"entropy", "uniform", "kmeans"}, default "entropy"
        How the batch is chosen from the candidate set I: top predictive entropy
        (ALVIN), a uniform sample (ablation uni), or the point of I nearest each of
        n k-means centroids of I's representations (ablation kmean).
    minority : str, default "dynamics"
        The label-free inference of the minority (``anchoral.groups``): ``"dynamics"``,
        the paper's rule over this round's FitReport (no extra cost); ``"out-of-fold"``
        (refits the round's model on k folds of the labeled set: k extra fits, an exception
        to "no refitting inside a strategy" that this option exists for); ``"early-stopped"``
        (the fit's correctness after its first epoch); ``"clusters"`` (class x k-means
        cluster of the pool's pretrained features). Inferred over the model's inputs of the
        labeled examples; clusters over the pretrained features.

    Fallbacks, each recorded in ``diagnostics["fallbacks"]``: a class without minority
    or majority examples forms no anchors; with no anchors at all the batch is the
    top entropy of the unlabeled pool; a candidate set smaller than the batch is taken
    whole and the rest filled by entropy over the other unlabeled examples.

    ``scores`` are the predictive entropies of the selected examples. Diagnostics also
    carry the inferred minority pool indices and the majority count per class (keys
    are class ids as strings, so they survive a JSON round trip), the number of pairs,
    anchors and candidates, ``anchor_nearest`` (the pool index of each anchor's nearest
    unlabeled neighbour: where the anchor falls, for maps of the pool), the two phase
    timings of ALVIN Table 6 (anchor creation: minority inference, pairing,
    interpolation; example selection: neighbour search and ranking; when the state's
    caches are cold, embedding the pool counts towards anchor creation and predicting it
    towards example selection) and the parameters.
    """

    name: ClassVar[str] = "alvin"

    def __init__(
        self,
        n_anchors_per_pair: int = 15,
        alpha: float = 2.0,
        beta: float = 2.0,
        k_neighbors: int = 10,
        max_minority_per_class: int | None = None,
        pairing: str = "random",
        selection: str = "entropy",
        minority: str = "dynamics",
    ):
        self.n_anchors_per_pair = check_positive_int(n_anchors_per_pair, "n_anchors_per_pair")
        self.alpha = _check_shape_parameter(alpha, "alpha")
        self.beta = _check_shape_parameter(beta, "beta")
        self.k_neighbors = check_positive_int(k_neighbors, "k_neighbors")
        self.max_minority_per_class = (
            None if max_minority_per_class is None else check_positive_int(max_minority_per_class, "max_minority_per_class")
        )
        if pairing not in PAIRINGS:
            raise ValidationError(f"pairing must be one of {', '.join(PAIRINGS)}; got {pairing!r}")
        if selection not in SELECTIONS:
            raise ValidationError(f"selection must be one of {', '.join(SELECTIONS)}; got {selection!r}")
        self.pairing = pairing
        self.selection = selection
        self.minority = check_method(minority)

    def _select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        started = time.perf_counter()
        labels = np.asarray(state.labeled_labels)
        minority_mask = self._infer_minority(state, labels, rng)
        pairs = form_pairs(
            labels,
            minority_mask,
            state.n_classes,
            rng,
            pairing=self.pairing,
            max_minority_per_class=self.max_minority_per_class,
        )
        embeddings = state.pool_embeddings
        pair_embeddings = embeddings[state.labeled_indices]
        lam = rng.beta(self.alpha, self.beta, size=(pairs.size, self.n_anchors_per_pair))
        anchors = interpolate(
            pair_embeddings[pairs.minority_positions], pair_embeddings[pairs.majority_positions], lam
        ).reshape(-1, embeddings.shape[1])
        anchors_created = time.perf_counter()

        fallbacks = list(pairs.fallbacks)
        unlabeled = state.unlabeled_indices
        unlabeled_entropy = entropy(state.pool_probabilities[unlabeled])
        if anchors.shape[0] == 0:
            fallbacks.append("no anchors: entropy over the unlabeled pool")
            candidates = np.empty(0, dtype=np.int64)
            anchor_nearest = candidates
            chosen = top_k_random_ties(unlabeled_entropy, n, rng)
        else:
            _, neighbours = knn(anchors, embeddings, min(self.k_neighbors, unlabeled.size), rows=unlabeled,
                                executor=state.executor)
            candidates = np.unique(neighbours)
            anchor_nearest = unlabeled[neighbours[:, 0]]
            chosen = self._choose(candidates, embeddings[unlabeled[candidates]], unlabeled_entropy, n, rng, fallbacks)
        selected = time.perf_counter()

        diagnostics = {
            "minority_indices": {
                str(c): state.labeled_indices[minority_mask & (labels == c)].tolist() for c in range(state.n_classes)
            },
            "majority_count": {str(c): int((~minority_mask & (labels == c)).sum()) for c in range(state.n_classes)},
            "n_pairs": pairs.size,
            "n_anchors": int(anchors.shape[0]),
            "anchor_nearest": anchor_nearest.tolist(),
            "candidate_set_size": int(candidates.size),
            "fallbacks": fallbacks,
            "seconds_anchor_creation": anchors_created - started,
            "seconds_example_selection": selected - anchors_created,
            "n_anchors_per_pair": self.n_anchors_per_pair,
            "alpha": self.alpha,
            "beta": self.beta,
            "k_neighbors": self.k_neighbors,
            "max_minority_per_class": self.max_minority_per_class,
            "pairing": self.pairing,
            "selection": self.selection,
            "minority": self.minority,
        }
        return Selection(indices=unlabeled[chosen], scores=unlabeled_entropy[chosen], diagnostics=diagnostics)

    def _infer_minority(self, state: RoundState, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.minority == "dynamics":
            return infer_minority(_labeled_correctness(state))
        from anchoral.loop import take

        model = state.model
        factory = model.plain_copy if hasattr(model, "plain_copy") else (lambda: copy.deepcopy(model))
        clusters = self.minority == "clusters"
        inputs = state.features[state.labeled_indices] if clusters else take(state.model_inputs, state.labeled_indices)
        options = {"strict": False} if self.minority == "out-of-fold" else {}
        return infer_groups(self.minority, inputs, labels, model_factory=factory, rng=rng, fit_report=state.fit_report,
                            pool_features=state.features if clusters else None, **options).minority

    def _choose(
        self,
        candidates: np.ndarray,
        candidate_embeddings: np.ndarray,
        unlabeled_entropy: np.ndarray,
        n: int,
        rng: np.random.Generator,
        fallbacks: list[str],
    ) -> np.ndarray:
        """Positions (into the unlabeled indices) of the batch, drawn from the candidate set I."""
        candidate_entropy = unlabeled_entropy[candidates]
        if candidates.size < n:
            fallbacks.append(f"candidate set {candidates.size} < batch {n}: filled by entropy")
            outside = np.ones(unlabeled_entropy.size, dtype=bool)
            outside[candidates] = False
            outside = np.flatnonzero(outside)
            return np.concatenate([
                candidates[top_k_random_ties(candidate_entropy, candidates.size, rng)],
                outside[top_k_random_ties(unlabeled_entropy[outside], n - candidates.size, rng)],
            ])
        if self.selection == "entropy":
            return candidates[top_k_random_ties(candidate_entropy, n, rng)]
        if self.selection == "uniform":
            return rng.choice(candidates, size=n, replace=False)
        picked = _nearest_to_each_centroid(candidate_embeddings, n, rng)
        if picked.size < n:
            fallbacks.append(f"k-means left {n - picked.size} of {n} clusters empty: filled by entropy over the candidate set")
            rest = np.setdiff1d(np.arange(candidates.size), picked)
            picked = np.concatenate([picked, rest[top_k_random_ties(candidate_entropy[rest], n - picked.size, rng)]])
        return candidates[picked]


def _check_shape_parameter(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} (a Beta shape parameter) must be a positive number; got {value!r}") from exc
    if not (np.isfinite(value) and value > 0):
        raise ValidationError(f"{name} (a Beta shape parameter) must be a positive finite number; got {value!r}")
    return value


def _labeled_correctness(state: RoundState) -> np.ndarray:
    if state.fit_report is None:
        raise ValidationError(
            "ALVIN infers minority examples from the training dynamics of this round's fit, but "
            "state.fit_report is None; build the RoundState with the FitReport that model.fit returned"
        )
    correctness = np.asarray(state.fit_report.correctness)
    if correctness.ndim != 2 or correctness.shape[1] != state.labeled_indices.size:
        raise ValidationError(
            f"fit_report.correctness must have one column per labeled example ({state.labeled_indices.size}); "
            f"got shape {correctness.shape}"
        )
    return correctness


class _ALVINAblation(ALVIN):
    """ALVIN with one parameter fixed (ALVIN §5.5); every other parameter is ALVIN's."""

    is_ablation = True
    fixed: ClassVar[dict] = {}

    def __init__(self, **params):
        clash = sorted(set(params) & set(self.fixed))
        if clash:
            raise ValidationError(
                f"strategy {self.name!r} fixes {', '.join(f'{k}={self.fixed[k]!r}' for k in clash)}; "
                f"use ALVIN(...) to choose it freely"
            )
        super().__init__(**params, **self.fixed)


class ALVINRandomPairs(_ALVINAblation):
    """Ablation ``ran``: interpolate random pairs of labeled examples of a class, ignoring groups."""

    name = "alvin-ran"
    fixed = {"pairing": "random-pairs"}


class ALVINInterpolateAll(_ALVINAblation):
    """Ablation ``int-all``: interpolate each minority example with every majority example of its class."""

    name = "alvin-int-all"
    fixed = {"pairing": "all"}


class ALVINUniform(_ALVINAblation):
    """Ablation ``uni``: a uniform sample of the batch from the candidate set instead of top entropy."""

    name = "alvin-uni"
    fixed = {"selection": "uniform"}


class ALVINKMeans(_ALVINAblation):
    """Ablation ``kmean``: k-means with n clusters on the candidates' representations, nearest point to each centroid."""

    name = "alvin-kmean"
    fixed = {"selection": "kmeans"}
