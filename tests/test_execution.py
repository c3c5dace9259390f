"""The execution layer: the Ray path (a local 2-CPU instance started here) gives the
same predictions, searches, encodings and selections as the local path."""

from __future__ import annotations

import sys
import tomllib

import numpy as np
import pytest
import ray

from anchoral.errors import ValidationError
from anchoral.execution import ExecutionError, LocalExecutor, RayExecutor, knn, make_executor
from anchoral.experiments.commands import with_execution
from anchoral.experiments.config import ConfigError, ExecutionOptions, parse_config
from anchoral.experiments.runner import run_study
from anchoral.index import knn as local_knn
from anchoral.loop import ActiveLearningLoop, LoopConfig, SimulatedOracle, stratified_seed_set
from anchoral.models.mlp import MLPHead
from anchoral.strategies import STRATEGIES, make_strategy
from anchoral.strategies.base import RoundState
from tests.conftest import make_blobs

BLOCK_ROWS = 64  # several prediction tasks even on the small pool


@pytest.fixture(scope="module")
def ray_executor():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield RayExecutor(block_rows=BLOCK_ROWS)
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def fitted():
    """A real MLPHead fitted on 40 labeled points of a 300-point pool (3 classes)."""
    features, labels = make_blobs(n_per_class=100, n_features=16, n_classes=3, separation=1.5, seed=3)
    labeled = stratified_seed_set(labels, 40, 3, np.random.default_rng(0))
    model = MLPHead(3, hidden_dim=32, max_epochs=30, seed=0)
    report = model.fit(features[labeled], labels[labeled])
    return {"features": features, "labels": labels, "labeled": labeled, "model": model, "report": report}


def round_state(fitted, executor=None) -> RoundState:
    labeled = fitted["labeled"]
    return RoundState(features=fitted["features"], labeled_indices=labeled, labeled_labels=fitted["labels"][labeled],
                      model=fitted["model"], fit_report=fitted["report"], n_classes=3, executor=executor)


def test_prediction_and_embedding_through_ray_equal_local(ray_executor, fitted):
    model, features = fitted["model"], fitted["features"]
    np.testing.assert_array_equal(ray_executor.predict_proba(model, features), model.predict_proba(features))
    np.testing.assert_array_equal(ray_executor.embed(model, features), model.embed(features))


def test_a_memory_mapped_pool_is_shipped_and_predicted_like_an_array(ray_executor, fitted, tmp_path):
    path = tmp_path / "pool.npy"
    np.save(path, fitted["features"])
    pool = np.load(path, mmap_mode="r")
    model = fitted["model"]
    np.testing.assert_array_equal(ray_executor.predict_proba(model, pool), model.predict_proba(fitted["features"]))


def test_a_read_only_pool_is_put_in_the_object_store_once_across_calls(ray_executor, fitted, monkeypatch):
    pool = np.tile(fitted["features"], (70, 1))  # 1.3 MB: large enough to be kept
    pool.flags.writeable = False
    put_arrays = []
    original_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value: put_arrays.append(isinstance(value, np.ndarray)) or original_put(value))
    model = fitted["model"]
    first = ray_executor.predict_proba(model, pool)
    np.testing.assert_array_equal(ray_executor.predict_proba(model, pool), first)
    ray_executor.embed(model, pool)
    assert sum(put_arrays) == 1


def test_knn_split_by_blocks_of_queries_equals_one_search(ray_executor, fitted):
    features = fitted["features"]
    queries = features[:37] + 0.1
    rows = np.flatnonzero(np.arange(len(features)) % 3 != 0)
    for options in ({}, {"rows": rows}):
        distances, indices = knn(queries, features, 7, executor=ray_executor, **options)
        expected_distances, expected_indices = local_knn(queries, features, 7, **options)
        np.testing.assert_array_equal(indices, expected_indices)
        # The distances come from ||q||^2 - 2 q.x + ||x||^2 in float32, and BLAS may round a
        # block of 10 queries differently from a block of 37: equal up to that rounding.
        scale = float((queries**2).sum(axis=1).max() + (features**2).sum(axis=1).max())
        np.testing.assert_allclose(distances, expected_distances, rtol=0, atol=1e-5 * scale)


def test_map_keeps_the_order_of_items_and_passes_shared_values(ray_executor):
    shared = {"offsets": np.arange(5, dtype=np.float64)}
    assert ray_executor.map(_add_sum, list(range(6)), shared=shared) == [10.0 + i for i in range(6)]
    assert LocalExecutor().map(_add_sum, list(range(6)), shared=shared) == [10.0 + i for i in range(6)]


def _add_sum(item, *, offsets):
    return item + float(offsets.sum())


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_selects_the_same_batch_through_ray(ray_executor, fitted, name):
    local = make_strategy(name).select(round_state(fitted), 12, np.random.default_rng(7))
    distributed = make_strategy(name).select(round_state(fitted, ray_executor), 12, np.random.default_rng(7))
    np.testing.assert_array_equal(distributed.indices, local.indices)
    if local.scores is not None:  # equal up to the float32 rounding of differently shaped BLAS blocks
        np.testing.assert_allclose(distributed.scores, local.scores, rtol=1e-5, atol=1e-6)


def test_the_loop_with_a_ray_executor_records_the_same_rounds(ray_executor, fitted):
    features, labels = fitted["features"], fitted["labels"]
    records = {}
    for executor in (None, ray_executor):
        model = MLPHead(3, hidden_dim=32, max_epochs=30, seed=0)
        loop = ActiveLearningLoop(make_strategy("alvin"), model, LoopConfig(batch_size=10, budget=60, checkpoints=()),
                                  executor=executor)
        records[executor] = loop.run(features, SimulatedOracle(labels), np.random.default_rng(1),
                                     seed_indices=fitted["labeled"])
    for local, distributed in zip(records[None], records[ray_executor], strict=True):
        np.testing.assert_array_equal(distributed.selected, local.selected)


def test_encoding_texts_through_the_cache_and_image_arrays_on_ray_actors_equals_local(ray_executor, tmp_path):
    from anchoral.encoders.cache import EmbeddingCache
    from anchoral.encoders.hashing import HashingEncoder
    from anchoral.encoders.images import PixelEncoder
    from anchoral.experiments.encoded import ExecutedEncoder

    texts = [("great film " * (i % 7)) + f"number {i}" for i in range(90)]
    encoder = ExecutedEncoder(HashingEncoder(), ray_executor)
    assert encoder.fingerprint == HashingEncoder().fingerprint
    cached = EmbeddingCache(tmp_path).encode_each(encoder, texts, batch_size=8, progress=False)
    np.testing.assert_array_equal(cached, HashingEncoder().encode(texts, progress=False))
    images = np.random.default_rng(0).random((50, 3, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(ray_executor.encode(PixelEncoder(), images, batch_size=8),
                                  PixelEncoder().encode(images))


@pytest.mark.real_data
def test_minilm_encoding_through_ray_actors_equals_local_on_real_sentences(ray_executor):
    from anchoral.data.vader import load_vader
    from anchoral.encoders.minilm import MiniLMEncoder

    texts = load_vader("tweets")["text"].tolist()[:40]
    encoder = MiniLMEncoder()
    distributed = ray_executor.encode(encoder, texts, batch_size=4)
    local = encoder.encode(texts, batch_size=4, progress=False)
    assert distributed.dtype == np.float32 and distributed.shape == (40, 384)
    np.testing.assert_allclose(distributed, local, rtol=0, atol=1e-6)


def test_missing_ray_is_reported_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ExecutionError, match=r"ray is not installed: pip install 'anchoral\[ray\]'"):
        RayExecutor()


def test_an_unreachable_cluster_is_reported_with_how_to_start_one(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process
    with pytest.raises(ExecutionError, match=r"could not connect to the Ray cluster at address='127.0.0.1:1': "
                                             r"nothing accepts connections at 127.0.0.1:1 .*`ray start --head`"):
        RayExecutor(address="127.0.0.1:1")


@pytest.mark.parametrize("options, message", [
    ({"address": "http://head:8265"}, r"address must be None .*'auto', 'HOST:PORT'.*'ray://HOST:PORT'.*http://head"),
    ({"address": 6379}, "address must be None"),
    ({"address": "auto", "num_cpus": 2}, "num_cpus sizes a local Ray instance"),
    ({"num_cpus": 0}, "num_cpus must be a positive integer"),
    ({"block_rows": -1}, "block_rows must be a positive integer"),
    ({"adress": "auto"}, "invalid options for executor 'ray'"),
])
def test_bad_ray_options_are_rejected_naming_the_argument(options, message):
    with pytest.raises(ValidationError, match=message):
        make_executor("ray", **options)


def test_unknown_executors_are_named_with_the_valid_choices():
    with pytest.raises(ValidationError, match="unknown executor 'spark'; expected one of: local, ray"):
        make_executor("spark")


def test_a_round_state_refuses_an_executor_of_the_wrong_type(fitted):
    with pytest.raises(ValidationError, match="executor must be an anchoral.execution.Executor"):
        round_state(fitted, executor="ray")


STUDY = """
[study]
name = "unit"

[[benchmarks]]
name = "vader-shortcut"

[[strategies]]
name = "random"
"""


def test_the_execution_section_of_a_study_config_is_parsed_and_checked():
    assert parse_config(tomllib.loads(STUDY)).execution == ExecutionOptions()
    parsed = parse_config(tomllib.loads(STUDY + '\n[execution]\nbackend = "ray"\naddress = "ray://head:10001"\n'))
    assert parsed.execution == ExecutionOptions(backend="ray", address="ray://head:10001")
    for table, message in [
        ('backend = "dask"', "execution.backend: unknown executor 'dask'; expected one of: local, ray"),
        ('backend = "ray"\nadress = "auto"', "unknown key execution.adress; expected one of: address, backend, num_cpus"),
        ('address = "auto"', "execution.address applies to backend = \"ray\" only"),
        ('backend = "ray"\naddress = "head"', "execution.address must be None"),
        ('backend = "ray"\nnum_cpus = 0', "execution.num_cpus must be a positive integer"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_config(tomllib.loads(STUDY + "\n[execution]\n" + table + "\n"))
    with pytest.raises(ConfigError, match="unknown key executon; expected one of: .*execution"):
        parse_config(tomllib.loads(STUDY + "\n[executon]\nbackend = \"ray\"\n"))


def test_command_line_options_override_the_config_execution():
    study = parse_config(tomllib.loads(STUDY + '\n[execution]\nbackend = "ray"\nnum_cpus = 2\n'))
    assert with_execution(study, None, None, None) is study
    assert with_execution(study, "local", None, None).execution == ExecutionOptions()
    assert with_execution(study, None, "auto", None).execution == ExecutionOptions(backend="ray", address="auto")
    assert with_execution(study, "ray", None, 1).execution == ExecutionOptions(backend="ray", num_cpus=1)


def test_parallel_jobs_are_refused_with_the_ray_executor(tmp_path):
    study = parse_config(tomllib.loads(STUDY + '\n[execution]\nbackend = "ray"\n'))
    with pytest.raises(ValidationError, match="jobs=2 cannot be combined with the 'ray' executor"):
        run_study(study, tmp_path, jobs=2, progress=False)
