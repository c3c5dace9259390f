"""Agreement statistics against values worked out by hand (and the textbook examples they come from)."""

import json

import numpy as np
import pytest

from anchoral.store.agreement import (
    cohen_kappa,
    fleiss_kappa,
    pairwise_agreement,
    percent_agreement,
    rating_counts,
    specific_agreement,
    summarize,
)

# Fleiss (1971) as worked on Wikipedia ("Fleiss' kappa", worked example): 10 items, 14 raters each,
# 5 categories. P_bar = 0.378, P_e = 0.213, kappa = 0.210.
FLEISS_TABLE = np.array([
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
])


def pairs_from_table(table):
    """Rater pairs (first, second) from a contingency table of counts."""
    return [(first, second) for (first, second), count in np.ndenumerate(np.asarray(table)) for _ in range(count)]


def test_cohen_kappa_of_the_two_by_two_textbook_example():
    # Wikipedia ("Cohen's kappa", simple example): 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4.
    assert cohen_kappa(pairs_from_table([[20, 5], [10, 15]]), 2).value == pytest.approx(0.4)


def test_cohen_kappa_of_a_three_label_table():
    # 30 items; p_o = (8 + 6 + 9) / 30 = 23/30; rows 10/10/10, columns 10/8/12, so p_e = 1/3;
    # kappa = (23/30 - 10/30) / (20/30) = 13/20.
    table = [[8, 1, 1], [2, 6, 2], [0, 1, 9]]
    assert cohen_kappa(pairs_from_table(table), 3).value == pytest.approx(0.65)


def test_fleiss_kappa_of_the_textbook_example():
    kappa = fleiss_kappa(FLEISS_TABLE)
    assert kappa.value == pytest.approx(0.210, abs=5e-4)
    assert pairwise_agreement(FLEISS_TABLE).value == pytest.approx(0.378, abs=5e-4)


def test_fleiss_kappa_with_items_rated_by_different_numbers_of_raters():
    # Items rated [a, a], [a, b, b], [b, b, b]: pair agreement 1, 1/3, 1, mean 7/9;
    # ratings a 3 of 8, b 5 of 8: P_e = 9/64 + 25/64 = 17/32; kappa = (7/9 - 17/32) / (15/32) = 71/135.
    counts = rating_counts([{"x": 0, "y": 0}, {"x": 0, "y": 1, "z": 1}, {"x": 1, "y": 1, "z": 1}], 2)
    assert fleiss_kappa(counts).value == pytest.approx(71 / 135)
    assert pairwise_agreement(counts).value == pytest.approx(7 / 9)
    assert percent_agreement(counts).value == pytest.approx(2 / 3)


def test_fleiss_kappa_equals_scotts_pi_for_two_raters_and_ignores_items_rated_once():
    # Two raters, 4 items: (a,a), (a,b), (b,b), (b,b) and one item rated once. Pooled shares a 3/8, b 5/8,
    # P_e = 34/64; P_bar = 3/4; kappa = (3/4 - 17/32) / (15/32) = 7/15.
    counts = rating_counts([{"x": 0, "y": 0}, {"x": 0, "y": 1}, {"x": 1, "y": 1}, {"x": 1, "y": 1}, {"x": 0}], 2)
    assert fleiss_kappa(counts).value == pytest.approx(7 / 15)


def test_the_category_kappa_of_the_textbook_example():
    # Category 1 of the table, one against the rest: sum_i x_i (14 - x_i) = 2*12 + 7*7 + 3*11 + 2*12 + 6*8 = 178,
    # p = 20/140 = 1/7, so kappa_1 = 1 - 178 / (10 * 14 * 13 * (1/7) * (6/7)) = 1 - 178 * 49 / 10920.
    summary = summarize(ratings_of_table(FLEISS_TABLE), ["c1", "c2", "c3", "c4", "c5"])
    assert summary["statistic"] == "fleiss"
    assert summary["kappa"]["value"] == pytest.approx(0.210, abs=5e-4)
    assert summary["per_label"]["c1"]["kappa"]["value"] == pytest.approx(1 - 178 * 49 / 10920)


def ratings_of_table(table):
    """Per item {rater: category} with the counts of ``table`` (raters named r0, r1, ...)."""
    ratings = []
    for row in np.asarray(table):
        categories = [category for category, count in enumerate(row) for _ in range(count)]
        ratings.append({f"r{index}": category for index, category in enumerate(categories)})
    return ratings


def test_specific_agreement_is_2a_over_2a_plus_b_plus_c_for_two_raters():
    # yes: 2*20 / (2*20 + 5 + 10) = 40/55; no: 2*15 / (2*15 + 5 + 10) = 30/45.
    counts = rating_counts([{"a": first, "b": second} for first, second in pairs_from_table([[20, 5], [10, 15]])], 2)
    assert specific_agreement(counts, 0).value == pytest.approx(40 / 55)
    assert specific_agreement(counts, 1).value == pytest.approx(30 / 45)


def test_two_labelers_get_cohens_kappa_and_per_label_kappa_equal_to_it_for_two_labels():
    ratings = [{"alice": first, "bob": second} for first, second in pairs_from_table([[20, 5], [10, 15]])]
    summary = summarize(ratings, ["yes", "no"])
    assert summary["statistic"] == "cohen" and summary["raters"] == ["alice", "bob"]
    assert summary["kappa"] == {"value": pytest.approx(0.4), "reason": None}
    assert summary["percent_agreement"]["value"] == pytest.approx(0.7)
    assert summary["per_label"]["yes"]["kappa"]["value"] == pytest.approx(0.4)
    assert summary["per_label"]["no"]["specific_agreement"]["value"] == pytest.approx(30 / 45)
    assert summary["fleiss_kappa"]["value"] is not None


def test_three_labelers_two_per_item_get_fleiss_kappa_and_no_cohen():
    ratings = [{"alice": 0, "bob": 0}, {"bob": 1, "carol": 1}, {"alice": 0, "carol": 1}]
    summary = summarize(ratings, ["yes", "no"])
    assert summary["statistic"] == "fleiss" and summary["raters"] == ["alice", "bob", "carol"]
    assert summary["cohen_kappa"]["value"] is None and "exactly two labelers" in summary["cohen_kappa"]["reason"]
    # pooled shares 1/2, 1/2: P_e = 1/2; P_bar = 2/3; kappa = 1/3
    assert summary["kappa"]["value"] == pytest.approx(1 / 3)


def test_no_overlap_yet_is_undefined_with_a_reason_and_valid_json():
    summary = summarize([{"alice": 0}, {}], ["yes", "no"])
    assert summary["items"] == 0 and summary["statistic"] is None
    for key in ("kappa", "cohen_kappa", "fleiss_kappa", "percent_agreement", "pairwise_agreement"):
        assert summary[key]["value"] is None and summary[key]["reason"]
    assert summary["per_label"]["yes"]["kappa"]["value"] is None
    json.dumps(summary, allow_nan=False)


def test_a_single_label_used_by_everyone_gives_no_kappa_but_full_agreement():
    summary = summarize([{"alice": 1, "bob": 1}, {"alice": 1, "bob": 1}], ["yes", "no"])
    assert summary["kappa"]["value"] is None and "chance agreement is 1" in summary["kappa"]["reason"]
    assert summary["percent_agreement"]["value"] == 1.0
    assert summary["per_label"]["yes"]["kappa"]["reason"].startswith("nobody gave this label")
    assert summary["per_label"]["no"]["kappa"]["value"] is None
    assert summary["per_label"]["no"]["specific_agreement"]["value"] == 1.0
    json.dumps(summary, allow_nan=False)


def test_perfect_disagreement_gives_the_lowest_kappa():
    # (yes, no), (no, yes): p_o = 0, p_e = 1/2, kappa = -1.
    assert summarize([{"a": 0, "b": 1}, {"a": 1, "b": 0}], ["yes", "no"])["kappa"]["value"] == pytest.approx(-1.0)
