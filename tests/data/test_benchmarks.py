"""Spurious-correlation and shift benchmarks: exact group rates, disjoint splits,
determinism, clear errors, and the registered VADER benchmarks."""

import numpy as np
import pandas as pd
import pytest

from anchoral.data.benchmarks import (
    build_shift_benchmark,
    build_spurious_benchmark,
    list_benchmarks,
    load_benchmark,
)
from anchoral.errors import UnknownNameError, ValidationError

CLASS_NAMES = ("negative", "positive")
ATTRIBUTE_NAMES = ("land", "water")


def synthetic_frame(rows_per_group: dict[tuple[int, str], int]) -> pd.DataFrame:
    """A frame with ``rows_per_group[(label, place)]`` rows per (label, place)."""
    records = [
        {"id": f"{label}-{place}-{index}", "text": f"text {label} {place} {index}", "label": label, "place": place}
        for (label, place), count in rows_per_group.items()
        for index in range(count)
    ]
    return pd.DataFrame.from_records(records)


PLENTY = {(0, "land"): 300, (0, "water"): 100, (1, "land"): 120, (1, "lake"): 60, (1, "sea"): 250}


def build(frame=None, **overrides):
    arguments = dict(
        name="toy",
        attribute_column="place",
        attribute_codes={"land": 0, "water": 1, "lake": 1, "sea": 1},
        aligned_attribute={0: 0, 1: 1},
        class_names=CLASS_NAMES,
        attribute_names=ATTRIBUTE_NAMES,
        rho=0.9,
        pool_size=200,
        id_test_size=60,
        ood_test_per_group=20,
        seed=7,
    )
    arguments.update(overrides)
    return build_spurious_benchmark(synthetic_frame(PLENTY) if frame is None else frame, **arguments)


def test_pool_and_id_test_hold_exact_majority_and_minority_counts():
    benchmark = build()
    # group ids: 0 negative/land, 1 negative/water, 2 positive/land, 3 positive/water
    assert np.bincount(benchmark.pool.groups, minlength=4).tolist() == [90, 10, 10, 90]
    assert np.bincount(benchmark.id_test.groups, minlength=4).tolist() == [27, 3, 3, 27]
    assert np.bincount(benchmark.ood_test.groups, minlength=4).tolist() == [20, 20, 20, 20]
    assert benchmark.group_names == ("negative/land", "negative/water", "positive/land", "positive/water")


def test_groups_encode_label_and_attribute_of_each_example():
    benchmark = build()
    frame = synthetic_frame(PLENTY).set_index("id")
    for split in (benchmark.pool, benchmark.id_test, benchmark.ood_test):
        rows = frame.loc[split.ids]
        assert (rows["label"].to_numpy() == split.labels).all()
        codes = rows["place"].map({"land": 0, "water": 1, "lake": 1, "sea": 1}).to_numpy()
        assert (split.groups == split.labels * 2 + codes).all()
        assert split.texts == rows["text"].tolist()
        assert split.labels.dtype == np.int64 and split.groups.dtype == np.int64


def test_splits_are_disjoint():
    benchmark = build()
    pool, id_test, ood_test = (set(split.ids) for split in (benchmark.pool, benchmark.id_test, benchmark.ood_test))
    assert len(pool) == 200 and len(id_test) == 60 and len(ood_test) == 80
    assert not pool & id_test and not pool & ood_test and not id_test & ood_test


def test_same_seed_gives_same_benchmark_and_another_seed_differs():
    first, again, other = build(seed=3), build(seed=3), build(seed=4)
    assert (first.pool.ids == again.pool.ids).all() and (first.ood_test.ids == again.ood_test.ids).all()
    assert set(first.pool.ids) != set(other.pool.ids)


def test_rho_one_half_means_no_correlation():
    benchmark = build(rho=0.5)
    assert np.bincount(benchmark.pool.groups, minlength=4).tolist() == [50, 50, 50, 50]


def test_too_few_rows_names_the_group_needed_and_available():
    scarce = {**PLENTY, (0, "water"): 25}
    with pytest.raises(ValidationError) as raised:
        build(synthetic_frame(scarce))
    message = str(raised.value)
    assert "'negative/water' needs 33 (pool 10 + id_test 3 + ood_test 20), available 25" in message
    assert "smaller pool_size" in message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rho": 0.4}, "rho must be in \\[0.5, 1\\]"),
        ({"rho": 1.2}, "rho must be in \\[0.5, 1\\]"),
        ({"pool_size": 0}, "pool_size must be a positive integer; got 0"),
        ({"id_test_size": 1}, "id_test_size must be at least 2"),
        ({"ood_test_per_group": -5}, "ood_test_per_group must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"attribute_codes": {"land": 0, "water": 1}}, "no code for \\['lake', 'sea'\\]"),
        ({"aligned_attribute": {0: 0}}, "aligned_attribute must map every label 0..1"),
        ({"attribute_column": "colour"}, "attribute_column='colour' is not a column"),
        ({"attribute_names": ("land",)}, "attribute_names must be two strings"),
    ],
)
def test_invalid_arguments_are_named_in_the_error(overrides, message):
    with pytest.raises(ValidationError, match=message):
        build(**overrides)


def test_shift_benchmark_trains_in_domain_and_tests_out_of_domain():
    benchmark = build_shift_benchmark(
        synthetic_frame(PLENTY),
        name="toy-shift",
        attribute_column="place",
        attribute_codes={"land": 0, "water": 1, "lake": 1, "sea": 1},
        class_names=CLASS_NAMES,
        attribute_names=ATTRIBUTE_NAMES,
        pool_size=300,
        id_test_size=100,
        ood_test_size=150,
        seed=0,
    )
    assert (len(benchmark.pool), len(benchmark.id_test), len(benchmark.ood_test)) == (300, 100, 150)
    assert set(benchmark.pool.groups) | set(benchmark.id_test.groups) <= {0, 2}
    assert set(benchmark.ood_test.groups) <= {1, 3}
    assert not set(benchmark.pool.ids) & set(benchmark.id_test.ids)


def test_unknown_benchmark_and_unknown_keyword_are_rejected():
    with pytest.raises(UnknownNameError, match="unknown benchmark 'waterbirds'; expected one of: .*vader-shift, vader-shortcut"):
        load_benchmark("waterbirds")
    with pytest.raises(ValidationError, match="unknown keyword\\(s\\) \\['pool'\\] .* pool_size, id_test_size"):
        load_benchmark("vader-shortcut", pool=10)


def test_registered_benchmarks_are_listed_with_descriptions():
    names = [name for name, _ in list_benchmarks()]
    assert names == sorted(names)
    assert {"vader-shift", "vader-shortcut", "rotten-tomatoes", "rotten-tomatoes-shortcut"} <= set(names)
    assert all(description for _, description in list_benchmarks())


@pytest.mark.real_data
def test_real_vader_shortcut_has_exact_rates_balanced_ood_and_disjoint_splits():
    benchmark = load_benchmark("vader-shortcut")
    rho, per_label = 0.95, 5000 // 2
    assert benchmark.group_names == (
        "negative/movie", "negative/review-or-tweet", "positive/movie", "positive/review-or-tweet",
    )
    pool_groups = np.bincount(benchmark.pool.groups, minlength=4)
    for label, aligned_group in ((0, 0), (1, 3)):
        assert (benchmark.pool.labels == label).sum() == per_label
        assert pool_groups[aligned_group] / per_label == round(rho * per_label) / per_label
    assert np.bincount(benchmark.ood_test.groups, minlength=4).tolist() == [250] * 4
    assert len(benchmark.id_test) == 1000
    ids = [set(split.ids) for split in (benchmark.pool, benchmark.id_test, benchmark.ood_test)]
    assert sum(map(len, ids)) == len(set.union(*ids)) == 5000 + 1000 + 1000


@pytest.mark.real_data
def test_real_vader_shift_pool_is_movie_and_ood_is_reviews_or_tweets():
    benchmark = load_benchmark("vader-shift", pool_size=2000, seed=1)
    assert all(identifier.startswith("movie:") for identifier in [*benchmark.pool.ids, *benchmark.id_test.ids])
    assert not any(identifier.startswith("movie:") for identifier in benchmark.ood_test.ids)
    assert (len(benchmark.pool), len(benchmark.id_test), len(benchmark.ood_test)) == (2000, 1000, 1000)


def test_shortcut_benchmark_names_its_minority_groups():
    rows = [(f"{label}-{attribute}-{i}", f"text {label} {attribute} {i}", label, attribute)
            for label in (0, 1) for attribute in ("a", "b") for i in range(30)]
    frame = pd.DataFrame(rows, columns=["id", "text", "label", "site"])
    benchmark = build_spurious_benchmark(
        frame, name="toy", attribute_column="site", attribute_codes={"a": 0, "b": 1}, aligned_attribute={0: 0, 1: 1},
        class_names=("neg", "pos"), attribute_names=("a", "b"), pool_size=20, id_test_size=10,
        ood_test_per_group=5, seed=0, rho=0.8,
    )
    assert [benchmark.group_names[g] for g in benchmark.minority_groups] == ["neg/b", "pos/a"]
    pool_minority = pd.Series(benchmark.pool.groups).isin(benchmark.minority_groups).mean()
    assert pool_minority == pytest.approx(0.2)
