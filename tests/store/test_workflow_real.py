"""The command-line loop on real data: a CSV of VADER sentences, real MiniLM embeddings,
three rounds labeled by a simulated annotator (the VADER ratings), one of them via Label Studio."""

import json

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from anchoral.store.commands import register
from tests.store.vader_data import vader_sample

pytestmark = pytest.mark.real_data


def test_three_rounds_on_a_vader_csv(tmp_path):
    pool, held = vader_sample()
    pool[["id", "text"]].to_csv(tmp_path / "reviews.csv", index=False)
    held[["id", "text", "sentiment"]].to_csv(tmp_path / "heldout.csv", index=False)
    truth = dict(zip(pool["id"], pool["sentiment"]))
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def cli(*args):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, f"{args}: {result.output}\n{result.exception!r}"
        return result.output

    project = tmp_path / "reviews"
    cli("init", project, "--data", tmp_path / "reviews.csv", "--text-column", "text", "--id-column", "id",
        "--labels", "positive,negative", "--heldout", tmp_path / "heldout.csv", "--heldout-label-column", "sentiment",
        "--batch-size", "10")
    for round_number in (1, 2, 3):
        out = cli("query", project, "--no-progress")
        assert f"Round {round_number}:" in out
        cli("export", project, "--format", "label-studio", "-o", tmp_path / "batch.json")
        batch = [task["data"]["anchoral_id"] for task in json.loads((tmp_path / "batch.json").read_text())]
        if round_number == 2:  # annotated in Label Studio
            exported = [{"id": k, "data": {"anchoral_id": i}, "annotations": [{"completed_by": {"email": "ann@lab"},
                         "result": [{"type": "choices", "value": {"choices": [truth[i]]}}]}]} for k, i in enumerate(batch)]
            (tmp_path / "ls.json").write_text(json.dumps(exported))
            assert "10 new label(s)" in cli("import-labels", project, tmp_path / "ls.json")
        else:  # a spreadsheet of id,label
            pd.DataFrame({"id": batch, "label": [truth[i] for i in batch]}).to_csv(tmp_path / "labels.csv", index=False)
            assert "10 new label(s)" in cli("import-labels", project, tmp_path / "labels.csv", "--annotator", "ann")

    status = json.loads(cli("status", project, "--json"))
    assert status["labeled"] == 30 and status["rounds"] == 3
    assert status["current_batch"] == {"round": 3, "labeled": 10, "total": 10, "in_review": 0}
    assert status["last_metrics"]["n_labeled"] == 20 and status["last_metrics"]["heldout"]["n"] == 80

    cli("export", project, "--format", "csv", "--predictions", "--no-progress", "-o", tmp_path / "out.csv")
    exported = pd.read_csv(tmp_path / "out.csv")
    unlabeled = exported[exported["label"].isna()]
    accuracy = (unlabeled["predicted"] == unlabeled["id"].map(truth)).mean()
    print(f"\nheld-out accuracy by round: {[r for r in cli('status', project).splitlines() if 'alvin' in r]}")
    print(f"accuracy on the {len(unlabeled)} unlabeled pool sentences after 30 labels: {accuracy:.3f}")
    assert accuracy > 0.55  # better than chance; the point here is the workflow
