"""The reference panel: the oracle-balanced sampler's exact group counts, the fits it scores
with the runs' evaluator, and its rows in the shape of the accuracy tables."""

import numpy as np
import pandas as pd
import pytest

from anchoral.errors import ValidationError
from anchoral.experiments import references
from anchoral.experiments.references import (
    ERM_ALL,
    ORACLE_BALANCED,
    PANEL_LABELS,
    balanced_group_counts,
    fit_reference,
    oracle_balanced_sample,
    panel_at_fractions,
    panel_fits,
)
from anchoral.experiments.report import METRIC_LABELS, PANEL_SEPARATOR, checkpoint_table_markdown
from tests.experiments import synthetic


@pytest.mark.parametrize("supply, size, expected", [
    ((100, 100, 100, 100), 40, (10, 10, 10, 10)),
    ((180, 3, 20, 180), 40, (13, 3, 12, 12)),  # group 1 gives its 3; 37 over three: 12 each, one more to the largest
    ((100, 2, 12, 100), 40, (13, 2, 12, 13)),  # 1 is short at 10 each, then 2 is short at 12 each
    ((50, 2, 5, 60), 40, (16, 2, 5, 17)),  # the odd one goes to the largest supply
    ((10, 0, 10), 6, (3, 0, 3)),  # a group absent from the pool gets nothing
    ((7, 1, 2), 10, (7, 1, 2)),  # the whole pool
    ((90, 10, 10, 90), 2, (1, 0, 0, 1)),  # fewer than one per group: the largest groups first
])
def test_balanced_counts_are_equal_as_far_as_each_groups_supply_allows(supply, size, expected):
    counts = balanced_group_counts(np.array(supply), size)
    assert tuple(counts) == expected
    assert counts.sum() == size and (counts <= np.array(supply)).all()


def test_a_balanced_sample_larger_than_the_pool_is_refused():
    with pytest.raises(ValidationError, match=r"size must be an integer in \[1, 12\] \(the pool's size\); got 13"):
        balanced_group_counts(np.array([6, 6]), 13)
    with pytest.raises(ValidationError, match="size must be an integer"):
        balanced_group_counts(np.array([6, 6]), 0)


def test_the_oracle_balanced_sample_draws_the_balanced_counts_from_the_true_groups():
    groups = np.repeat([0, 1, 2, 3], [180, 3, 20, 180])[np.random.default_rng(0).permutation(383)]
    sample = oracle_balanced_sample(groups, 40, np.random.default_rng(1))
    assert sample.size == np.unique(sample).size == 40 and (np.diff(sample) > 0).all()
    assert np.bincount(groups[sample], minlength=4).tolist() == [13, 3, 12, 12]
    assert np.array_equal(sample, oracle_balanced_sample(groups, 40, np.random.default_rng(1)))
    assert not np.array_equal(sample, oracle_balanced_sample(groups, 40, np.random.default_rng(2)))


def test_reference_fits_use_the_plain_head_and_score_with_the_runs_evaluator(monkeypatch):
    encoded = synthetic.encoded_benchmark()
    built = []

    def recording_make_model(name, n_classes, **params):
        built.append(params)
        return make_model(name, n_classes, **params)

    make_model = references.make_model
    monkeypatch.setattr(references, "make_model", recording_make_model)
    params = {"hidden_dim": 16, "max_epochs": 30, "head": "jtt", "groups": "errors", "n_folds": 2}
    erm = fit_reference(encoded, ERM_ALL, "mlp", params, seed=3)
    balanced = fit_reference(encoded, ORACLE_BALANCED, "mlp", params, seed=3, fraction=0.25)
    assert built == [{"seed": 3, "hidden_dim": 16, "max_epochs": 30}] * 2
    assert erm["n_labeled"] == erm["pool_size"] == 92 and erm["train_group_counts"] == [40, 6, 6, 40]
    assert balanced["n_labeled"] == 23 and balanced["train_group_counts"] == [6, 6, 5, 6]
    assert balanced["target_fraction"] == 0.25 and erm["target_fraction"] is None
    for row in (erm, balanced):
        assert {"id_accuracy", "ood_accuracy", "worst_group_accuracy", "ood_group_accuracy[negative/other]"} <= set(row)
        assert 0 <= row["worst_group_accuracy"] <= row["ood_accuracy"] <= 1
    assert erm["id_accuracy"] > 0.9  # the label is in feature 0: every pool label learns it


def test_a_reference_without_its_fraction_or_of_another_name_is_refused():
    encoded = synthetic.encoded_benchmark()
    with pytest.raises(ValidationError, match="reference must be 'erm-all'"):
        fit_reference(encoded, ORACLE_BALANCED, "mlp", {}, seed=0)
    with pytest.raises(ValidationError, match="got 'oracle'"):
        fit_reference(encoded, "oracle", "mlp", {}, seed=0, fraction=0.1)


def test_a_panel_is_erm_all_and_oracle_balanced_at_each_fraction_per_seed():
    assert panel_fits((0, 1), (0.05, 0.1)) == [
        (ERM_ALL, 0, None), (ORACLE_BALANCED, 0, 0.05), (ORACLE_BALANCED, 0, 0.1),
        (ERM_ALL, 1, None), (ORACLE_BALANCED, 1, 0.05), (ORACLE_BALANCED, 1, 0.1)]


def panel_rows() -> pd.DataFrame:
    """Two seeds: erm-all and oracle-balanced at 1% and 10% of a pool of 1000."""
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.1)):
        rows.append({"reference": ERM_ALL, "seed": seed, "target_fraction": None, "n_labeled": 1000,
                     "id_accuracy": 0.9 + shift / 2, "ood_accuracy": 0.7, "worst_group_accuracy": 0.5 + shift})
        for fraction, accuracy in ((0.01, 0.4), (0.1, 0.6)):
            rows.append({"reference": ORACLE_BALANCED, "seed": seed, "target_fraction": fraction,
                         "n_labeled": int(fraction * 1000), "id_accuracy": accuracy, "ood_accuracy": accuracy,
                         "worst_group_accuracy": accuracy - 0.2 + shift})
    return pd.DataFrame(rows).assign(benchmark_label="toy", model_label="mlp")


def test_erm_all_fills_every_fraction_column_and_oracle_balanced_its_own():
    table = panel_at_fractions(panel_rows(), (0.01, 0.05, 0.1), METRIC_LABELS)
    erm = table[table["strategy"] == PANEL_LABELS[ERM_ALL]]
    assert erm["fraction"].unique().tolist() == [0.01, 0.05, 0.1] and set(erm["n_labeled"]) == {1000}
    worst = erm[erm["metric"] == "worst_group_accuracy"]
    assert worst["mean"].tolist() == pytest.approx([0.55] * 3) and worst["std"].tolist() == pytest.approx(
        [0.1 / np.sqrt(2)] * 3)
    oracle = table[table["strategy"] == PANEL_LABELS[ORACLE_BALANCED]]
    assert oracle["fraction"].unique().tolist() == [0.01, 0.1]  # none drawn at 5%
    assert oracle.loc[oracle["metric"] == "id_accuracy", "n_labeled"].tolist() == [10, 100]


def test_the_reference_rows_sit_below_the_strategies_after_a_separator():
    strategies = pd.DataFrame([{"strategy": "random", "fraction": f, "n_labeled": int(f * 1000),
                                "metric": "id_accuracy", "mean": 0.5, "std": 0.0, "n_seeds": 2} for f in (0.01, 0.1)])
    panel = panel_at_fractions(panel_rows(), (0.01, 0.05, 0.1), METRIC_LABELS)
    lines = checkpoint_table_markdown(strategies, ("id_accuracy",), panel).splitlines()
    assert lines[0] == "| strategy | ID @1% | ID @5% | ID @10% |"
    assert lines[2] == "| random | 50.0 ± 0.0 | – | 50.0 ± 0.0 |"
    assert lines[3] == f"| {PANEL_SEPARATOR} |  |  |  |"
    assert lines[4] == "| erm-all (every pool label) | 92.5 ± 3.5 | 92.5 ± 3.5 | 92.5 ± 3.5 |"
    assert lines[5] == "| oracle-balanced (oracle) | 40.0 ± 0.0 | – | 60.0 ± 0.0 |"
