"""Analyses of stored representations in `anchoral report`, on a small real study (VADER sentences,
hashing encoder, small MLP): the shortcut-extractability table, the map of acquisitions, their
caches, and one-line errors that leave the run directory as it was."""

import shutil
import sqlite3

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from anchoral.errors import AnchoralError
from anchoral.experiments import analyses
from anchoral.experiments.commands import register
from anchoral.experiments.config import load_config
from anchoral.experiments.results import ResultsStore
from anchoral.experiments.runner import run_study
from anchoral.experiments.study_report import MapRequest, write_study_report
from anchoral.metrics.mdl import online_codelength

pytestmark = pytest.mark.real_data

CONFIG = """
[study]
name = "analyses"
seeds = [0, 1]

[loop]
batch_size = 20
budget = 100
seed_size = 10
checkpoints = [60]

[model]
name = "mlp"
params = { max_epochs = 20, hidden_dim = 32 }

[[benchmarks]]
name = "vader-shortcut"
params = { pool_size = 400, id_test_size = 100, ood_test_per_group = 500, rho = 0.9 }
encoder = "hashing"

[[strategies]]
name = "random"

[[strategies]]
name = "alvin"
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "analyses.toml"
    path.write_text(CONFIG)
    out = tmp_path_factory.mktemp("analyses") / "run"
    run_study(load_config(path), out, jobs=1, progress=False)
    return out


def copy_of(run_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(run_dir, target)
    return target


def snapshot(run_dir):
    """Every file the report could write (all but the SQLite store, which reading touches) with its bytes."""
    return {path.relative_to(run_dir): path.read_bytes() for path in sorted(run_dir.rglob("*"))
            if path.is_file() and not path.name.startswith("results.sqlite")}


def test_report_tables_shortcut_extractability_per_strategy_and_fraction_with_the_panel(study, tmp_path):
    run_dir = copy_of(study, tmp_path)
    report = write_study_report(run_dir).read_text()
    section = report.split("## Shortcut extractability (ALVIN Table 5)")[1].split("\n## ")[0]
    for row in ("| random | 15% (60) |", "| random | 25% (100) |", "| alvin | 25% (100) |",
                "| erm-all (every pool label) | all (400) |",
                "| frozen encoder features (before any training) | none (0) |"):
        assert row in section
    store = ResultsStore.open(run_dir)
    frame, reasons, cost = analyses.extractability(store, store.load_results())
    assert reasons == {} and cost.cached == cost.count  # the report filled the cache
    strategies = frame[~frame["reference"]]
    assert len(strategies) == 2 * 2 * 2  # strategies x seeds x stored checkpoints
    assert (strategies["n"] == 2020).all()  # 4 groups x 505 (25 + 480 per minority group... the smallest)
    assert ((strategies["compression"] > 0.5) & (strategies["compression"] < 3)).all()
    np.testing.assert_allclose(strategies["uniform"], 2020.0)
    assert (run_dir / "tables" / "table5_extractability_linear.csv").exists()
    frozen = frame[frame["strategy"] == analyses.FROZEN_LABEL]
    assert len(frozen) == 1 and frozen["n"].item() == 2020  # one per benchmark, on the same probing set
    # the stored probing features are the frozen encoder's: one pool-side check of that, via the
    # benchmark's own encoding of the probing rows
    from anchoral.experiments.encoded import encode_benchmark
    from anchoral.experiments.probing import probing_set
    from anchoral.data.benchmarks import load_benchmark
    from anchoral.encoders.registry import make_encoder
    key = analyses.benchmark_key_of(store.runs()["spec"].iloc[0])
    stored = store.benchmark_data(key, "probing_features")
    encoded = encode_benchmark(load_benchmark("vader-shortcut", pool_size=400, id_test_size=100,
                                              ood_test_per_group=500, rho=0.9), make_encoder("hashing"), progress=False)
    np.testing.assert_allclose(stored.astype(np.float32), probing_set(encoded).features, rtol=2e-3, atol=1e-4)


def test_mlp_probe_has_its_own_cache_and_table(study, tmp_path, monkeypatch):
    run_dir = copy_of(study, tmp_path)
    probes = []

    def quick(representation, targets, *, probe):  # the MLP probe's own codes are tested in tests/metrics
        probes.append(probe)
        return online_codelength(representation, targets, probe="linear")

    monkeypatch.setattr(analyses, "online_codelength", quick)
    write_study_report(run_dir, probe="mlp", map_request=MapRequest(draw=False))
    assert set(probes) == {"mlp"}
    assert len(list((run_dir / "cache").glob("mdl-mlp-*.json"))) == 1
    assert not list((run_dir / "cache").glob("mdl-linear-*.json"))
    assert "mlp probe" in (run_dir / "report.md").read_text()


def test_the_map_is_drawn_once_per_run_directory_then_read_from_the_cache(study, tmp_path):
    run_dir = copy_of(study, tmp_path)
    write_study_report(run_dir, map_request=MapRequest(seed=0, fraction=0.15, required=True))
    assert (run_dir / "figures" / "map-vader-shortcut.png").stat().st_size > 10_000
    cached = list((run_dir / "cache").glob("map-tsne-*.npz"))
    assert len(cached) == 1
    report = (run_dir / "report.md").read_text()
    assert "seed 0, at 60 labels" in report
    store = ResultsStore.open(run_dir)
    key = analyses.benchmark_key_of(store.runs()["spec"].iloc[0])
    coordinates, _, from_cache = analyses.pool_map(store, key)
    assert from_cache and coordinates.shape == (400, 2)
    panels = analyses.map_panels(store.load_results(), "vader-shortcut", 0, 60)
    assert [panel.strategy for panel in panels] == ["random", "alvin"]
    assert all(panel.acquired.size == 50 and panel.seed_indices.size == 10 for panel in panels)
    assert panels[0].anchor_landing.size == 0 and panels[1].anchor_landing.size > 0


def _drop_one_seed_set(run_dir):
    """Rewrite one run's first round as a run stored before seed sets were kept."""
    import json

    with sqlite3.connect(run_dir / "results.sqlite") as connection:
        run_id, record = connection.execute("SELECT run_id, record FROM rounds WHERE round = 0 LIMIT 1").fetchone()
        row = json.loads(record)
        row.pop("seed_indices")
        connection.execute("UPDATE rounds SET record = ? WHERE run_id = ? AND round = 0", (json.dumps(row), run_id))


def test_a_run_without_a_seed_set_leaves_the_map_out_and_the_rest_of_the_report_is_written(study, tmp_path):
    run_dir = copy_of(study, tmp_path)
    _drop_one_seed_set(run_dir)
    report = write_study_report(run_dir).read_text()
    section = report.split("## What each strategy acquires")[1].split("\n## ")[0]
    assert "No map:" in section and "'vader-shortcut'" in section
    assert not (run_dir / "figures" / "map-vader-shortcut.png").exists()
    assert "## Cost of the analyses" in report  # written to the end
    with pytest.raises(AnchoralError, match="no stored representations"):  # and a required map says why
        write_study_report(run_dir, map_request=MapRequest(required=True))


def test_a_required_map_of_a_directory_without_representations_is_one_line_and_writes_nothing(study, tmp_path):
    run_dir = copy_of(study, tmp_path)
    with sqlite3.connect(run_dir / "results.sqlite") as connection:
        connection.execute("DELETE FROM benchmark_data")
    before = snapshot(run_dir)
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["report", str(run_dir), "--map"])
    assert isinstance(result.exception, AnchoralError)
    message = str(result.exception)
    assert "\n" not in message and "no stored representations" in message and "'vader-shortcut'" in message
    assert snapshot(run_dir) == before
    # not asked for explicitly: the report says why there is no map or table, and goes on
    report = write_study_report(run_dir).read_text()
    assert "No map: " in report and "Not computed: no probing set is stored" in report


@pytest.mark.parametrize("options, message", [
    ({"probe": "svm"}, "--probe must be one of linear, mlp"),
    ({"map_request": MapRequest(method="pca")}, "--map-method must be one of tsne, umap"),
    ({"map_request": MapRequest(seed=7)}, "--map-seed 7 is not a seed"),
    ({"map_request": MapRequest(fraction=0.5)}, "has 200 labels"),
])
def test_bad_report_options_fail_before_anything_is_written(study, tmp_path, options, message):
    run_dir = copy_of(study, tmp_path)
    before = snapshot(run_dir)
    with pytest.raises(AnchoralError, match=message):
        write_study_report(run_dir, **options)
    assert snapshot(run_dir) == before


def test_a_probing_set_too_small_for_the_schedule_is_reported_in_one_line(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(CONFIG.replace("ood_test_per_group = 500", "ood_test_per_group = 40").replace(
        'name = "alvin"', 'name = "entropy"'))
    out = tmp_path / "run"
    run_study(load_config(path), out, jobs=1, progress=False)
    report = write_study_report(out, map_request=MapRequest(draw=False)).read_text()
    line = next(line for line in report.splitlines() if line.startswith("Not computed:"))
    assert "first block of the MDL schedule holds 0 example(s)" in line and "at least 2000 examples" in line


def test_umap_is_the_optional_second_map_method(study):
    pytest.importorskip("umap")
    features = ResultsStore.open(study).benchmark_data(
        analyses.benchmark_key_of(ResultsStore.open(study).runs()["spec"].iloc[0]), "pool_features")
    coordinates = analyses.embed_2d(np.asarray(features, dtype=np.float32), method="umap")
    assert coordinates.shape == (400, 2) and np.isfinite(coordinates).all()


def test_uncertainty_overlap_counts_shared_picks_per_pair_first_batch_and_later():
    import pandas as pd

    def run(strategy, seed, batches):
        return [{"benchmark_label": "b", "model_label": "mlp", "strategy_label": strategy, "seed": seed,
                 "round": r, "selected": list(batch)} for r, batch in enumerate(batches)]

    rows = (run("least-confidence", 0, [[1, 2, 3, 4], [10, 11, 12, 13], []])
            + run("entropy", 0, [[1, 2, 3, 9], [10, 20, 21, 22], []])
            + run("margin", 0, [[7, 8, 9, 1], [30, 31, 32, 33], []])
            + run("random", 0, [[1, 2, 3, 4], [10, 11, 12, 13], []])
            + run("entropy", 1, [[5, 6], [7, 8]]))  # a seed with one measure only: no pair
    frame = analyses.uncertainty_overlap(pd.DataFrame(rows))
    got = {(row.pair, row.first_batch, row.later_min, row.later_max) for row in frame.itertuples()}
    assert got == {("least-confidence & entropy", 3, 1, 1), ("least-confidence & margin", 1, 0, 0),
                   ("entropy & margin", 2, 0, 0)}
    table = analyses.uncertainty_overlap_markdown(frame, "b")
    assert "| 0 | 3 of 4 (later: 1-1) | 1 of 4 (later: 0-0) | 2 of 4 (later: 0-0) |" in table
    assert analyses.uncertainty_overlap(pd.DataFrame(run("entropy", 0, [[1, 2]]))).empty
