"""Smoke test of benchmarks/peers.py at a tiny pool: the workload builder, our side of the
timing loop (every shared strategy and ALVIN return b distinct unlabeled indices) and,
when the peers are installed (the ``bench`` extra), their cheapest calls."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "peers.py"
SIZE = 600


@pytest.fixture(scope="module")
def peers_module():
    spec = importlib.util.spec_from_file_location("benchmark_peers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def workload(peers_module):
    return peers_module.build_workload(SIZE, peers=())


def test_workload_shapes_and_shared_model(peers_module, workload):
    assert workload.features.shape == (SIZE, peers_module.N_FEATURES)
    assert workload.features.dtype == np.float32
    assert workload.labeled.size == peers_module.N_LABELED
    assert np.intersect1d(workload.labeled, workload.unlabeled).size == 0
    probabilities = workload.model.predict_proba(workload.features)
    assert np.array_equal(probabilities, workload.model.proba_from_embedding(workload.model.embed(workload.features)))
    assert workload.fit_report.correctness.shape == (2, peers_module.N_LABELED)


@pytest.mark.parametrize("key", ["least-confidence", "entropy", "margin", "badge", "cal", "coreset", "kmeans"])
def test_ours_returns_b_distinct_unlabeled(peers_module, workload, key):
    cells = peers_module.interleaved({"ours": peers_module.ours_call(key, workload)}, workload, 1, 60.0, key)
    assert cells["ours"].error is None
    assert len(cells["ours"].times) == 1
    indices, _ = peers_module.ours_call(key, workload)(0)
    peers_module.check_batch(indices, workload, key)


def test_alvin_takes_its_anchor_path(peers_module, workload):
    indices, diagnostics = peers_module.ours_call("alvin", workload, workload.alvin_k)(0)
    peers_module.check_batch(indices, workload, "alvin")
    assert abs(diagnostics["n_anchors"] - peers_module.TARGET_ANCHORS) <= 100
    assert diagnostics["fallbacks"] == []


def test_check_batch_rejects_labeled_or_repeated(peers_module, workload):
    with pytest.raises(AssertionError):
        peers_module.check_batch(workload.labeled[: peers_module.BATCH], workload, "labeled")
    with pytest.raises(AssertionError):
        peers_module.check_batch(np.repeat(workload.unlabeled[:1], peers_module.BATCH), workload, "repeated")


def test_cli_without_peers(peers_module, capsys):
    peers_module.main(["--sizes", str(SIZE), "--repeats", "1", "--peers", "none"])
    out = capsys.readouterr().out
    assert "| least confidence |" in out and "| k-means (bert-km) |" in out
    assert "1500 anchors" in out
    assert "numpy entropy top-k" in out and "load average" in out
    assert "error" not in out


@pytest.mark.parametrize("peer,module", [("small-text", "small_text"), ("scikit-activeml", "skactiveml")])
def test_peer_uncertainty_calls(peers_module, peer, module):
    pytest.importorskip(module)
    workload = peers_module.build_workload(SIZE, peers=(peer,))
    for key in ("least-confidence", "entropy", "margin"):
        indices, _ = peers_module.SIDES[peer](key, workload)(0)
        peers_module.check_batch(indices, workload, f"{peer} {key}")


def test_gemm_floor_finds_the_exact_neighbours(peers_module):
    rng = np.random.default_rng(0)
    points = rng.standard_normal((1000, 16), dtype=np.float32)
    anchors = rng.standard_normal((30, 16), dtype=np.float32)
    found = peers_module.gemm_top_k(anchors, points, 5, block=128)
    distances = ((anchors[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    expected = np.argsort(distances, axis=1)[:, :5]
    assert np.array_equal(np.sort(found, axis=1), np.sort(expected, axis=1))
