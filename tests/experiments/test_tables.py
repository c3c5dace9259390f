"""Each report table on a tiny hand-made results set, checked against hand computations."""

import math

import numpy as np
import pytest
from scipy import stats

from anchoral.experiments import tables
from tests.experiments import synthetic

RESULTS = synthetic.results()
SQRT2 = math.sqrt(2)


def cell(table, **where):
    rows = table
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, where
    return rows.iloc[0]


def test_table1_is_mean_and_sample_std_over_seeds_at_each_fraction():
    table = tables.accuracy_at_checkpoints(RESULTS, (0.01, 0.05, 0.10))
    row = cell(table, strategy="random", fraction=0.10, metric="id_accuracy")
    assert row["n_labeled"] == 100 and row["n_seeds"] == 2
    assert row["mean"] == pytest.approx(0.75) and row["std"] == pytest.approx(0.1 / SQRT2)
    row = cell(table, strategy="alvin", fraction=0.05, metric="worst_group_accuracy")
    assert row["mean"] == pytest.approx(0.35) and row["std"] == pytest.approx(0.1 / SQRT2)
    markdown = tables.accuracy_markdown(table, "toy")
    assert "| strategy | ID @1% | OOD @1% | worst-group @1% | ID @5% |" in markdown
    assert "| random | 50.0 ± 0.0 | 40.0 ± 0.0 | 10.0 ± 0.0 | 65.0 ± 7.1 |" in markdown


def test_table3_averages_each_run_over_its_selections_then_over_seeds():
    table = tables.batch_character(RESULTS)
    # random: seed 0 -> (0.2 + 0.4) / 2 = 0.3, seed 1 -> 0.5; mean 0.4, std 0.1 * sqrt(2).
    row = cell(table, strategy="random", measure="batch_uncertainty")
    assert row["mean"] == pytest.approx(0.4) and row["std"] == pytest.approx(0.1 * SQRT2)
    row = cell(table, strategy="alvin", measure="batch_diversity")  # 3.0 and 4.0
    assert row["mean"] == pytest.approx(3.5) and row["std"] == pytest.approx(1 / SQRT2)
    markdown = tables.batch_character_markdown(table, "toy")
    assert "| strategy | Unc. | Div. | Repr. |" in markdown
    assert "| alvin | 0.700 ± 0.141 | 3.500 ± 0.707 | 0.500 ± 0.000 |" in markdown


def test_table4_is_recall_per_round_for_strategies_that_infer_a_minority():
    table = tables.minority_recall_by_round(RESULTS)
    assert set(table["strategy"]) == {"alvin"}
    assert table["n_labeled"].tolist() == [10, 50]
    row = cell(table, n_labeled=10)
    assert row["recall_mean"] == pytest.approx(0.6) and row["recall_std"] == pytest.approx(0.1 * SQRT2)
    assert cell(table, n_labeled=50)["recall_mean"] == pytest.approx(0.9)
    assert "| alvin | 60.0 ± 14.1 | 90.0 ± 14.1 |" in tables.minority_recall_markdown(table, "toy")


def test_table6_is_seconds_per_selection_with_alvin_phases():
    table = tables.selection_time(RESULTS)
    row = cell(table, strategy="alvin")
    assert row["batch_size"] == 45  # batches of 40 and 50: the median
    assert row["n_selections"] == 4
    assert row["select_mean"] == pytest.approx(2.5) and row["select_std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert row["anchor_creation_mean"] == pytest.approx(0.625)
    assert row["example_selection_mean"] == pytest.approx(1.875)
    assert np.isnan(cell(table, strategy="random")["anchor_creation_mean"])
    assert "| alvin | 45 | 2.500 ± 1.291 | → 0.625 | → 1.875 | 0.500 |" in tables.selection_time_markdown(table, "toy")


def test_label_efficiency_uses_the_mean_curves():
    table = tables.label_efficiency_table(RESULTS, "random")
    # random ID mean curve (10, 50, 100) -> (0.50, 0.65, 0.75); alvin's -> (0.50, 0.80, 0.85).
    # alvin reaches 0.75 between 10 (0.50) and 50 (0.80): 10 + 40 * 0.25 / 0.30.
    row = cell(table, strategy="alvin", metric="id_accuracy")
    expected = 10 + 40 * 0.25 / 0.30
    assert row["target"] == pytest.approx(0.75) and row["baseline_labels"] == pytest.approx(100)
    assert row["strategy_labels"] == pytest.approx(expected) and row["multiplier"] == pytest.approx(100 / expected)
    # OOD: random ends at 0.60 and first reaches it at 100; alvin at 0.60 with 50 labels -> 2x.
    assert cell(table, strategy="alvin", metric="ood_accuracy")["multiplier"] == pytest.approx(2.0)
    assert "2.00× (50 vs 100)" in tables.label_efficiency_markdown(table, "toy")


def test_gains_are_paired_by_seed_with_a_t_interval():
    table = tables.final_gains(RESULTS, "random")
    row = cell(table, strategy="alvin", metric="worst_group_accuracy")
    # differences at the last round: 0.4 - 0.3 = 0.1 and 0.6 - 0.5 = 0.1 -> mean 0.1, no spread.
    assert row["gain_mean"] == pytest.approx(0.1) and row["gain_ci95"] == pytest.approx(0.0)
    row = cell(table, strategy="alvin", metric="ood_accuracy")  # 0.1 and 0.2
    assert row["gain_mean"] == pytest.approx(0.15)
    assert row["gain_ci95"] == pytest.approx(stats.t.ppf(0.975, 1) * (0.1 / SQRT2) / SQRT2)


def test_upsampling_is_taken_at_the_last_round():
    table = tables.upsampling_at_final(RESULTS)
    assert cell(table, strategy="alvin", group="negative/other")["mean"] == pytest.approx(3.0)
    assert cell(table, strategy="random", group="positive/movie")["mean"] == pytest.approx(0.9)
    assert set(table.loc[table["minority"], "group"]) == {"negative/other", "positive/movie"}
    markdown = tables.upsampling_markdown_table(table, "toy")
    assert "| strategy | negative/movie | negative/other (minority) | positive/movie (minority) |" in markdown
    assert "| alvin | 0.60 | 3.00 | 3.00 | 0.40 |" in markdown


def test_alvin_panels_sort_runs_into_variants_alpha_and_k():
    params = {"alvin": {}, "alvin-ran": {}, "alvin-uni": {}}
    frames = [synthetic.results(strategies=("alvin", "alvin-ran", "alvin-uni"), strategy_params=params)]
    for label, sweep in (("alvin(a)", {"alpha": 0.5, "beta": 0.5}), ("alvin(k5)", {"n_anchors_per_pair": 5}),
                         ("alvin(k25)", {"n_anchors_per_pair": 25})):
        frame = synthetic.results(strategies=("alvin",), strategy_params={"alvin": sweep})
        frames.append(frame.assign(strategy_label=label, run_id=frame["run_id"] + label))
    import pandas as pd

    panels = tables.alvin_panels(pd.concat(frames, ignore_index=True), "toy")
    assert list(dict.fromkeys(panels["variants"]["x"])) == ["alvin", "alvin-ran", "alvin-uni"]
    assert list(dict.fromkeys(panels["alpha"]["x"])) == ["(2, 2)", "(0.5, 0.5)"]
    assert list(dict.fromkeys(panels["k"]["x"])) == [5, 15, 25]
    row = cell(panels["k"], x=15, metric="ood_accuracy")
    assert row["mean"] == pytest.approx(0.75) and row["std"] == pytest.approx(0.1 / SQRT2)


def test_rho_sweeps_group_benchmarks_that_differ_only_in_rho():
    import pandas as pd

    frames = [synthetic.results(benchmark_label=f"toy(rho={rho})", rho=rho, accuracy_shift=shift)
              for rho, shift in ((0.9, 0.0), (0.99, 0.1))]
    results = pd.concat(frames, ignore_index=True)
    assert tables.rho_sweeps(results) == [["toy(rho=0.9)", "toy(rho=0.99)"]]
    points = tables.gain_vs_rho(results, ["toy(rho=0.9)", "toy(rho=0.99)"])
    gain = points[(points["metric"] == "worst_group_accuracy") & (points["strategy"] == "alvin")]
    assert gain.set_index("rho")["gain_mean"].to_dict() == pytest.approx({0.9: 0.1, 0.99: 0.2})
    upsampling = points[(points["metric"] == "minority_upsampling") & (points["strategy"] == "alvin")]
    assert upsampling["gain_mean"].tolist() == pytest.approx([3.0, 3.0])  # mean of (2+3)/2 and (4+3)/2


def test_with_several_models_each_strategy_is_read_against_random_under_its_own_model():
    two = RESULTS.copy()
    other = two.assign(strategy_label=two["strategy_label"] + " · linear",
                       run_id=two["run_id"].astype(str) + "-linear",
                       worst_group_accuracy=two["worst_group_accuracy"] + np.where(two["strategy"] == "alvin", 0.2, 0.0))
    two = two.assign(strategy_label=two["strategy_label"] + " · mlp", run_id=two["run_id"].astype(str) + "-mlp")
    both = __import__("pandas").concat([two, other], ignore_index=True)
    assert tables.has_baseline(both["strategy_label"], "random") and not tables.has_baseline(["alvin · mlp"], "random")
    assert tables.baseline_of("alvin · linear", "random", set(both["strategy_label"])) == "random · linear"
    gains = tables.final_gains(both, "random")
    assert set(gains["strategy"]) == {"alvin · mlp", "alvin · linear"}
    assert cell(gains, strategy="alvin · mlp", metric="worst_group_accuracy")["gain_mean"] == pytest.approx(0.1)
    assert cell(gains, strategy="alvin · linear", metric="worst_group_accuracy")["gain_mean"] == pytest.approx(0.3)
    efficiency = tables.label_efficiency_table(both, "random")
    assert set(efficiency["strategy"]) == {"alvin · mlp", "alvin · linear"}


def test_the_final_table_gives_a_t_interval_per_benchmark_and_the_panel_below():
    table = tables.accuracy_at_checkpoints(RESULTS, (0.01, 0.05, 0.10))
    row = cell(table, strategy="random", fraction=0.10, metric="id_accuracy")
    half = stats.t.ppf(0.975, 1) * (0.1 / SQRT2) / SQRT2
    assert tables.ci95_half_width(row["std"], 2) == pytest.approx(half)
    panel = table[(table["strategy"] == "random")].assign(strategy="erm-all (every pool label)")
    markdown = tables.final_ci_markdown(table, panel, "id_accuracy", 0.10)
    assert f"| random | 75.0 ± {100 * half:.1f} |" in markdown
    assert "| *reference panel* |  |" in markdown and f"| *erm-all (every pool label)* | 75.0 ± {100 * half:.1f} |" in markdown
    assert math.isnan(tables.ci95_half_width(0.1, 1))
