"""The project commands, driven through typer as a user types them (fast hashing encoder;
the real-MiniLM workflow is in test_workflow_real.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from anchoral.store import Project, ProjectError
from anchoral.store.commands import register
from tests.store.fakes import HashingEncoder, write_pool

ANCHORAL = str(Path(sys.executable).with_name("anchoral"))
@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setattr("anchoral.store.rounds.MiniLMEncoder", HashingEncoder)
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(app, [str(a) for a in args])
        if ok and result.exit_code != 0:
            raise AssertionError(f"{args} failed: {result.output}\n{result.exception!r}")
        return result

    return run


def simulate_label_studio(batch_file: Path, truth: dict, out: Path) -> None:
    tasks = json.loads(batch_file.read_text())
    out.write_text(json.dumps([
        {"id": k, "data": t["data"], "annotations": [
            {"completed_by": 3, "result": [{"type": "choices", "value": {"choices": [truth[t["data"]["anchoral_id"]]]}}]}]}
        for k, t in enumerate(tasks, start=1)
    ]))


def test_init_query_label_export_status(tmp_path, cli):
    frame = write_pool(tmp_path / "pool.csv", 60, labeled=0)
    truth = dict(zip(frame["id"], frame["truth"]))
    held = write_pool(tmp_path / "held.csv", 20, seed=9)
    held[["id", "text", "truth"]].rename(columns={"truth": "label"}).to_csv(tmp_path / "held.csv", index=False)
    project = tmp_path / "proj"

    out = cli("init", project, "--data", tmp_path / "pool.csv", "--text-column", "text", "--id-column", "id",
              "--labels", "positive,negative", "--heldout", tmp_path / "held.csv", "--batch-size", "8").output
    assert "60 items, 0 labeled" in out and "held-out set of 20" in out
    assert "No rounds yet" in cli("status", project).output

    result = cli("query", project, "--no-progress")
    assert "Round 1: cold-start-kmeans selected 8 items" in result.output
    assert "'positive' has 0, 'negative' has 0" in result.output  # the fallback is explained

    for round_number in (1, 2):
        cli("export", project, "--format", "label-studio", "-o", tmp_path / "batch.json")
        simulate_label_studio(tmp_path / "batch.json", truth, tmp_path / "annotated.json")
        assert "8 new label(s)" in cli("import-labels", project, tmp_path / "annotated.json").output
        out = cli("query", project, "--no-progress").output
        assert f"Round {round_number + 1}: alvin selected 8 items" in out and "held-out accuracy" in out

    status = json.loads(cli("status", project, "--json").output)
    assert status["labeled"] == 16 and status["rounds"] == 3
    assert status["current_batch"] == {"round": 3, "labeled": 0, "in_review": 0, "total": 8}
    assert status["last_metrics"]["heldout"]["n"] == 20
    table = cli("status", project).output
    assert "cold-start-kmeans" in table and "alvin" in table and "0 of 8 labeled" in table

    cli("export", project, "--format", "csv", "--predictions", "--no-progress", "-o", tmp_path / "all.csv")
    exported = pd.read_csv(tmp_path / "all.csv")
    assert len(exported) == 60 and exported["label"].notna().sum() == 16
    assert {"predicted", "confidence", "prob_positive", "prob_negative"} <= set(exported.columns)
    lines = cli("export", project, "--format", "jsonl").output.strip().splitlines()
    assert len(lines) == 60 and sum(json.loads(line)["label"] is not None for line in lines) == 16


def test_import_labels_reads_a_plain_table(tmp_path, cli, project):
    pd.DataFrame({"doc": ["doc-20", "doc-21"], "gold": ["positive", "negative"]}).to_csv(tmp_path / "l.csv", index=False)
    out = cli("import-labels", project.directory, tmp_path / "l.csv", "--id-column", "doc", "--label-column", "gold",
              "--annotator", "erin").output
    assert "2 new label(s)" in out and "positive: 3, negative: 3" in out
    assert project.history("doc-21")[-1].annotator == "erin"


def test_errors_are_anchoral_errors_with_the_problem_named(tmp_path, cli):
    write_pool(tmp_path / "pool.csv", 10)
    result = cli("init", tmp_path / "p", "--data", tmp_path / "pool.csv", "--text-column", "body", "--labels", "a,b", ok=False)
    assert "--text-column 'body' is not a column of pool.csv" in str(result.exception)
    assert not (tmp_path / "p").exists()
    result = cli("status", tmp_path, ok=False)
    assert isinstance(result.exception, ProjectError) and "not an anchoral project" in str(result.exception)


def test_export_refuses_an_unknown_format(cli, project):
    result = cli("export", project.directory, "--format", "xml", ok=False)
    assert "unknown export format 'xml'; expected one of: csv, jsonl, label-studio" in str(result.exception)


def test_the_installed_entry_point_runs_the_commands_and_reports_errors_in_one_line(tmp_path):
    write_pool(tmp_path / "pool.csv", 10, labeled=4)

    def run(*args):
        return subprocess.run([ANCHORAL, *map(str, args)], capture_output=True, text=True, timeout=300, check=False)

    created = run("init", tmp_path / "p", "--data", tmp_path / "pool.csv", "--text-column", "text", "--id-column", "id",
                  "--label-column", "label", "--labels", "positive,negative")
    assert created.returncode == 0, created.stderr
    status = run("status", tmp_path / "p", "--json")
    assert json.loads(status.stdout)["labeled"] == 4
    bad = run("init", tmp_path / "q", "--data", tmp_path / "pool.csv", "--text-column", "text", "--label-column", "label",
              "--labels", "positive,neutral")
    assert bad.returncode == 2 and "'negative'" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "q").exists()
    with Project.open(tmp_path / "p") as project:
        assert project.label_counts() == {"positive": 2, "negative": 2}


@pytest.mark.parametrize("minutes", ["0", "-5"])
def test_serve_refuses_a_lease_that_is_not_positive_in_one_line_before_starting(project, minutes):
    result = subprocess.run([ANCHORAL, "serve", str(project.directory), "--lease-minutes", minutes, "--port", "1"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "Annotate at" not in result.stdout
    assert result.stderr.strip().splitlines() == [f"error: --lease-minutes must be a positive number of minutes; got {minutes}"]


def test_invite_prints_a_link_lists_and_revokes(cli, project):
    made = cli("invite", project.directory, "Ana María", "--url", "http://labbox:8765/")
    token = project.labelers()["Ana María"]
    assert made.output.strip() == f"Link for Ana María: http://labbox:8765/?token={token}"
    assert cli("invite", project.directory).output.strip() == "Ana María"
    assert "Revoked Ana María's link." in cli("invite", project.directory, "Ana María", "--revoke").output
    missing = cli("invite", project.directory, "nobody", "--revoke", ok=False)
    assert "'nobody' is not an invited labeler" in str(missing.exception)
    bad = cli("invite", project.directory, "   ", ok=False)
    assert "a labeler's name must be 1 to 64 printable characters" in str(bad.exception)
