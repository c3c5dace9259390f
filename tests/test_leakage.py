"""Nothing a deployment lacks reaches a strategy, a group inference or a robust head.

1. Flip the labels of every pool example that was never queried: every choice must stay
   the same (a code path that read an unqueried label would see the flip).
2. A tripwire on ``Split.groups``: reading it from anywhere but the evaluator (and the
   evaluator-side references) fails the run.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from anchoral.data.benchmarks import Benchmark, Split
from anchoral.experiments.encoded import EncodedBenchmark
from anchoral.experiments.simulate import RunSpec, simulate
from anchoral.groups import GROUP_METHODS
from anchoral.loop import ActiveLearningLoop, LoopConfig, SimulatedOracle
from anchoral.models import make_model
from anchoral.models.robust import HEADS
from anchoral.strategies import STRATEGIES, make_strategy
from tests.groups.planted import planted_minority

EVALUATOR_SIDE = {
    ("anchoral.experiments.simulate", "BenchmarkEvaluator.__call__"),
    ("anchoral.experiments.simulate", "_minority_inference"),
    ("anchoral.experiments.simulate", "_head_inference"),
}
EVALUATOR_MODULES = ("anchoral.experiments.references", "anchoral.metrics", "anchoral.data")  # data: the builders
LOOP = LoopConfig(batch_size=10, budget=40, seed_size=10, checkpoints=())
MODEL = {"max_epochs": 15, "hidden_dim": 16}


class GroupsTripwire(Split):
    """A Split whose ``groups`` only the evaluator may read."""

    def __getattribute__(self, name):
        if name == "groups":
            caller = sys._getframe(1)
            module, function = caller.f_globals.get("__name__", ""), caller.f_code.co_qualname
            allowed = (module, function) in EVALUATOR_SIDE or module.startswith(EVALUATOR_MODULES)
            if module.startswith("anchoral") and not allowed:
                raise AssertionError(f"{module}.{function} read Split.groups")
        return object.__getattribute__(self, name)


def planted_benchmark(flip: np.ndarray | None = None) -> EncodedBenchmark:
    features, labels, minority, pool = planted_minority(n=160, dims=8, seed=3)
    test_features, test_labels, test_minority, _ = planted_minority(n=80, dims=8, seed=4)
    pool_labels = labels.copy()
    if flip is not None:
        pool_labels[flip] = 1 - pool_labels[flip]

    def split(n, split_labels, groups, prefix):
        return GroupsTripwire(ids=np.array([f"{prefix}{i}" for i in range(n)]), texts=[""] * n,
                              labels=split_labels, groups=groups)

    groups = labels * 2 + np.where(minority, 1 - labels, labels)
    test_groups = test_labels * 2 + np.where(test_minority, 1 - test_labels, test_labels)
    benchmark = Benchmark(
        name="planted", pool=split(160, pool_labels, groups, "p"), id_test=split(80, test_labels, test_groups, "i"),
        ood_test=split(80, test_labels, test_groups, "o"), class_names=("a", "b"),
        group_names=("a/0", "a/1", "b/0", "b/1"), params={}, minority_groups=(1, 2),
    )
    return EncodedBenchmark(benchmark, features, test_features, test_features, "planted")


def choices(encoded: EncodedBenchmark, spec: RunSpec, seed_indices: np.ndarray) -> list[list[int]]:
    """The batches of one loop from a fixed seed set (the simulation's stratified draw of the seed set
    looks at every pool label, as a simulation may; a deployment's seed set is simply given)."""
    model = make_model(spec.model, 2, seed=spec.seed, **spec.model_params)
    loop = ActiveLearningLoop(make_strategy(spec.strategy, **spec.strategy_params), model, spec.loop)
    records = loop.run(encoded.pool_features, SimulatedOracle(encoded.benchmark.pool.labels),
                       np.random.default_rng(spec.seed), seed_indices=seed_indices)
    return [record.selected.tolist() for record in records]


SPECS = (
    [RunSpec(strategy=name, seed=0, loop=LOOP, model_params=MODEL) for name in sorted(STRATEGIES)]
    + [RunSpec(strategy="alvin", seed=0, loop=LOOP, model_params=MODEL, strategy_params={"minority": method})
       for method in sorted(GROUP_METHODS) if method != "dynamics"]
    + [RunSpec(strategy="entropy", seed=0, loop=LOOP, model_params={**MODEL, "head": head, "groups": groups})
       for head in HEADS if head != "plain" for groups in sorted(GROUP_METHODS)]
)


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: f"{spec.strategy}-{spec.strategy_params}-{spec.model_params}")
def test_flipping_every_unqueried_label_changes_no_choice(spec):
    honest = planted_benchmark()
    seed_indices = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    selected = choices(honest, spec, seed_indices)
    never_queried = np.setdiff1d(np.arange(160), np.concatenate([seed_indices, *map(np.asarray, selected)]))
    assert never_queried.size == 160 - LOOP.budget
    assert choices(planted_benchmark(flip=never_queried), spec, seed_indices) == selected


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: f"{spec.strategy}-{spec.strategy_params}-{spec.model_params}")
def test_only_the_evaluator_reads_the_true_groups(spec):
    rows = simulate(planted_benchmark(), spec)  # the tripwire raises on any other read
    assert rows[-1]["n_labeled"] == LOOP.budget and "worst_group_accuracy" in rows[-1]


def test_the_tripwire_fires_on_a_read_outside_the_evaluator():
    sneaky = {"__name__": "anchoral.strategies.sneaky", "encoded": planted_benchmark()}
    with pytest.raises(AssertionError, match=r"anchoral\.strategies\.sneaky.* read Split\.groups"):
        eval("encoded.benchmark.pool.groups", sneaky)
