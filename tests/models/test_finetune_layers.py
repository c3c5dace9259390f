"""The cheaper fine-tuning options of ``FineTunedTransformer``: training only the top k
layers over cached frozen lower-layer states (``train_layers``), the frozen-state cache
(memory and disk, keyed by token ids under a fingerprint), and LP-FT (``lp_ft``).

Real runs use the bundled MiniLM on a few real VADER sentences (24 to train, 16 more in
the pool), one or two epochs, 48 word pieces, one thread.
"""

import os
import re
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from anchoral.data.vader import load_vader
from anchoral.encoders.minilm import bundled_model_dir
from anchoral.errors import ValidationError
from anchoral.models import FineTunedTransformer, make_model
from anchoral.models.bert_layers import check_layered
from anchoral.models.frozen_states import FrozenStateCache, token_key
from anchoral.strategies import RoundState, make_strategy

N_TRAIN = 24
N_POOL = 40
TINY = {"max_epochs": 2, "learning_rate": 1e-4, "max_length": 48, "progress": False, "stop_loss_ratio": 0,
        "num_threads": 1}


@pytest.fixture(scope="module")
def sentences():
    """N_POOL real VADER sentences (the first N_TRAIN are labeled), balanced over the two labels."""
    frame = load_vader(("movie", "amazon"))
    rng = np.random.default_rng(1)
    rows = np.concatenate([rng.choice(np.flatnonzero(frame["label"] == label), N_POOL // 2, replace=False)
                           for label in (0, 1)])
    rows = rng.permutation(rows)
    return frame["text"].iloc[rows].tolist(), frame["label"].iloc[rows].to_numpy()


def without_dropout(model: FineTunedTransformer) -> FineTunedTransformer:
    """Switch off every dropout inside the encoder (the head's is ``dropout=0.0``)."""
    model._load()
    for module in model.encoder_.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


def checkpoint_copy(directory, *, perturb_weights=False, touch_tokenizer=False):
    """The bundled checkpoint under another path (files linked), optionally with a lower layer's
    weights changed (saved anew) or a tokenizer file that differs by one trailing byte."""
    from transformers import AutoModel

    source = bundled_model_dir()
    directory.mkdir()
    replaced = set()
    if perturb_weights:
        model = AutoModel.from_pretrained(str(source), local_files_only=True)
        with torch.no_grad():
            model.encoder.layer[0].attention.self.query.weight.add_(0.05)
        model.save_pretrained(str(directory))
        replaced |= {"config.json", "model.safetensors"}
    if touch_tokenizer:
        (directory / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes() + b"\n")
        replaced.add("tokenizer.json")
    for file in source.iterdir():
        if file.is_file() and file.name not in replaced:
            os.symlink(file, directory / file.name)
    return directory


@pytest.mark.real_data
@pytest.mark.parametrize("train_layers, pooling", [(2, "cls"), (1, "mean")])
def test_top_layers_over_cached_states_train_to_the_logits_of_the_full_model_with_frozen_lower_layers(
        sentences, train_layers, pooling):
    """Cached path (top layers over stored states; with CLS pooling the last layer at CLS only)
    against the reference: the whole model's own forward pass at every step, lower layers frozen.
    Dropout is off in both: the CLS-only last layer draws masks of another shape, so with dropout
    the two would be different samples of the same training; without it they are one computation."""
    texts, labels = sentences
    params = {**TINY, "train_layers": train_layers, "pooling": pooling, "dropout": 0.0}
    reference = without_dropout(FineTunedTransformer(2, cache_states=False, **params))
    cached = without_dropout(FineTunedTransformer(2, cache_dtype="float32", **params))
    half = without_dropout(FineTunedTransformer(2, cache_dtype="float16", **params))
    reports = {name: model.fit(texts[:N_TRAIN], labels[:N_TRAIN])
               for name, model in (("reference", reference), ("cached", cached), ("half", half))}
    probe = texts[N_TRAIN:]
    expected = reference.predict_proba(probe)
    assert reference.frozen_states_ is None and reports["cached"].extra["frozen_states"]["computed"] == N_TRAIN

    np.testing.assert_allclose(reports["cached"].epoch_losses, reports["reference"].epoch_losses, atol=1e-5)
    np.testing.assert_allclose(cached.predict_proba(probe), expected, atol=1e-5)
    np.testing.assert_allclose(cached.embed(probe), reference.embed(probe), atol=1e-4)
    # float16 storage: the documented tolerance (measured differences are about 2e-5).
    np.testing.assert_allclose(half.predict_proba(probe), expected, atol=1e-3)
    assert not np.allclose(expected, 0.5, atol=1e-3)  # the fit moved the model


@pytest.mark.real_data
def test_only_the_top_layers_and_the_head_train(sentences):
    texts, labels = sentences
    model = FineTunedTransformer(2, train_layers=1, **TINY)
    model.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    trained_prefix = f"encoder.layer.{model.boundary_}."
    assert model.boundary_ == 5
    for name, value in model.encoder_.state_dict().items():
        unchanged = torch.equal(value, model.pretrained_state_[name])
        if name.startswith(trained_prefix):
            assert not unchanged or "bias" in name, name  # every trained weight matrix moved
        elif not name.startswith("pooler."):
            assert unchanged, name
    assert not torch.equal(model.classifier_.weight, model.initial_classifier_state_["weight"])


@pytest.mark.real_data
def test_frozen_states_are_computed_once_and_reused_by_every_fit_and_pool_pass(sentences):
    texts, labels = sentences
    model = FineTunedTransformer(2, train_layers=1, **TINY)
    assert model.cache_frozen_states(texts) == N_POOL
    assert model.cache_frozen_states(texts[:5]) == 0
    first = model.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    assert first.extra["frozen_states"]["computed"] == 0 and first.extra["frozen_states"]["reused"] == N_TRAIN
    probabilities = model.predict_proba(texts)
    model.fit(texts[8 : N_TRAIN + 8], labels[8 : N_TRAIN + 8])  # the next round, other labels
    model.predict_proba(texts)
    model.embed(texts)
    again = model.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    np.testing.assert_array_equal(model.predict_proba(texts), probabilities)  # same seed and data: same model
    assert again.epoch_losses == first.epoch_losses
    assert model.frozen_states_.stats["computed"] == N_POOL and len(model.frozen_states_) == N_POOL


@pytest.mark.real_data
def test_disk_cache_is_shared_by_instances_and_by_the_same_checkpoint_elsewhere(sentences, tmp_path):
    texts, labels = sentences
    params = {**TINY, "train_layers": 1, "cache_dir": tmp_path / "states"}
    first = FineTunedTransformer(2, **params)
    first.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    expected = first.predict_proba(texts)
    assert first.frozen_states_.stats["computed"] == N_POOL
    assert len(list((tmp_path / "states").glob("*/shard-*.npz"))) == 2  # the fit's texts, then the rest

    second = FineTunedTransformer(2, **params)
    report = second.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    assert report.extra["frozen_states"]["computed"] == 0 and report.extra["frozen_states"]["from_disk"] == N_POOL
    np.testing.assert_array_equal(second.predict_proba(texts), expected)

    elsewhere = FineTunedTransformer(2, checkpoint=checkpoint_copy(tmp_path / "copy"), **params)
    elsewhere.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    assert elsewhere.frozen_states_.stats["computed"] == 0


@pytest.mark.real_data
@pytest.mark.parametrize("change", ["perturb_weights", "touch_tokenizer", "train_layers", "cache_dtype"])
def test_a_different_checkpoint_tokenizer_or_boundary_recomputes_the_states(sentences, tmp_path, change):
    texts, labels = sentences
    params = {**TINY, "train_layers": 1, "cache_dir": tmp_path / "states"}
    original = FineTunedTransformer(2, **params)
    original.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    if change in ("perturb_weights", "touch_tokenizer"):
        params["checkpoint"] = checkpoint_copy(tmp_path / "changed", **{change: True})
    else:
        params.update({"train_layers": 2} if change == "train_layers" else {"cache_dtype": "float32"})
    changed = FineTunedTransformer(2, **params)
    report = changed.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    assert changed.frozen_states_.fingerprint != original.frozen_states_.fingerprint
    assert report.extra["frozen_states"] == {"computed": N_TRAIN, "reused": 0, "from_disk": 0, "rejected_shards": 0}
    assert len(list((tmp_path / "states").iterdir())) == 2
    if change == "perturb_weights":
        assert not np.allclose(changed.predict_proba(texts), original.predict_proba(texts), atol=1e-4)


def test_a_shard_recorded_under_another_fingerprint_or_unreadable_is_skipped_and_counted(tmp_path):
    token_ids = [[101, 2204, 102], [101, 2919, 2143, 102]]

    def compute(ids):
        return [torch.full((len(row), 4), float(len(row))) for row in ids]

    FrozenStateCache("frozen-aaaa", "float32", tmp_path).states(token_ids, compute)
    (tmp_path / "frozen-bbbb").mkdir()
    for shard in (tmp_path / "frozen-aaaa").glob("shard-*.npz"):
        shutil.copy(shard, tmp_path / "frozen-bbbb" / shard.name)  # copied into another model's directory
    (tmp_path / "frozen-bbbb" / "shard-broken.npz").write_bytes(b"not a zip file")
    calls = []
    other = FrozenStateCache("frozen-bbbb", "float32", tmp_path)
    states = other.states(token_ids, lambda ids: calls.append(ids) or compute(ids))
    assert calls == [token_ids]  # recomputed, never taken from the foreign shard
    assert other.stats == {"computed": 2, "reused": 0, "from_disk": 0, "rejected_shards": 2}
    assert [state.shape for state in states] == [(3, 4), (4, 4)]  # stored without padding

    same = FrozenStateCache("frozen-aaaa", "float32", tmp_path)
    same.states(token_ids[::-1], compute)
    assert same.stats == {"computed": 0, "reused": 2, "from_disk": 2, "rejected_shards": 0}


def test_states_are_keyed_by_token_ids_so_another_truncation_is_another_entry():
    assert token_key([101, 2204, 102]) == token_key(np.array([101, 2204, 102]))
    assert token_key([101, 2204, 102]) != token_key([101, 2204])


@pytest.mark.real_data
@pytest.mark.parametrize("train_layers", [1, None])
def test_lp_ft_first_phase_equals_fitting_the_head_alone(sentences, train_layers):
    texts, labels = sentences
    lp_ft = FineTunedTransformer(2, train_layers=train_layers, lp_ft=True, lp_epochs=6, lp_learning_rate=1e-2,
                                 cache_dtype="float32", **{**TINY, "max_epochs": 1})
    report = lp_ft.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    head = FineTunedTransformer(2, train_layers=0, cache_dtype="float32",
                                **{**TINY, "max_epochs": 6, "learning_rate": 1e-2})
    head_report = head.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    for name, value in head.classifier_.state_dict().items():
        torch.testing.assert_close(lp_ft.lp_head_state_[name], value, atol=1e-5, rtol=1e-5)
    assert report.extra["lp_epochs"] == 6 and report.extra["lp_steps"] == head_report.steps
    assert report.extra["lp_final_loss"] == pytest.approx(head_report.final_loss, abs=1e-4)
    # The second phase fine-tunes from the probe's head: its first loss is the probe's, not chance's.
    assert report.first_loss < report.extra["lp_first_loss"]
    assert report.epochs == 1 and report.correctness.shape == (1, N_TRAIN)
    assert head.encoder_ is not None and all(torch.equal(value, head.pretrained_state_[name])
                                             for name, value in head.encoder_.state_dict().items())


@pytest.fixture(scope="module")
def top_layer_model(sentences):
    texts, labels = sentences
    model = make_model("finetune", 2, train_layers=1, lp_ft=True, **TINY)
    return model, model.fit(texts[:N_TRAIN], labels[:N_TRAIN])


@pytest.mark.real_data
@pytest.mark.parametrize("strategy", ["alvin", "badge", "alfamix", "entropy"])
def test_strategies_select_from_a_top_layers_model(sentences, top_layer_model, strategy):
    texts, labels = sentences
    model, report = top_layer_model
    state = RoundState(features=np.zeros((N_POOL, 4), dtype=np.float32), labeled_indices=np.arange(N_TRAIN),
                       labeled_labels=labels[:N_TRAIN], model=model, fit_report=report, n_classes=2, inputs=texts)
    selection = make_strategy(strategy).select(state, 4, np.random.default_rng(0))
    assert selection.indices.size == 4 and selection.indices.min() >= N_TRAIN
    np.testing.assert_allclose(model.proba_from_embedding(model.embed(texts)), model.predict_proba(texts), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_top_layers_on_cuda_with_mixed_precision(sentences):
    texts, labels = sentences
    model = FineTunedTransformer(2, train_layers=1, device="cuda", **TINY)
    report = model.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    assert report.extra["device"].startswith("cuda")
    assert "float32" not in model.frozen_states_.fingerprint  # the precision is part of the fingerprint's input
    np.testing.assert_allclose(model.proba_from_embedding(model.embed(texts)), model.predict_proba(texts), atol=1e-5)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"train_layers": 7}, "train_layers must be None (full fine-tuning) or an integer from 0 to 6 "
                              "(the checkpoint's num_hidden_layers); got 7"),
        ({"train_layers": -1}, "an integer from 0 to 6"),
        ({"train_layers": 1.5}, "an integer from 0 to 6"),
        ({"train_layers": True}, "an integer from 0 to 6"),
        ({"train_layers": 0, "lp_ft": True}, "lp_ft=True needs layers to fine-tune"),
        ({"cache_dir": "states"}, "cache_dir keeps the frozen layers' states, so it needs train_layers"),
        ({"train_layers": 1, "cache_states": False, "cache_dir": "states"}, "needs train_layers set and cache_states=True"),
        ({"train_layers": 1, "cache_dtype": "bfloat16"}, "cache_dtype must be one of float16, float32"),
        ({"lp_epochs": 0}, "lp_epochs must be a positive integer"),
        ({"lp_learning_rate": -1}, "lp_learning_rate must be a positive number"),
    ],
)
def test_constructor_rejects_bad_options(params, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        FineTunedTransformer(2, **params)


def test_an_unwritable_cache_dir_is_one_line_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ValidationError) as error:
        FineTunedTransformer(2, train_layers=1, cache_dir=blocker / "states")
    assert "is not a writable directory" in str(error.value) and "\n" not in str(error.value)


def test_cache_frozen_states_needs_the_top_layers_option():
    with pytest.raises(ValidationError, match="cache_frozen_states needs train_layers"):
        FineTunedTransformer(2, progress=False).cache_frozen_states(["fine"])


def test_train_layers_needs_a_bert_layout_encoder():
    with pytest.raises(ValidationError, match="needs a BERT-style encoder"):
        check_layered(nn.Linear(2, 2))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is present")
def test_top_layers_on_cuda_without_a_gpu_says_so():
    with pytest.raises(ValidationError, match="no CUDA GPU"):
        FineTunedTransformer(2, train_layers=1, device="cuda")


def test_auto_cache_dir_is_the_anchoral_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ANCHORAL_CACHE", str(tmp_path / "cache"))
    model = FineTunedTransformer(2, train_layers=1, cache_dir="auto", progress=False)
    assert model.cache_dir == tmp_path / "cache" / "frozen-states" and model.cache_dir.is_dir()
    with pytest.raises(ValidationError, match="needs train_layers set"):
        FineTunedTransformer(2, cache_dir="auto")


def test_models_rebuilt_every_round_share_the_state_cache_on_disk(tmp_path, monkeypatch):
    """A labeling project and the ActiveLearner build a new model each round: with train_layers
    and no cache_dir they keep the frozen states in the anchoral cache; anything else is unchanged."""
    from anchoral.api.selection import build_model
    from anchoral.models import with_shared_state_cache
    from anchoral.store.create import DataSpec, init_project
    from anchoral.store.rounds import make_project_model

    assert with_shared_state_cache("finetune", {"train_layers": 2}) == {"train_layers": 2, "cache_dir": "auto"}
    for name, params in [("finetune", {}), ("finetune", {"train_layers": None}),
                         ("finetune", {"train_layers": 1, "cache_states": False}),
                         ("finetune", {"train_layers": 1, "cache_dir": None}),
                         ("finetune", {"train_layers": 1, "cache_dir": "/elsewhere"}), ("mlp", {"train_layers": 1})]:
        assert with_shared_state_cache(name, params) == params
    monkeypatch.setenv("ANCHORAL_CACHE", str(tmp_path / "cache"))
    shared = tmp_path / "cache" / "frozen-states"
    assert build_model("finetune", 2, seed=0, model_params={"train_layers": 1, "progress": False}).cache_dir == shared
    assert build_model("finetune", 2, seed=0, model_params={"progress": False}).cache_dir is None

    pool = tmp_path / "pool.csv"
    pool.write_text("id,text\n1,great film\n2,awful plot\n3,fine acting\n")
    project = init_project(tmp_path / "p", DataSpec(pool, "text", "id"), ["pos", "neg"], model="finetune",
                           model_params={"train_layers": 1, "progress": False})
    with project:
        assert make_project_model(project).cache_dir == shared
        assert "cache_dir" not in project.settings["model_params"]  # the project's own settings stay as given


@pytest.mark.real_data
def test_a_simulated_run_records_what_each_round_did_with_the_frozen_states():
    from anchoral.data.benchmarks import load_benchmark
    from anchoral.experiments.encoded import encode_benchmark
    from anchoral.experiments.simulate import RunSpec, simulate
    from anchoral.loop import LoopConfig

    benchmark = load_benchmark("vader-shortcut", pool_size=60, id_test_size=20, ood_test_per_group=5, rho=0.9)
    encoded = encode_benchmark(benchmark, progress=False)
    rows = simulate(encoded, RunSpec(strategy="entropy", seed=0, model="finetune",
                                     model_params={**TINY, "train_layers": 1},
                                     loop=LoopConfig(batch_size=10, budget=30, seed_size=10, checkpoints=())))
    assert [row["round"] for row in rows] == [0, 1, 2]
    first, *later = rows
    # round 0 computes the states of the pool and both test sets; later rounds only reuse them
    assert first["frozen_states_computed"] >= 0.9 * (60 + 20 + 20)
    for row in later:
        assert row["frozen_states_computed"] == 0 and row["frozen_states_from_disk"] == 0
        # the fit's texts and both test sets (20 + 4 x 5), and in a round that selects, the pool
        assert row["frozen_states_reused"] >= row["n_labeled"] + 40 + (60 - row["n_labeled"] if row["selected"] else 0)
