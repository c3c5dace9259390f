"""The randomly initialised MiniLM (Tamkin et al. Fig. 6's "not pretrained" arm)."""

import numpy as np
import pytest

from anchoral.encoders import MiniLMEncoder, make_encoder
from anchoral.encoders.registry import available_encoders, encoder_parameters
from anchoral.errors import UnknownNameError, ValidationError

TEXTS = ["a wonderful, moving film", "the worst thing I have bought", "ok"]


@pytest.fixture(scope="module")
def embeddings():
    return {seed: make_encoder("minilm-random", seed=seed).encode(TEXTS, progress=False) for seed in (0, 1)}


def test_same_seed_same_network_other_seed_other_network(embeddings):
    again = make_encoder("minilm-random", seed=0).encode(TEXTS, progress=False)
    assert np.allclose(again, embeddings[0], atol=1e-6)
    assert not np.allclose(embeddings[0], embeddings[1], atol=1e-3)


def test_outputs_are_unit_rows_of_the_pretrained_shape(embeddings):
    assert embeddings[0].shape == (3, MiniLMEncoder.dimension) and embeddings[0].dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings[0], axis=1), 1.0, atol=1e-5)


def test_random_weights_are_not_the_pretrained_ones(embeddings):
    pretrained = MiniLMEncoder().encode(TEXTS, progress=False)
    assert not np.allclose(pretrained, embeddings[0], atol=1e-2)
    assert make_encoder("minilm-random").fingerprint != MiniLMEncoder().fingerprint
    assert make_encoder("minilm-random", seed=0).fingerprint != make_encoder("minilm-random", seed=1).fingerprint


def test_the_registry_names_encoders_and_their_parameters():
    assert {"minilm", "minilm-random", "hashing"} <= set(available_encoders())
    assert "seed" in encoder_parameters("minilm-random")
    with pytest.raises(UnknownNameError, match="minilm-random"):
        make_encoder("bert")
    with pytest.raises(ValidationError, match="unknown parameter"):
        make_encoder("hashing", dim=3)
