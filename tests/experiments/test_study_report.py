"""``anchoral report``: every table and figure written from a results store (hand-made rows)."""

import json
import sqlite3
import tomllib
from dataclasses import dataclass

import pandas as pd
import pytest

from anchoral.errors import AnchoralError
from anchoral.experiments.config import PanelFit, Variant, parse_config
from anchoral.experiments.references import ERM_ALL, ORACLE_BALANCED, PANEL_LABELS
from anchoral.experiments.report import PANEL_SEPARATOR
from anchoral.experiments.results import IncompatibleRunDirectory, ResultsStore
from anchoral.experiments.study_report import write_study_report
from tests.experiments import synthetic

CONFIG = """
[study]
name = "toy-study"
description = "Hand-made rows."
seeds = [0, 1]

[[benchmarks]]
name = "vader-shortcut"

[[strategies]]
name = "random"
"""


@dataclass
class StoredPlan:
    """What ResultsStore.add_run reads from a RunPlan."""

    run_id: str
    rows: list

    def key(self):
        row = self.rows[0]
        return {"benchmark": {"name": row["benchmark"], "params": json.loads(row["benchmark_params"]),
                              "encoder": row["encoder"], "encoder_params": {}},
                "strategy": {"name": row["strategy"], "params": json.loads(row["strategy_params"])},
                "seed": row["seed"]}

    def __getattr__(self, name):
        row = self.__dict__["rows"][0]
        labels = {"benchmark": row["benchmark_label"], "strategy": row["strategy_label"], "model": row["model_label"]}
        if name in labels:
            return type("Labelled", (), {"label": labels[name]})()
        if name == "seed":
            return row["seed"]
        raise AttributeError(name)


def store_with(rows: pd.DataFrame, run_dir) -> None:
    config = parse_config(tomllib.loads(CONFIG), source=CONFIG)
    store = ResultsStore.for_study(run_dir, config)
    for run_id, run_rows in rows.groupby("run_id", sort=False):
        records = run_rows.to_dict("records")
        assert store.add_run(StoredPlan(run_id, records), records, started_at=0.0, seconds=2.0, worker="test")
    store.log_invocation(jobs=1, n_runs=rows["run_id"].nunique(), n_already_done=0)


def store_panel(run_dir, benchmark_label: str) -> None:
    """Hand-made reference-panel fits of two seeds: erm-all (ID 90 / 95%) and oracle-balanced at
    1, 5 and 10% of the pool of 1000 (ID 40, 50, 60%, worst-group 20 points lower)."""
    store = ResultsStore.open(run_dir)
    benchmark = Variant("vader-shortcut", {"label": benchmark_label}, label=benchmark_label, encoder="minilm")
    for seed in (0, 1):
        fit = PanelFit(benchmark, Variant("mlp", {}), ERM_ALL, seed)
        store.add_panel_fit(fit, {"reference": ERM_ALL, "seed": seed, "target_fraction": None, "n_labeled": 1000,
                                  "id_accuracy": 0.9 + 0.05 * seed, "ood_accuracy": 0.8, "worst_group_accuracy": 0.6})
        for fraction, accuracy in ((0.01, 0.4), (0.05, 0.5), (0.1, 0.6)):
            fit = PanelFit(benchmark, Variant("mlp", {}), ORACLE_BALANCED, seed, fraction)
            store.add_panel_fit(fit, {"reference": ORACLE_BALANCED, "seed": seed, "target_fraction": fraction,
                                      "n_labeled": round(1000 * fraction), "id_accuracy": accuracy,
                                      "ood_accuracy": accuracy, "worst_group_accuracy": accuracy - 0.2})


def table_rows(text: str, heading: str) -> list[str]:
    """First cells of the Markdown table right under ``heading``."""
    lines = text.splitlines()
    start = lines.index(heading) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    frames = [synthetic.results(benchmark_label="toy(rho=0.9)", rho=0.9,
                                strategies=("random", "alvin", "alvin-ran", "alvin-uni"))]
    for label, sweep in (("alvin(K=5)", {"n_anchors_per_pair": 5}), ("alvin(Beta 0.5)", {"alpha": 0.5, "beta": 0.5})):
        frame = synthetic.results(benchmark_label="toy(rho=0.9)", rho=0.9, strategies=("alvin",),
                                  strategy_params={"alvin": sweep})
        frames.append(frame.assign(strategy_label=label, run_id=frame["run_id"] + label))
    frames.append(synthetic.results(benchmark_label="toy(rho=0.99)", rho=0.99, accuracy_shift=0.05))
    run_dir = tmp_path_factory.mktemp("report") / "run"
    store_with(pd.concat(frames, ignore_index=True), run_dir)
    for benchmark in ("toy(rho=0.9)", "toy(rho=0.99)"):
        store_panel(run_dir, benchmark)
    path = write_study_report(run_dir)
    return run_dir, path.read_text()


def test_the_report_has_every_table_section(report):
    _, text = report
    assert text.startswith("# Study `toy-study`")
    for heading in ("ALVIN Table 1", "Tamkin et al. Fig. 2", "Label efficiency against random", "Tamkin et al. Fig. 4",
                    "ALVIN Table 3", "ALVIN Table 4", "ALVIN Table 6", "ALVIN Fig. 2", "Gain over random by benchmark",
                    "Gain vs correlation strength rho"):
        assert heading in text, heading
    assert "| random | 50.0 ± 0.0 | 40.0 ± 0.0 | 10.0 ± 0.0 | 65.0 ± 7.1 |" in text
    assert "Machine time: 0.5 min summed over runs" in text


def test_every_table_is_written_as_csv(report):
    run_dir, _ = report
    written = {path.name for path in (run_dir / "tables").iterdir()}
    assert {"table1_accuracy.csv", "table3_batches.csv", "table4_minority_recall.csv", "table6_selection_time.csv",
            "label_efficiency.csv", "upsampling.csv", "gains.csv", "gain_vs_rho-1.csv"} <= written
    table1 = pd.read_csv(run_dir / "tables" / "table1_accuracy.csv")
    assert set(table1["benchmark"]) == {"toy(rho=0.9)", "toy(rho=0.99)"}


def test_every_figure_is_a_non_empty_png_linked_from_the_report(report):
    run_dir, text = report
    figures = sorted((run_dir / "figures").iterdir())
    names = {path.name for path in figures}
    assert {"learning_curves-toy_rho=0.9.png", "learning_curves-toy_rho=0.99.png", "upsampling-toy_rho=0.9.png",
            "alvin_sweeps-toy_rho=0.9.png", "gains_by_benchmark.png", "gain_vs_rho-1.png"} <= names
    for path in figures:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000, path.name
        assert f"figures/{path.name}" in text


def test_reporting_a_directory_that_is_not_a_run_directory_is_refused(tmp_path):
    with pytest.raises(IncompatibleRunDirectory, match="holds no results.sqlite"):
        write_study_report(tmp_path)


def test_reporting_an_empty_study_says_so(tmp_path):
    config = parse_config(tomllib.loads(CONFIG), source=CONFIG)
    ResultsStore.for_study(tmp_path / "run", config)
    with pytest.raises(AnchoralError, match="no finished run yet"):
        write_study_report(tmp_path / "run")


def test_the_accuracy_table_has_the_reference_panel_below_the_strategies(report):
    _, text = report
    rows = table_rows(text, "### toy(rho=0.99)")[2:]  # below the header
    assert [row.split(" | ")[0] for row in rows] == ["| random", "| alvin", f"| {PANEL_SEPARATOR}",
                                                     f"| {PANEL_LABELS[ERM_ALL]}", f"| {PANEL_LABELS[ORACLE_BALANCED]}"]
    every_column = " | ".join(["92.5 ± 3.5 | 80.0 ± 0.0 | 60.0 ± 0.0"] * 3)
    assert rows[-2] == f"| {PANEL_LABELS[ERM_ALL]} | {every_column} |"
    assert rows[-1] == (f"| {PANEL_LABELS[ORACLE_BALANCED]} | 40.0 ± 0.0 | 40.0 ± 0.0 | 20.0 ± 0.0 | 50.0 ± 0.0 | "
                        "50.0 ± 0.0 | 30.0 ± 0.0 | 60.0 ± 0.0 | 60.0 ± 0.0 | 40.0 ± 0.0 |")
    assert "It is an oracle: it needs the group of every pool example, which a user never has." in text
    assert "- Reference panel: 16 fits stored" in text


def test_the_reference_panel_is_not_counted_in_gains_or_label_efficiency(report):
    run_dir, text = report
    for name in ("gains.csv", "label_efficiency.csv", "table1_accuracy.csv"):
        strategies = set(pd.read_csv(run_dir / "tables" / name)["strategy"])
        assert not strategies & {ERM_ALL, ORACLE_BALANCED, *PANEL_LABELS.values()}, name
    gains = text[text.index("## Gain over random by benchmark"):]
    efficiency = text[text.index("## Label efficiency"):text.index("## Per-group upsampling")]
    for section in (gains, efficiency):
        assert ERM_ALL not in section and ORACLE_BALANCED not in section
    panel = pd.read_csv(run_dir / "tables" / "table1_reference_panel.csv")
    assert set(panel["strategy"]) == set(PANEL_LABELS.values()) and len(panel) == 2 * 2 * 3 * 3


def test_a_run_directory_without_a_panel_or_random_says_so(tmp_path):
    run_dir = tmp_path / "run"
    store_with(synthetic.results(strategies=("alvin",)), run_dir)
    with sqlite3.connect(run_dir / "results.sqlite") as connection:  # as written before the panel existed
        connection.execute("DROP TABLE reference_panel")
    text = write_study_report(run_dir).read_text()
    assert "No reference panel is stored in this run directory" in text and PANEL_SEPARATOR not in text
    assert "random was not among the strategies" in text
