"""``anchoral demo`` end to end on a tiny synthetic benchmark: the reference panel beside the
strategies in the report, the console tables, the files and the plot."""

import pandas as pd
import pytest
from rich.console import Console

from anchoral.experiments import demo
from anchoral.experiments.demo import DemoConfig, run_demo
from anchoral.experiments.report import PANEL_SEPARATOR
from anchoral.loop import LoopConfig
from tests.experiments import synthetic

LOOP = LoopConfig(batch_size=5, budget=0.25, seed_size=4, checkpoints=(0.1, 0.25))
MODEL = {"hidden_dim": 16, "max_epochs": 30}


def run_on_toy(monkeypatch, tmp_path, strategies):
    encoded = synthetic.encoded_benchmark()
    monkeypatch.setattr(demo, "load_benchmark", lambda name, **params: encoded.benchmark)
    monkeypatch.setattr(demo, "encode_benchmark", lambda benchmark, progress: encoded)
    console = Console(record=True, width=200)
    config = DemoConfig(benchmark="toy", strategies=strategies, seeds=(0, 1), loop=LOOP, model_params=MODEL)
    run_dir = run_demo(config, out_dir=tmp_path / "run", progress=False, console=console)
    return run_dir, console.export_text()


@pytest.fixture(scope="module")
def toy_demo(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return run_on_toy(monkeypatch, tmp_path_factory.mktemp("demo"), ("entropy", "random"))


def test_the_report_table_shows_the_reference_panel_below_the_strategies(toy_demo):
    run_dir, _ = toy_demo
    report = (run_dir / "report.md").read_text()
    table = [line.split(" | ")[0].lstrip("| ") for line in report.splitlines() if line.startswith("| ")]
    assert table[:8] == ["strategy", "random", "entropy", "random · linear(head=dfr)",
                         "minority-seeking · linear(head=dfr)", PANEL_SEPARATOR, "erm-all (every pool label)",
                         "oracle-balanced (oracle)"]
    assert ("Recipes (a strategy with a model of its own, one row each): `random · linear(head=dfr)`; "
            "`minority-seeking · linear(head=dfr)`") in report
    assert "It is an oracle: it needs the group of every pool example, which a user never has." in report
    assert "random was not among the strategies" not in report


def test_the_panel_is_one_fit_on_the_pool_and_one_per_checkpoint_for_each_seed(toy_demo):
    run_dir, _ = toy_demo
    panel = pd.read_parquet(run_dir / "reference_panel.parquet")
    assert sorted(zip(panel["reference"], panel["seed"], panel["n_labeled"])) == [
        ("erm-all", 0, 92), ("erm-all", 1, 92), ("oracle-balanced", 0, 9), ("oracle-balanced", 0, 23),
        ("oracle-balanced", 1, 9), ("oracle-balanced", 1, 23)]
    assert panel.loc[panel["n_labeled"] == 23, "train_group_counts"].map(list).tolist() == [[6, 6, 5, 6]] * 2
    assert set(pd.read_parquet(run_dir / "results.parquet")["strategy"]) == {
        "random", "entropy", "random · linear(head=dfr)", "minority-seeking · linear(head=dfr)"}
    assert (run_dir / "learning_curves.png").stat().st_size > 10_000


def test_the_console_tables_put_the_panel_in_a_section_of_its_own(toy_demo):
    _, text = toy_demo
    for title in ("ID accuracy", "OOD accuracy", "worst-group accuracy"):
        assert title in text
    lines = text.splitlines()
    last = next(i for i, line in enumerate(lines) if line.startswith("│ minority-seeking · linear(head=dfr)"))
    assert lines[last - 1].startswith("│ random · linear(head=dfr)")
    assert lines[last + 1].startswith("├")
    assert lines[last + 2].startswith("│ erm-all (every pool label)")
    assert lines[last + 3].startswith("│ oracle-balanced (oracle)")


def test_a_demo_without_random_says_so(monkeypatch, tmp_path):
    run_dir, text = run_on_toy(monkeypatch, tmp_path, ("entropy",))
    assert "random was not among the strategies" in (run_dir / "report.md").read_text()
    assert "random was not among the strategies" in " ".join(text.split())


def test_the_recipe_runs_its_own_model_and_can_be_left_out(toy_demo, monkeypatch, tmp_path):
    run_dir, _ = toy_demo
    results = pd.read_parquet(run_dir / "results.parquet")
    recipe = results[results["strategy"] == "minority-seeking · linear(head=dfr)"]
    assert sorted(recipe["seed"].unique()) == [0, 1] and set(recipe["trained_head"].dropna()) <= {"dfr", "plain"}
    encoded = synthetic.encoded_benchmark()
    monkeypatch.setattr(demo, "load_benchmark", lambda name, **params: encoded.benchmark)
    monkeypatch.setattr(demo, "encode_benchmark", lambda benchmark, progress: encoded)
    config = DemoConfig(benchmark="toy", strategies=("random",), seeds=(0,), loop=LOOP, model_params=MODEL, recipes=())
    bare = pd.read_parquet(run_demo(config, out_dir=tmp_path / "bare", progress=False) / "results.parquet")
    assert set(bare["strategy"]) == {"random"}


def test_a_recipe_with_a_bad_model_option_fails_before_any_run(monkeypatch, tmp_path):
    from anchoral.errors import ValidationError
    from anchoral.experiments.demo import Recipe

    encoded = synthetic.encoded_benchmark()
    monkeypatch.setattr(demo, "load_benchmark", lambda name, **params: encoded.benchmark)
    monkeypatch.setattr(demo, "encode_benchmark", lambda benchmark, progress: encoded)
    config = DemoConfig(benchmark="toy", strategies=("random",), seeds=(0,), loop=LOOP, model_params=MODEL,
                        recipes=(Recipe("minority-seeking", "linear", {"head": "bogus"}),))
    with pytest.raises(ValidationError, match="head"):
        run_demo(config, out_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
