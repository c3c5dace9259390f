"""A short real loop: real VADER sentences, real MiniLM features, real MLP head, two rounds;
and the reference panel on the same benchmark."""

import json

import numpy as np
import pandas as pd
import pytest

from anchoral.data.benchmarks import load_benchmark
from anchoral.experiments.encoded import encode_benchmark
from anchoral.experiments.references import PANEL_LABELS, fit_reference, panel_at_fractions, panel_fits
from anchoral.experiments.report import METRIC_LABELS
from anchoral.experiments.simulate import RunSpec, simulate
from anchoral.loop import LoopConfig

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def encoded():
    benchmark = load_benchmark("vader-shortcut", pool_size=300, id_test_size=100, ood_test_per_group=25, rho=0.9)
    return encode_benchmark(benchmark, progress=False)


def test_real_loop_records_rounds_and_metrics(encoded):
    spec = RunSpec(strategy="entropy", seed=0, loop=LoopConfig(batch_size=20, budget=44, seed_size=4, checkpoints=()))
    rows = simulate(encoded, spec)
    assert [row["n_labeled"] for row in rows] == [4, 24, 44]
    assert [len(row["selected"]) for row in rows] == [20, 20, 0]
    pool_labels = encoded.benchmark.pool.labels
    for row in rows:
        for metric in ("id_accuracy", "ood_accuracy", "worst_group_accuracy"):
            assert 0 <= row[metric] <= 1
        assert row["worst_group_accuracy"] <= row["ood_accuracy"]
        assert row["stop_reason"] in {"loss_ratio", "epoch_cap"}
        assert row["fit_seconds"] > 0
        json.loads(row["diagnostics"])
    # With 44 real labels the head beats chance in distribution.
    assert rows[-1]["id_accuracy"] > 0.6
    selected = rows[0]["selected"] + rows[1]["selected"]
    assert len(set(selected)) == 40
    # Upsampling ratios are defined for every group present in the pool and average to 1 over acquisitions.
    names = encoded.benchmark.group_names
    pool_share = np.bincount(encoded.benchmark.pool.groups, minlength=len(names)) / len(pool_labels)
    ratios = np.array([rows[-1][f"upsampling[{name}]"] for name in names])
    assert np.nansum(ratios * pool_share) == pytest.approx(1.0)


def test_strategies_share_the_seed_set_and_runs_are_reproducible(encoded):
    loop = LoopConfig(batch_size=10, budget=24, seed_size=4, checkpoints=())
    random_rows = simulate(encoded, RunSpec(strategy="random", seed=3, loop=loop))
    entropy_rows = simulate(encoded, RunSpec(strategy="entropy", seed=3, loop=loop))
    again = simulate(encoded, RunSpec(strategy="entropy", seed=3, loop=loop))
    assert random_rows[0]["id_accuracy"] == entropy_rows[0]["id_accuracy"]  # same seed set, same initial weights
    assert [r["selected"] for r in entropy_rows] == [r["selected"] for r in again]
    assert [r["ood_accuracy"] for r in entropy_rows] == [r["ood_accuracy"] for r in again]


def test_the_reference_panel_on_real_data_has_sane_erm_all_and_oracle_balanced_rows(encoded):
    fractions = (0.05, 0.10)
    panel = pd.DataFrame([fit_reference(encoded, reference, "mlp", {}, seed, fraction)
                          for reference, seed, fraction in panel_fits((0,), fractions)])
    table = panel_at_fractions(panel.assign(benchmark_label="vader-shortcut", model_label="mlp"), fractions,
                               METRIC_LABELS)
    assert set(table["strategy"]) == set(PANEL_LABELS.values()) and len(table) == 2 * len(fractions) * 3
    for row in panel.itertuples():
        assert 0 <= row.worst_group_accuracy <= row.ood_accuracy <= 1 and 0 <= row.id_accuracy <= 1
    erm, *balanced = panel.to_dict("records")
    assert erm["n_labeled"] == 300 and erm["id_accuracy"] > 0.8  # every pool label, in distribution
    pool_groups = np.bincount(encoded.benchmark.pool.groups)
    for row, size in zip(balanced, (15, 30)):
        counts = np.array(row["train_group_counts"])
        assert row["n_labeled"] == counts.sum() == size and counts.max() - counts.min() <= 1
        assert pool_groups.min() > counts.max()  # every group could give its share
        assert row["id_accuracy"] > 0.5


def test_a_robust_heads_group_inference_is_scored_against_the_true_groups_every_round(encoded):
    loop = LoopConfig(batch_size=20, budget=64, seed_size=4, checkpoints=())
    spec = RunSpec(strategy="random", seed=0, loop=loop, model="linear",
                   model_params={"head": "group-reweight", "groups": "clusters"})
    rows = simulate(encoded, spec)
    scored = [row for row in rows if not np.isnan(row.get("head_minority_recall", np.nan))]
    assert scored, "no round had a truly-minority labeled example to score"
    for row in scored:
        assert 0 <= row["head_minority_recall"] <= 1 and row["head_groups"] == "clusters"
    assert rows[-1]["trained_head"] in {"group-reweight", "plain"}
