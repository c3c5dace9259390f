"""The grid runner on real data (VADER sentences, hashing encoder, small MLP): resuming after
a real SIGKILL, refusing incompatible run directories, and parallel workers."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from anchoral.experiments import runner as study_runner
from anchoral.experiments.commands import register
from anchoral.experiments.config import ConfigError, load_config
from anchoral.experiments.results import IncompatibleRunDirectory, ResultsStore
from anchoral.experiments.runner import run_study
from anchoral.experiments.study_report import write_study_report

pytestmark = pytest.mark.real_data

CONFIG = """
[study]
name = "resume"
seeds = [0, 1, 2]

[loop]
batch_size = 10
budget = 40
seed_size = 10
checkpoints = []

[model]
name = "mlp"
params = { max_epochs = 20, hidden_dim = 32 }

[[benchmarks]]
name = "vader-shortcut"
params = { pool_size = 200, id_test_size = 60, ood_test_per_group = 15, rho = 0.9 }
encoder = "hashing"

[[strategies]]
name = "random"

[[strategies]]
name = "entropy"

[[strategies]]
name = "alvin"
"""
N_RUNS, N_ROUNDS = 9, 4
RUN_COMMAND = (
    "import sys, typer; from anchoral.experiments.commands import register; "
    "app = typer.Typer(); register(app); app(sys.argv[1:])"
)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "study.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def finished(config_path, tmp_path_factory):
    """The study run to the end once, in this process."""
    out = tmp_path_factory.mktemp("finished") / "run"
    summary = run_study(load_config(config_path), out, jobs=1, progress=False)
    assert summary.n_completed == N_RUNS
    return out


def child(config_path: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUN_COMMAND, "run", str(config_path), "--out", str(out), "--no-progress", "--no-report"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def finished_runs(out: Path) -> int:
    """Runs stored so far, read without ever creating the file (read-only URI)."""
    path = out / "results.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as connection:
            return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error:  # created but not yet initialised
        return 0


def snapshot(out: Path) -> dict:
    with sqlite3.connect(out / "results.sqlite") as connection:
        runs = dict(connection.execute("SELECT run_id, finished_at FROM runs"))
        rounds = connection.execute("SELECT run_id, round, record FROM rounds").fetchall()
    return {"runs": runs, "rounds": rounds}


def test_a_run_killed_with_sigkill_resumes_without_losing_or_duplicating_results(config_path, tmp_path):
    out = tmp_path / "run"
    process = child(config_path, out)
    deadline = time.monotonic() + 300
    while finished_runs(out) < 2:
        assert process.poll() is None, f"the run ended before it could be killed:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "no run finished within 300 s"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # at once: a run of this grid takes tens of milliseconds
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    before = snapshot(out)
    assert 2 <= len(before["runs"]) < N_RUNS
    assert len(before["rounds"]) == N_ROUNDS * len(before["runs"])  # every stored run is whole

    resumed = child(config_path, out)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert f"{len(before['runs'])} already done (skipped), {N_RUNS - len(before['runs'])} to run" in output

    after = snapshot(out)
    assert len(after["runs"]) == N_RUNS
    keys = [(run_id, round_number) for run_id, round_number, _ in after["rounds"]]
    assert len(keys) == len(set(keys)) == N_RUNS * N_ROUNDS
    for run_id, finished_at in before["runs"].items():  # finished runs were kept, not redone
        assert after["runs"][run_id] == finished_at
    assert set(before["rounds"]) <= set(after["rounds"])
    invocations = ResultsStore.open(out).invocations()
    assert invocations["n_already_done"].tolist() == [0, len(before["runs"])]

    again = child(config_path, out)
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0 and f"{N_RUNS} already done (skipped), 0 to run" in output


def test_parallel_workers_store_the_same_results_as_one_process(config_path, finished, tmp_path):
    parallel = run_study(load_config(config_path), tmp_path / "parallel", jobs=2, progress=False)
    assert parallel.n_completed == N_RUNS

    def by_round(out):
        frame = ResultsStore.open(out).load_results()
        return frame.set_index(["run_id", "round"]).sort_index()

    one, two = by_round(finished), by_round(tmp_path / "parallel")
    for column in ("id_accuracy", "ood_accuracy", "worst_group_accuracy", "batch_diversity", "batch_uncertainty"):
        assert one[column].equals(two[column]), column
    assert one["selected"].map(json.dumps).equals(two["selected"].map(json.dumps))
    assert set(ResultsStore.open(tmp_path / "parallel").runs()["worker"]) != {f"pid {os.getpid()}"}


def test_rows_carry_the_table3_measures_and_minority_upsampling(finished):
    results = ResultsStore.open(finished).load_results()
    selecting = results[results["selected"].map(len) > 0]
    assert selecting[["batch_uncertainty", "batch_diversity", "batch_representativeness"]].notna().all().all()
    assert (selecting["batch_uncertainty"] > 0).all()  # cross-fitted reference: not memorised
    assert json.loads(results["minority_groups"].iloc[0]) == ["negative/review-or-tweet", "positive/movie"]
    assert set(results["benchmark_label"]) == {"vader-shortcut"}
    assert results.groupby("run_id").size().eq(N_ROUNDS).all()


def counted_reference_fits(monkeypatch) -> list:
    """Record the (reference, seed, fraction) of every reference-panel fit the runner makes."""
    fits = []
    fit_reference = study_runner.fit_reference

    def counting(encoded, reference, model, model_params, seed, fraction=None, **options):
        fits.append((reference, seed, fraction))
        return fit_reference(encoded, reference, model, model_params, seed, fraction, **options)

    monkeypatch.setattr(study_runner, "fit_reference", counting)
    return fits


def panel_snapshot(out: Path) -> list:
    with sqlite3.connect(out / "results.sqlite") as connection:
        return connection.execute("SELECT * FROM reference_panel ORDER BY fit_id").fetchall()


def test_the_reference_panel_is_stored_once_and_not_refitted_on_resume(config_path, finished, tmp_path,
                                                                        monkeypatch):
    panel = ResultsStore.open(finished).load_panel()
    # Per seed: erm-all on the pool of 200, oracle-balanced at the default 1, 5 and 10% (2, 10, 20 labels).
    assert sorted(zip(panel["reference"], panel["seed"], panel["n_labeled"])) == sorted(
        [("erm-all", seed, 200) for seed in (0, 1, 2)]
        + [("oracle-balanced", seed, n) for seed in (0, 1, 2) for n in (2, 10, 20)])
    balanced = panel[panel["n_labeled"] == 20]
    assert balanced["train_group_counts"].map(list).tolist() == [[5, 5, 5, 5]] * 3
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = panel_snapshot(out)
    fits = counted_reference_fits(monkeypatch)
    assert run_study(load_config(config_path), out, progress=False).n_skipped == N_RUNS
    assert fits == [] and panel_snapshot(out) == before


def test_a_directory_from_before_the_panel_gains_it_on_resume_without_rerunning_runs(config_path, finished,
                                                                                      tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    with sqlite3.connect(out / "results.sqlite") as connection:
        connection.execute("DROP TABLE reference_panel")
    assert "No reference panel is stored" in write_study_report(out).read_text()
    fits = counted_reference_fits(monkeypatch)
    summary = run_study(load_config(config_path), out, progress=False)
    assert summary.n_completed == 0 and summary.n_skipped == N_RUNS and len(fits) == 3 * 4
    report = write_study_report(out).read_text()
    assert "| erm-all (every pool label) |" in report and "| oracle-balanced (oracle) |" in report


def test_a_directory_of_another_study_or_format_is_refused(config_path, finished, tmp_path):
    config = load_config(config_path)
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    assert run_study(config, out, progress=False).n_skipped == N_RUNS
    changed = tmp_path / "changed.toml"
    changed.write_text(CONFIG.replace("seeds = [0, 1, 2]", "seeds = [0, 1]"))
    with pytest.raises(IncompatibleRunDirectory, match="different study config"):
        run_study(load_config(changed), out, progress=False)
    with sqlite3.connect(out / "results.sqlite") as connection:
        connection.execute("UPDATE meta SET value = '0' WHERE key = 'format_version'")
    with pytest.raises(IncompatibleRunDirectory, match="format '0'"):
        run_study(config, out, progress=False)
    with pytest.raises(IncompatibleRunDirectory, match="format '0'"):
        ResultsStore.open(out)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(IncompatibleRunDirectory, match="not an anchoral run directory"):
        run_study(config, stranger, progress=False)


def test_a_config_that_only_adds_runs_extends_the_directory_and_runs_only_the_new_ones(config_path, finished,
                                                                                        tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    wider = tmp_path / "wider.toml"
    wider.write_text(CONFIG.replace("[[strategies]]\nname = \"random\"",
                                    "[[strategies]]\nname = \"margin\"\n\n[[strategies]]\nname = \"random\""))
    summary = run_study(load_config(wider), out, progress=False)
    assert summary.n_skipped == N_RUNS and summary.n_completed == 3  # margin x 3 seeds, nothing rerun
    assert "margin" in (out / "config.toml").read_text()
    assert run_study(load_config(wider), out, progress=False).n_completed == 0  # the wider config is now its own
    with pytest.raises(IncompatibleRunDirectory, match=r"3 stored run\(s\) and 0 panel fit\(s\) are not in this config"):
        run_study(load_config(config_path), out, progress=False)  # the narrower one would orphan the margin runs


def test_a_value_that_does_not_fit_the_data_is_rejected_before_any_run(config_path, tmp_path):
    path = tmp_path / "too_big.toml"
    path.write_text(CONFIG.replace("budget = 40", "budget = 5000"))
    with pytest.raises(ConfigError, match=r"loop does not fit benchmarks\[0\]"):
        run_study(load_config(path), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    path.write_text(CONFIG.replace("rho = 0.9", "rho = 1.5"))
    with pytest.raises(ConfigError, match=r"benchmarks\[0\] \(vader-shortcut\): rho must be in"):
        run_study(load_config(path), tmp_path / "run", progress=False)


def test_the_commands_run_and_report(config_path, finished, tmp_path):
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    result = runner.invoke(app, ["run", str(config_path), "--out", str(out), "--no-progress", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "0 run(s) finished" in result.output and "9 skipped" in result.output and (out / "report.md").exists()
    (out / "report.md").unlink()
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").read_text().startswith("# Study `resume`")
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.replace('name = "alvin"', 'name = "alvn"'))
    result = runner.invoke(app, ["run", str(bad), "--out", str(tmp_path / "bad")])
    assert isinstance(result.exception, ConfigError)
    assert "strategies[2].name: unknown strategy 'alvn'" in str(result.exception)
    assert not (tmp_path / "bad").exists()


def test_runs_keep_f_enc_of_the_balanced_probing_set_at_the_budget(finished):
    store = ResultsStore.open(finished)
    runs = store.runs()
    key = json.dumps(json.loads(runs["spec"].iloc[0])["benchmark"], sort_keys=True, separators=(",", ":"))
    probing = store.benchmark_data(key, "probing_set")
    cells = list(zip(probing["labels"].tolist(), probing["attributes"].tolist()))
    assert len(set(cells)) == 4 and len({cells.count(cell) for cell in set(cells)}) == 1  # balanced
    assert store.benchmark_data(key, "pool_features").shape == (200, 256)
    for run_id in runs["run_id"]:
        snapshots = store.representations(run_id)
        assert list(snapshots) == [40]  # no checkpoints: the budget only
        assert snapshots[40].shape == (len(cells), 32) and snapshots[40].dtype.name == "float16"
    fit_ids = store.panel_fit_ids()
    assert fit_ids and all(store.panel_representation(fit_id).shape == (len(cells), 32) for fit_id in fit_ids)
