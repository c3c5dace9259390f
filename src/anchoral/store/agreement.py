"""Agreement between labelers: Cohen's and Fleiss' kappa, raw and pairwise percent
agreement, and per-label kappa and specific agreement. Pure functions of the ratings.

Ratings come per item as ``{rater: category}``; only items with two or more ratings
say anything about agreement. Which kappa is the headline: Cohen's when exactly two
labelers rated the items (each item by both), Fleiss' otherwise (more than two
labelers overall, whether every item has k of them or the labelers rotate).

Items rated by different numbers of labelers (an overlap of k = 3 where only two
have labeled an item yet, or k changed between batches) are all kept: each item's
agreement is the share of its pairs of ratings that agree, items weigh the same, and
chance agreement comes from all ratings pooled. With the same number of ratings on
every item this is Fleiss's formula exactly. Per label, kappa is the kappa of that
label against all others (Fleiss 1971's kappa for a single category), and specific
agreement is the share of the label's ratings that another rater of the same item
matches (Uebersax 1982; 2a / (2a + b + c) for two raters).

A value that is undefined (no item rated twice, every rating the same label, a label
nobody used) is ``Statistic(None, reason)``, never NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

UNDEFINED_TOLERANCE = 1e-12
KAPPA_NAMES = {"cohen": "Cohen's kappa", "fleiss": "Fleiss' kappa"}


@dataclass(frozen=True)
class Statistic:
    """A value, or None with the reason it is undefined."""

    value: float | None
    reason: str | None = None

    def as_dict(self) -> dict:
        return {"value": self.value, "reason": self.reason}


def _kappa(observed: float, chance: float, reason_if_undefined: str) -> Statistic:
    """(p_o - p_e) / (1 - p_e), undefined when chance agreement is 1."""
    if 1.0 - chance <= UNDEFINED_TOLERANCE:
        return Statistic(None, reason_if_undefined)
    return Statistic(float((observed - chance) / (1.0 - chance)))


def rating_counts(ratings: Sequence[Mapping[str, int]], n_categories: int) -> np.ndarray:
    """(items, categories): how many raters put each item in each category."""
    counts = np.zeros((len(ratings), n_categories), dtype=np.int64)
    for row, item in enumerate(ratings):
        for category in item.values():
            counts[row, category] += 1
    return counts


def cohen_kappa(pairs: Sequence[tuple[int, int]], n_categories: int) -> Statistic:
    """Cohen's kappa of two raters (Cohen 1960): p_o is the share of items they agree on,
    p_e = sum_j p1_j * p2_j from each rater's own label shares; kappa = (p_o - p_e) / (1 - p_e)."""
    table = np.zeros((n_categories, n_categories), dtype=np.float64)
    for first, second in pairs:
        table[first, second] += 1
    total = table.sum()
    if total == 0:
        return Statistic(None, "no item was labeled by both labelers")
    observed = np.trace(table) / total
    chance = float((table.sum(axis=1) / total) @ (table.sum(axis=0) / total))
    return _kappa(observed, chance, "both labelers gave every item the same single label, so chance agreement is 1")


def _item_agreement(counts: np.ndarray) -> np.ndarray:
    """Per item, the share of its pairs of ratings that agree: sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))."""
    per_item = counts.sum(axis=1)
    return (counts * (counts - 1)).sum(axis=1) / (per_item * (per_item - 1))


def _rated_twice(counts: np.ndarray) -> np.ndarray:
    return counts[counts.sum(axis=1) >= 2]


def fleiss_kappa(counts: np.ndarray) -> Statistic:
    """Fleiss' kappa (Fleiss 1971) over items rated by two or more raters, their numbers free to vary:
    P_bar is the mean of the items' pairwise agreement, P_e = sum_j p_j^2 with p_j the share of all
    ratings in category j, kappa = (P_bar - P_e) / (1 - P_e)."""
    counts = _rated_twice(np.asarray(counts))
    if counts.shape[0] == 0:
        return Statistic(None, "no item was labeled by two or more labelers")
    shares = counts.sum(axis=0) / counts.sum()
    observed = float(_item_agreement(counts).mean())
    return _kappa(observed, float(shares @ shares), "every rating is the same label, so chance agreement is 1")


def pairwise_agreement(counts: np.ndarray) -> Statistic:
    """The mean over items of the share of their pairs of ratings that agree (Fleiss's P_bar)."""
    counts = _rated_twice(np.asarray(counts))
    if counts.shape[0] == 0:
        return Statistic(None, "no item was labeled by two or more labelers")
    return Statistic(float(_item_agreement(counts).mean()))


def percent_agreement(counts: np.ndarray) -> Statistic:
    """The share of items on which all their raters gave the same label (raw agreement)."""
    counts = _rated_twice(np.asarray(counts))
    if counts.shape[0] == 0:
        return Statistic(None, "no item was labeled by two or more labelers")
    return Statistic(float((counts.max(axis=1) == counts.sum(axis=1)).mean()))


def one_against_rest(counts: np.ndarray, category: int) -> np.ndarray:
    """(items, 2): ratings of ``category`` and of any other category."""
    counts = np.asarray(counts)
    return np.stack([counts[:, category], counts.sum(axis=1) - counts[:, category]], axis=1)


def specific_agreement(counts: np.ndarray, category: int) -> Statistic:
    """How often a rating of ``category`` is matched by another rater of the same item:
    sum_i n_ij (n_ij - 1) / sum_i n_ij (n_i - 1); for two raters 2a / (2a + b + c)."""
    counts = _rated_twice(np.asarray(counts))
    given = counts[:, category]
    possible = (given * (counts.sum(axis=1) - 1)).sum()
    if possible == 0:
        return Statistic(None, "nobody gave this label on an item labeled by two or more labelers")
    return Statistic(float((given * (given - 1)).sum() / possible))


def _label_kappa(counts: np.ndarray, category: int, pairs: Sequence[tuple[int, int]] | None) -> Statistic:
    """Kappa of one label against the rest: Cohen's over the pairs when given, else Fleiss'."""
    used = int(_rated_twice(counts)[:, category].sum())
    if used == 0:
        return Statistic(None, "nobody gave this label on an item labeled by two or more labelers")
    if pairs is not None:
        kappa = cohen_kappa([(int(a != category), int(b != category)) for a, b in pairs], 2)
    else:
        kappa = fleiss_kappa(one_against_rest(counts, category))
    if kappa.value is None:
        return Statistic(None, "every rating of these items is this label, so chance agreement is 1")
    return kappa


def summarize(ratings: Sequence[Mapping[str, int]], labels: Sequence[str]) -> dict:
    """Every statistic above for ``ratings`` (per item, rater -> category index into ``labels``),
    as JSON-ready values; ``statistic`` names the headline ``kappa`` ("cohen" or "fleiss"; None
    while no item has two ratings)."""
    rated = [dict(item) for item in ratings if len(item) >= 2]
    raters = sorted({rater for item in rated for rater in item})
    counts = rating_counts(rated, len(labels))
    two_raters = len(raters) == 2
    pairs = [(item[raters[0]], item[raters[1]]) for item in rated] if two_raters else None
    if two_raters:
        cohen = cohen_kappa(pairs, len(labels))
    elif not rated:
        cohen = Statistic(None, "no item was labeled by two or more labelers")
    else:
        cohen = Statistic(None, f"Cohen's kappa compares exactly two labelers; these items had {len(raters)}")
    fleiss = fleiss_kappa(counts)
    return {
        "items": len(rated),
        "raters": raters,
        "ratings": int(counts.sum()),
        "statistic": None if not rated else "cohen" if two_raters else "fleiss",
        "kappa": (cohen if two_raters else fleiss).as_dict(),
        "cohen_kappa": cohen.as_dict(),
        "fleiss_kappa": fleiss.as_dict(),
        "percent_agreement": percent_agreement(counts).as_dict(),
        "pairwise_agreement": pairwise_agreement(counts).as_dict(),
        "per_label": {
            name: {
                "ratings": int(counts[:, category].sum()),
                "kappa": _label_kappa(counts, category, pairs).as_dict(),
                "specific_agreement": specific_agreement(counts, category).as_dict(),
            }
            for category, name in enumerate(labels)
        },
    }
