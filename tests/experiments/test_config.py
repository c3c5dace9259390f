"""Study configs: parsing, grid expansion, labels, and rejection before anything runs."""

import tomllib
from pathlib import Path

import pytest

from anchoral.experiments.config import ConfigError, PanelFit, Variant, load_config, parse_config
from anchoral.experiments.references import ERM_ALL

BASE = """
[study]
name = "unit"
seeds = [0, 1]

[loop]
batch_size = 10
budget = 0.1
checkpoints = [0.05]

[[benchmarks]]
name = "vader-shortcut"
params = { pool_size = 400 }
sweep = { rho = [0.9, 0.99] }

[[strategies]]
name = "random"

[[strategies]]
name = "alvin"
sweep = { n_anchors_per_pair = [5, 15] }
"""


def parse(text: str):
    return parse_config(tomllib.loads(text), source=text)


def test_a_config_expands_into_benchmarks_x_strategies_x_seeds():
    config = parse(BASE)
    runs = config.runs()
    assert len(runs) == 2 * 3 * 2
    assert [b.label for b in config.benchmarks] == ["vader-shortcut(rho=0.9)", "vader-shortcut(rho=0.99)"]
    assert [s.label for s in config.strategies] == ["random", "alvin(n_anchors_per_pair=5)",
                                                    "alvin(n_anchors_per_pair=15)"]
    assert config.loop.batch_size == 10 and config.loop.checkpoints == (0.05,)
    assert len({run.run_id for run in runs}) == len(runs)
    assert runs[0].benchmark.params == {"pool_size": 400, "rho": 0.9}


def test_run_ids_depend_on_what_determines_results_only():
    first = parse(BASE).runs()
    again = parse(BASE.replace('name = "unit"', 'name = "unit"\ndescription = "same grid"')).runs()
    assert [r.run_id for r in first] == [r.run_id for r in again]
    other_loop = parse(BASE.replace("batch_size = 10", "batch_size = 20")).runs()
    assert not {r.run_id for r in first} & {r.run_id for r in other_loop}


def test_the_reference_panel_is_fitted_per_benchmark_and_seed_at_every_reported_fraction():
    config = parse(BASE)  # checkpoint 5%, budget 10%
    fits = config.panel_fits()
    assert config.report_fractions() == (0.05, 0.1)
    assert len(fits) == len({fit.fit_id for fit in fits}) == 2 * 2 * (1 + 2)  # benchmarks x seeds x (erm-all + 2)
    assert {(fit.reference, fit.fraction) for fit in fits} == {("erm-all", None), ("oracle-balanced", 0.05),
                                                               ("oracle-balanced", 0.1)}
    counts_only = parse(BASE.replace("budget = 0.1", "budget = 40").replace("[0.05]", "[20]"))
    assert counts_only.report_fractions() == (0.01, 0.05, 0.10)  # the default when the loop names no fraction


def test_model_variants_differing_only_in_the_robust_head_share_their_panel():
    benchmark = Variant("vader-shortcut", {}, label="vader-shortcut", encoder="minilm")
    plain = PanelFit(benchmark, Variant("mlp", {"hidden_dim": 8}), ERM_ALL, 0)
    robust = PanelFit(benchmark, Variant("mlp", {"hidden_dim": 8, "head": "jtt"}), ERM_ALL, 0)
    wider = PanelFit(benchmark, Variant("mlp", {"hidden_dim": 16}), ERM_ALL, 0)
    assert plain.fit_id == robust.fit_id != wider.fit_id
    assert robust.model_label == "mlp(hidden_dim=8)"


def test_several_models_cross_every_strategy_and_a_repeated_one_is_refused():
    models = [{"name": "mlp"}, {"name": "linear", "sweep": {"head": ["group-reweight", "dfr"]}}]
    config = parse_config({**tomllib.loads(BASE), "model": models})
    assert [m.label for m in config.models] == ["mlp", "linear(head=group-reweight)", "linear(head=dfr)"]
    assert len(config.runs()) == 2 * 3 * 3 * 2  # benchmarks x strategies x models x seeds
    with pytest.raises(ConfigError, match=r"model\[1\] repeats model\[0\]"):
        parse_config({**tomllib.loads(BASE), "model": [{"name": "linear"}, {"name": "linear"}]})
    with pytest.raises(ConfigError, match=r"model\[1\].params: unknown head 'x'"):
        parse_config({**tomllib.loads(BASE), "model": [{"name": "mlp"}, {"name": "linear", "params": {"head": "x"}}]})


def test_strategies_may_be_listed_by_name():
    config = parse_config({**tomllib.loads(BASE), "strategies": ["random", "entropy"]})
    assert [s.label for s in config.strategies] == ["random", "entropy"]


def test_seeds_may_be_a_count():
    raw = tomllib.loads(BASE)
    raw["study"]["seeds"] = 3
    assert parse_config(raw).seeds == (0, 1, 2)


def test_the_example_configs_in_the_repository_parse():
    configs = sorted(Path(__file__).resolve().parents[2].joinpath("configs").glob("*.toml"))
    assert configs, "configs/ holds the study configs"
    for path in configs:
        assert load_config(path).runs()


@pytest.mark.parametrize("edit, location, choices", [
    (lambda raw: raw.update(stratgies=[]), "unknown key stratgies", "strategies"),
    (lambda raw: raw["study"].update(seed=[0]), "study.seed", "seeds"),
    (lambda raw: raw["loop"].update(batchsize=5), "loop.batchsize", "batch_size"),
    (lambda raw: raw["benchmarks"][0].update(name="imdb"), "benchmarks[0].name", "vader-shortcut"),
    (lambda raw: raw["benchmarks"][0]["params"].update(poolsize=3), "benchmarks[0].params.poolsize",
     "ood_test_per_group"),
    (lambda raw: raw["benchmarks"][0]["sweep"].update(rhoo=[0.9]), "benchmarks[0].sweep.rhoo", "rho"),
    (lambda raw: raw["benchmarks"][0].update(encoder="bert"), "benchmarks[0].encoder", "minilm"),
    (lambda raw: raw["benchmarks"][0].update(encoder_params={"dim": 3}), "benchmarks[0].encoder_params.dim",
     "max_seq_length"),
    (lambda raw: raw["strategies"][1].update(name="alvn"), "strategies[1].name", "alvin"),
    (lambda raw: raw["strategies"][1]["sweep"].update(alpah=[1.0]), "strategies[1].sweep.alpah", "alpha"),
    (lambda raw: raw["strategies"][0].update(params={"k": 1}), "strategies[0].params.k", "takes no parameters"),
    (lambda raw: raw["strategies"][1].update(name="alvin-ran", params={"pairing": "all"}),
     "strategies[1].params.pairing", "alpha"),
    (lambda raw: raw.update(model={"name": "svm"}), "model.name", "mlp"),
    (lambda raw: raw.update(model={"name": "mlp", "params": {"hidden": 3}}), "model.params.hidden",
     "hidden_dim"),
    (lambda raw: raw.update(report={"baseline": "entropy"}), "report.baseline", "random"),
])
def test_unknown_keys_names_and_parameters_are_named_with_the_valid_choices(edit, location, choices):
    raw = tomllib.loads(BASE)
    edit(raw)
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert location in str(error.value) and choices in str(error.value)


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw["strategies"][1]["sweep"].update(n_anchors_per_pair=[0]), "n_anchors_per_pair"),
    (lambda raw: raw["strategies"][1].update(params={"pairing": "bogus"}), "strategies[1]: "),
    (lambda raw: raw["strategies"].append({"name": "random"}), "strategies[2] repeats strategies[0]"),
    (lambda raw: raw["study"].update(seeds=[1, 1]), "must not repeat"),
    (lambda raw: raw["study"].update(name="a b"), "study.name"),
    (lambda raw: raw["loop"].update(budget=1.5), "loop.budget"),
    (lambda raw: raw["strategies"][1].update(params={"n_anchors_per_pair": 3}), "also set in"),
    (lambda raw: raw["benchmarks"][0]["sweep"].update(rho=[]), "non-empty array"),
    (lambda raw: raw.pop("benchmarks"), "missing [[benchmarks]]"),
])
def test_bad_values_are_rejected_with_their_location(edit, message):
    raw = tomllib.loads(BASE)
    edit(raw)
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert message in str(error.value)


def test_load_config_prefixes_errors_with_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BASE.replace('name = "random"', 'name = "randm"'))
    with pytest.raises(ConfigError, match=r"bad.toml: strategies\[0\].name: unknown strategy 'randm'"):
        load_config(path)


def test_invalid_toml_is_reported_as_such(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[study\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
