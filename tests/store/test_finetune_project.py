"""A labeling project whose model is the fully fine-tuned transformer (``--model finetune``):
real VADER sentences, the real bundled MiniLM checkpoint fine-tuned on CPU, driven through
the command line; and the checks that refuse a bad model before a project is written."""

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from anchoral.models.finetune import DEVICE_ENV
from anchoral.store import Project
from anchoral.store.commands import register
from tests.store.vader_data import vader_sample

# Small enough for CI: 2 epochs over 12 labels, 48 word pieces, a learning rate that moves.
TINY = ["max_epochs=2", "max_length=48", "learning_rate=1e-4", "progress=false"]


def cli_app():
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(app, [str(a) for a in args])
        if ok:
            assert result.exit_code == 0, f"{args}: {result.output}\n{result.exception!r}"
        return result

    return invoke


@pytest.mark.real_data
def test_a_project_trains_the_fine_tuned_transformer_each_round(tmp_path, monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "auto")  # undone after the test, with what use_device sets
    pool, held = vader_sample()
    pool = pool.copy()
    labeled = np.concatenate([np.flatnonzero(pool["sentiment"] == s)[:6] for s in ("positive", "negative")])
    pool["given"] = pd.Series([pool["sentiment"][i] if i in set(labeled) else None for i in range(len(pool))])
    pool[["id", "text", "given"]].to_csv(tmp_path / "pool.csv", index=False)
    held[["id", "text", "sentiment"]].to_csv(tmp_path / "held.csv", index=False)
    cli = cli_app()
    project = tmp_path / "p"
    out = cli("init", project, "--data", tmp_path / "pool.csv", "--text-column", "text", "--id-column", "id",
              "--label-column", "given", "--labels", "positive,negative", "--heldout", tmp_path / "held.csv",
              "--heldout-label-column", "sentiment", "--batch-size", "8", "--strategy", "alvin",
              "--model", "finetune", *[arg for pair in TINY for arg in ("--model-param", pair)]).output
    assert "model finetune" in out

    out = cli("query", project, "--no-progress", "--device", "cpu").output
    assert "Round 1: alvin selected 8 items" in out and "trained on 12 labels" in out
    with Project.open(project) as opened:
        assert opened.settings["model"] == "finetune"
        assert opened.settings["model_params"]["max_length"] == 48
        info = opened.latest_round()
        assert info.metrics["fit"]["epochs"] == 2 and info.metrics["heldout"]["n"] == len(held)
        assert 0 <= info.metrics["heldout"]["accuracy"] <= 1
        batch = [item.id for item in opened.batch()]
    assert len(set(batch)) == 8 and not set(batch) & set(pool["id"].iloc[labeled])

    cli("export", project, "--predictions", "-o", tmp_path / "out.csv", "--no-progress")
    exported = pd.read_csv(tmp_path / "out.csv")
    assert len(exported) == len(pool)
    probability_columns = [c for c in exported.columns if c.startswith("prob_")]
    assert probability_columns, exported.columns
    np.testing.assert_allclose(exported[probability_columns].sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "bert-large"], "unknown model 'bert-large'"),
        (["--model", "finetune", "--model-param", "learning_rat=1e-4"], "learning_rat"),
        (["--model", "finetune", "--model-param", "max_epochs=0"], "max_epochs"),
        (["--model", "finetune", "--model-param", "device"], "--model-param expects KEY=VALUE"),
    ],
)
def test_a_bad_model_is_refused_before_anything_is_written(tmp_path, args, message):
    pool, _ = vader_sample()
    pool[["id", "text"]].to_csv(tmp_path / "pool.csv", index=False)
    result = cli_app()("init", tmp_path / "p", "--data", tmp_path / "pool.csv", "--text-column", "text",
                       "--labels", "positive,negative", *args, ok=False)
    assert result.exit_code != 0
    assert message in f"{result.output} {result.exception}"
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is present")
def test_asking_for_a_missing_gpu_is_refused_before_the_round(tmp_path, project, monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "auto")
    result = cli_app()("query", project.directory, "--no-progress", "--device", "cuda", ok=False)
    assert result.exit_code != 0 and "no CUDA GPU" in f"{result.output} {result.exception}"
    assert project.latest_round() is None
