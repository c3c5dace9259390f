"""Every strategy and the analyses on the 20-class benchmark (real 20 Newsgroups posts, hashing
encoder, small MLP head): nothing may assume two classes."""

import json

import numpy as np
import pytest

from anchoral.data.benchmarks import load_benchmark
from anchoral.encoders.hashing import HashingEncoder
from anchoral.experiments.encoded import encode_benchmark
from anchoral.experiments.probing import probing_set
from anchoral.experiments.simulate import RunSpec, simulate
from anchoral.loop import LoopConfig
from anchoral.metrics.mdl import online_codelength
from anchoral.strategies import STRATEGIES
from anchoral.strategies.uncertainty import entropy, least_confidence, margin

pytestmark = pytest.mark.real_data

LOOP = LoopConfig(batch_size=20, budget=80, seed_size=40, checkpoints=())
MODEL = {"max_epochs": 60}


@pytest.fixture(scope="module")
def encoded():
    benchmark = load_benchmark("newsgroups-shortcut", pool_size=600, id_test_size=200, ood_test_per_group=10, rho=0.9)
    return encode_benchmark(benchmark, HashingEncoder(), progress=False)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_runs_on_twenty_classes(encoded, strategy):
    rows = simulate(encoded, RunSpec(strategy=strategy, seed=0, loop=LOOP, model_params=MODEL))
    assert [row["n_labeled"] for row in rows] == [40, 60, 80]
    selected = rows[0]["selected"] + rows[1]["selected"]
    assert len(set(selected)) == 40 and not set(selected) & set(rows[0]["seed_indices"])
    assert 0 <= rows[-1]["worst_group_accuracy"] <= rows[-1]["ood_accuracy"] <= 1
    assert len([key for key in rows[-1] if key.startswith("upsampling[")]) == 40
    json.loads(rows[0]["diagnostics"])


def test_the_three_uncertainty_measures_rank_differently_with_twenty_classes(encoded):
    rows = {name: simulate(encoded, RunSpec(strategy=name, seed=0, loop=LOOP, model_params=MODEL))
            for name in ("least-confidence", "entropy", "margin")}
    batches = {name: set(found[0]["selected"]) for name, found in rows.items()}
    assert rows["entropy"][-1]["id_accuracy"] > 1 / 20  # better than chance over 20 classes
    assert batches["entropy"] != batches["margin"] and batches["least-confidence"] != batches["margin"]
    # least confidence and entropy prefer the second row, margin the first; with two classes they cannot disagree
    probabilities = np.array([[0.5, 0.48, 0.02], [0.4, 0.3, 0.3], [0.45, 0.2, 0.35]])
    assert np.argmax(least_confidence(probabilities)) == 1 == np.argmax(entropy(probabilities))
    assert np.argmax(margin(probabilities)) == 0


def test_mdl_probing_reads_the_reply_attribute_of_twenty_newsgroups(encoded):
    probing = probing_set(encoded)
    cells = np.bincount(probing.labels * 2 + probing.attributes, minlength=40)
    assert (cells == cells[0]).all() and cells[0] > 0  # balanced over the 40 newsgroup x reply groups
    code = online_codelength(probing.features, probing.attributes, fractions=(0.05, 0.1, 0.2, 0.4, 1.0))
    assert code.n_values == 2 and code.n_examples == cells.sum()
    assert code.accuracy > 0.55  # "re" opens a reply: the hashing features see it
