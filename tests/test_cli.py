"""The command line, run as a user runs it (a subprocess of the installed entry point)."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ANCHORAL = str(Path(sys.executable).with_name("anchoral"))


def run(*args, check=False):
    result = subprocess.run([ANCHORAL, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=600)
    if check and result.returncode:
        raise AssertionError(f"anchoral {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_unknown_strategy_is_named_with_the_valid_choices():
    result = run("demo", "--strategies", "random,bogus", "--no-progress")
    assert result.returncode == 2
    assert "bogus" in result.stderr and "entropy" in result.stderr and "least-confidence" in result.stderr


def test_unknown_benchmark_is_named_with_the_valid_choices():
    result = run("demo", "--benchmark", "imdb", "--no-progress")
    assert result.returncode == 2
    assert "imdb" in result.stderr and "vader-shortcut" in result.stderr


def test_unknown_dataset_is_named_with_the_valid_choices():
    result = run("datasets", "fetch", "sst2")
    assert result.returncode == 2
    assert "sst2" in result.stderr and "vader" in result.stderr


def test_lists_name_the_registered_things():
    assert "vader-movie" in run("datasets", "list", check=True).stdout
    assert "vader-shortcut" in run("benchmarks", check=True).stdout
    assert "least-confidence" in run("strategies", check=True).stdout


def test_a_malformed_benchmark_parameter_is_rejected():
    result = run("demo", "-p", "pool_size", "--no-progress")
    assert result.returncode == 2
    assert "KEY=VALUE" in result.stderr


def test_an_unknown_benchmark_parameter_lists_the_valid_ones():
    result = run("demo", "-p", "poolsize=10", "--no-progress")
    assert result.returncode == 2
    assert "poolsize" in result.stderr and "ood_test_per_group" in result.stderr


def test_a_budget_larger_than_the_pool_is_rejected_before_a_run_directory_is_made(tmp_path):
    out = tmp_path / "demo-run"
    result = run("demo", "--pool-size", "400", "--budget", "5000", "--no-progress", "--out", str(out))
    assert result.returncode == 2
    assert "budget" in result.stderr and "400" in result.stderr
    assert not out.exists()


@pytest.mark.real_data
def test_demo_writes_results_report_and_plot(tmp_path):
    out = tmp_path / "run"
    # The same benchmark as tests/experiments/test_simulate_real.py, so the session cache serves its features.
    result = run("demo", "--pool-size", "300", "--rho", "0.9", "-p", "id_test_size=100", "-p", "ood_test_per_group=25",
                 "--seeds", "2", "--strategies", "random,entropy", "--budget", "0.2", "--out", str(out),
                 "--no-recipe", "--no-progress", check=True)
    assert str(out) in result.stdout.replace("\n", "")
    results = pd.read_parquet(out / "results.parquet")
    assert set(results["strategy"]) == {"random", "entropy"}
    assert set(results["seed"]) == {0, 1}
    assert results.groupby(["strategy", "seed"])["n_labeled"].max().eq(60).all()
    report = (out / "report.md").read_text()
    assert "ID @5%" in report and "OOD @10%" in report and "worst-group @20%" in report
    assert (out / "learning_curves.png").stat().st_size > 10_000


def test_an_unknown_head_is_named_with_the_valid_choices_before_a_run_directory_is_made(tmp_path):
    out = tmp_path / "demo-run"
    result = run("demo", "--pool-size", "300", "--model", "linear", "-m", "head=magic", "--no-progress", "--out", str(out))
    assert result.returncode == 2
    assert "unknown head 'magic'; expected one of: auto, auto-class, class-balanced, dfr" in result.stderr
    assert not out.exists()


@pytest.mark.real_data
def test_demo_runs_a_robust_head_given_as_model_parameters(tmp_path):
    out = tmp_path / "run"
    run("demo", "--pool-size", "300", "--rho", "0.9", "-p", "id_test_size=100", "-p", "ood_test_per_group=25",
        "--seeds", "1", "--strategies", "random", "--budget", "0.2", "--model", "linear", "-m", "head=group-reweight",
        "--out", str(out), "--no-progress", check=True)
    results = pd.read_parquet(out / "results.parquet")
    assert (results["trained_head"].iloc[1:] != "").all() and set(results["head_groups"].dropna()) == {"clusters"}
    assert "model `linear` with parameters `{\"head\": \"group-reweight\"}`" in (out / "report.md").read_text()


@pytest.mark.parametrize("args", [("strategies", "list"), ("nosuchcommand",), ("demo", "--seeds", "abc"),
                                  ("demo", "--no-such-option")])
def test_a_usage_error_prints_the_usage_line_and_one_error_line_without_a_traceback(args):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("Usage: anchoral")
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")] == [result.stderr.strip().splitlines()[-1]]
    assert "Traceback" not in result.stderr and "╭" not in result.stderr and not result.stdout


def test_a_wrong_type_names_the_option_and_the_value():
    error = run("demo", "--seeds", "abc").stderr.strip().splitlines()[-1]
    assert "'--seeds'" in error and "integer" in error


def test_every_strategy_has_a_one_line_description():
    from anchoral.strategies import STRATEGIES

    rows = {}
    for line in run("strategies", check=True).stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 4 and cells[1]:
            rows[cells[1]] = cells[2]
    assert set(rows) == set(STRATEGIES)
    assert all(rows.values()), [name for name, description in rows.items() if not description]
    assert "entropy" in rows["entropy"] and "1 - max_c p_c" in rows["least-confidence"] and "p_(2)" in rows["margin"]


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    result = run("--version", check=True)
    assert result.stdout.strip() == f"anchoral {version('anchoral')}"


def test_help_shows_on_off_options_as_flags_without_a_value_type():
    help_text = run("--help", check=True).stdout
    assert "--version" in help_text and "<bool>" not in help_text
    assert "<bool>" not in run("query", "--help", check=True).stdout


def test_an_os_error_from_a_command_is_one_line_naming_the_path_exit_2(monkeypatch, capsys):
    from anchoral import cli
    from anchoral.store import commands

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/srv/[team]/project.sqlite")

    monkeypatch.setattr(commands.Project, "open", refuse)
    with pytest.raises(SystemExit) as exited:
        cli.main(["status", "/srv/[team]"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: cannot use /srv/[team]/project.sqlite: Permission denied"]
