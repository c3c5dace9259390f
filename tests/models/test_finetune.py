"""The fully fine-tuned transformer: tiny real fine-tuning runs of the bundled MiniLM on
real VADER sentences (CPU), its use by strategies and by ``simulate``, and its input checks.

The real runs are kept small (32 training sentences, 3 epochs, 64 word pieces) so the
whole module takes about a minute on two cores; a higher learning rate than the paper's
2e-5 makes the loss fall clearly within those 3 epochs.
"""

import json
import re

import numpy as np
import pytest
import torch

from anchoral.data.benchmarks import load_benchmark
from anchoral.data.vader import load_vader
from anchoral.errors import ValidationError
from anchoral.experiments.encoded import encode_benchmark
from anchoral.experiments.simulate import RunSpec, simulate
from anchoral.loop import LoopConfig
from anchoral.models import STOP_EPOCH_CAP, FineTunedTransformer, make_model
from anchoral.models.finetune import length_grouped_batches
from anchoral.strategies import RoundState, make_strategy

N_TRAIN = 32
N_UNLABELED = 48
TINY = {"max_epochs": 3, "learning_rate": 1e-4, "max_length": 64, "progress": False}


@pytest.fixture(scope="module")
def sentences():
    """N_TRAIN + N_UNLABELED real VADER sentences, balanced over the two labels."""
    frame = load_vader(("movie", "amazon"))
    rng = np.random.default_rng(0)
    half = (N_TRAIN + N_UNLABELED) // 2
    rows = np.concatenate([rng.choice(np.flatnonzero(frame["label"] == label), half, replace=False) for label in (0, 1)])
    rows = rng.permutation(rows)
    return frame["text"].iloc[rows].tolist(), frame["label"].iloc[rows].to_numpy()


@pytest.fixture(scope="module")
def fitted(sentences):
    texts, labels = sentences
    model = FineTunedTransformer(2, seed=0, stop_loss_ratio=0, **TINY)
    report = model.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    return model, report


@pytest.mark.real_data
def test_fit_records_the_loss_curve_and_per_epoch_correctness(fitted):
    _, report = fitted
    assert report.stop_reason == STOP_EPOCH_CAP and report.epochs == 3
    assert report.steps == 3 * (N_TRAIN // 16)
    assert len(report.epoch_losses) == 3
    assert report.correctness.shape == (3, N_TRAIN) and report.correctness.dtype == bool
    assert report.epoch_losses[-1] < report.epoch_losses[0]
    assert report.final_loss < report.first_loss
    assert report.extra["device"] == "cpu"
    # The training texts end up mostly correct, as the last epoch's record says.
    assert report.correctness[-1].mean() > 0.6


@pytest.mark.real_data
def test_every_fit_restarts_from_the_pretrained_weights(sentences, fitted):
    texts, labels = sentences
    model, _ = fitted
    probe = texts[N_TRAIN:]
    after_a = model.predict_proba(probe)
    model.fit(texts[16:N_TRAIN + 16], labels[16:N_TRAIN + 16])  # fit B, on other examples
    after_b = model.predict_proba(probe)
    again = model.fit(texts[:N_TRAIN], labels[:N_TRAIN])  # fit A again
    np.testing.assert_array_equal(model.predict_proba(probe), after_a)
    assert not np.allclose(after_b, after_a)
    assert again.epoch_losses == fitted[1].epoch_losses
    np.testing.assert_array_equal(again.correctness, fitted[1].correctness)

    fresh = FineTunedTransformer(2, seed=0, stop_loss_ratio=0, **TINY)
    fresh.fit(texts[:N_TRAIN], labels[:N_TRAIN])
    np.testing.assert_allclose(fresh.predict_proba(probe), after_a, atol=1e-6)


@pytest.mark.real_data
def test_predict_proba_is_f_cls_of_f_enc_in_input_order(sentences, fitted):
    texts, _ = sentences
    model, _ = fitted
    probabilities = model.predict_proba(texts)
    embeddings = model.embed(texts)
    assert embeddings.shape == (len(texts), model.hidden_size) and embeddings.dtype == np.float32
    assert probabilities.shape == (len(texts), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(model.proba_from_embedding(embeddings), probabilities, atol=1e-6)
    # Length-sorted, dynamically padded batches: outputs come back in input order, unchanged by padding.
    reversed_embeddings = model.embed(texts[::-1])
    np.testing.assert_allclose(reversed_embeddings[::-1], embeddings, atol=1e-4)
    alone = model.embed([texts[5]])
    np.testing.assert_allclose(alone[0], embeddings[5], atol=1e-4)


@pytest.mark.real_data
def test_mean_pooling_gives_a_different_representation(sentences, fitted):
    texts, labels = sentences
    cls_model, _ = fitted
    mean_model = FineTunedTransformer(2, pooling="mean", stop_loss_ratio=0, **{**TINY, "max_epochs": 1})
    mean_model.fit(texts[:16], labels[:16])
    embeddings = mean_model.embed(texts[:4])
    np.testing.assert_allclose(mean_model.proba_from_embedding(embeddings), mean_model.predict_proba(texts[:4]), atol=1e-6)
    assert not np.allclose(embeddings, cls_model.embed(texts[:4]), atol=1e-2)


@pytest.mark.real_data
@pytest.mark.parametrize("strategy", ["alvin", "badge", "entropy", "least-confidence", "margin", "cal", "alfamix",
                                      "bert-km", "coreset", "random"])
def test_strategies_select_from_the_fine_tuned_model(sentences, fitted, strategy):
    texts, labels = sentences
    model, report = fitted  # (a refit on the same data in between gives the same model)
    features = np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)  # read by neither strategy
    state = RoundState(
        features=features,
        labeled_indices=np.arange(N_TRAIN),
        labeled_labels=labels[:N_TRAIN],
        model=model,
        fit_report=report,
        n_classes=2,
        inputs=texts,
    )
    selection = make_strategy(strategy).select(state, 8, np.random.default_rng(0))
    assert selection.indices.size == 8 and np.unique(selection.indices).size == 8
    assert selection.indices.min() >= N_TRAIN  # only unlabeled pool examples
    if strategy in ("alvin", "badge", "cal", "alfamix", "coreset"):  # the ones that read f_enc
        assert state.pool_embeddings.shape == (len(texts), model.hidden_size)
    if strategy == "alfamix":  # gradients through the fine-tuned classification head, not finite differences
        assert selection.diagnostics["gradient"] == "autograd"


def test_use_device_routes_auto_models_and_refuses_a_missing_gpu(monkeypatch):
    from anchoral.models import use_device
    from anchoral.models.finetune import DEVICE_ENV

    monkeypatch.setenv(DEVICE_ENV, "auto")  # undone after the test, with what use_device sets
    use_device("cpu")
    assert FineTunedTransformer(2).device == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValidationError, match="no CUDA GPU"):
            use_device("cuda")
        monkeypatch.setenv(DEVICE_ENV, "cuda")
        with pytest.raises(ValidationError, match="no CUDA GPU"):
            FineTunedTransformer(2)
    with pytest.raises(ValidationError, match="device must be"):
        use_device("tpu")


@pytest.mark.real_data
def test_simulate_runs_rounds_with_the_fine_tuned_model():
    benchmark = load_benchmark("vader-shortcut", pool_size=80, id_test_size=16, ood_test_per_group=4)
    encoded = encode_benchmark(benchmark, progress=False)
    spec = RunSpec(strategy="alvin", seed=0, model="finetune", model_params={**TINY, "max_epochs": 2},
                   loop=LoopConfig(batch_size=8, budget=24, seed_size=16, checkpoints=()))
    rows = simulate(encoded, spec)
    assert [row["n_labeled"] for row in rows] == [16, 24]
    assert len(rows[0]["selected"]) == 8 and len(set(rows[0]["selected"])) == 8
    for row in rows:
        assert row["model"] == "finetune"
        assert row["stop_reason"] in {"loss_ratio", "epoch_cap"}
        for metric in ("id_accuracy", "ood_accuracy", "worst_group_accuracy"):
            assert 0 <= row[metric] <= 1
        json.loads(row["diagnostics"])


def test_length_grouped_batches_cover_every_example_once_and_group_similar_lengths():
    lengths = np.random.default_rng(1).integers(5, 80, size=150)
    batches = length_grouped_batches(lengths, 16, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(150))
    assert all(batch.size <= 16 for batch in batches)
    padded = sum(lengths[batch].max() * batch.size for batch in batches)
    random_padded = sum(lengths[batch].max() * batch.size for batch in np.array_split(np.arange(150), 10))
    assert padded < random_padded
    again = length_grouped_batches(lengths, 16, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_registered_as_finetune_and_consumes_texts():
    model = make_model("finetune", 3, seed=2, progress=False)
    assert isinstance(model, FineTunedTransformer)
    assert model.input_kind == "texts" and model.n_classes == 3 and model.seed == 2
    assert model.device == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_classes": 1}, "at least 2"),
        ({"pooling": "max"}, "pooling must be one of cls, mean"),
        ({"checkpoint": "/nonexistent/bert-base-uncased"}, "local Hugging Face checkpoint directory"),
        ({"checkpoint": 3}, "path to a local checkpoint"),
        ({"device": "tpu"}, "device must be"),
        ({"learning_rate": 0}, "learning_rate must be a positive number"),
        ({"stop_loss_ratio": 1.0}, "stop_loss_ratio must be in [0, 1)"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"max_epochs": 2.5}, "max_epochs must be a positive integer"),
        ({"dropout": 1.5}, "dropout must be None or in [0, 1)"),
        ({"weight_decay": -1}, "weight_decay must be a non-negative number"),
    ],
)
def test_constructor_rejects_bad_parameters(params, message):
    params = {"n_classes": 2, **params}
    with pytest.raises(ValidationError, match=re.escape(message)):
        FineTunedTransformer(params.pop("n_classes"), **params)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is present")
def test_asking_for_cuda_without_a_gpu_says_so():
    with pytest.raises(ValidationError, match="no CUDA GPU"):
        FineTunedTransformer(2, device="cuda")


@pytest.mark.parametrize(
    "texts, labels, message",
    [
        ("a single sentence", [0], "single str"),
        (np.zeros((4, 3), dtype=np.float32), [0, 1, 0, 1], "numeric array of shape"),
        ([1, 2], [0, 1], "item 0 is a int"),
        ([], [], "empty"),
        (["good", "bad"], [0], "labels has 1 entries; expected 2"),
        (["good", "bad"], [0, 2], r"class ids in \[0, 2\)"),
        (["good", "bad"], [0.5, 1], "integer class ids"),
    ],
)
def test_fit_rejects_bad_inputs_before_loading_anything(texts, labels, message):
    model = FineTunedTransformer(2, progress=False)
    with pytest.raises(ValidationError, match=message):
        model.fit(texts, labels)
    assert model.encoder_ is None


def test_inference_before_fit_is_refused():
    model = FineTunedTransformer(2, progress=False)
    for call in (model.predict_proba, model.embed):
        with pytest.raises(ValidationError, match="not fitted yet"):
            call(["good"])


@pytest.mark.real_data
def test_inference_rejects_bad_inputs(fitted):
    model, _ = fitted
    with pytest.raises(ValidationError, match="embeddings must have 384 columns"):
        model.proba_from_embedding(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValidationError, match="must contain only strings"):
        model.predict_proba(["fine", None])
    with pytest.raises(ValidationError, match="pass the texts, not encoder features"):
        model.embed(np.zeros((2, 384), dtype=np.float32))


def test_unknown_parameters_are_reported_by_make_model():
    with pytest.raises(ValidationError, match="invalid parameters for model 'finetune'"):
        make_model("finetune", 2, n_layers=3)
