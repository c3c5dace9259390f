import os

import numpy as np
import pytest

from anchoral.encoders import EmbeddingCache, MiniLMEncoder, content_hash
from anchoral.errors import ValidationError


@pytest.fixture(scope="module")
def encoder():
    return MiniLMEncoder()


@pytest.mark.real_data
def test_real_minilm_embeds_offline_and_puts_paraphrases_closer(encoder):
    texts = ["I loved this movie, it was wonderful.", "What a wonderful film, I adored it.", "Quarterly tax filings are due in April."]
    embeddings = encoder.encode(texts, progress=False)
    assert embeddings.shape == (3, 384) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-4)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > 0.6 > similarity[0, 2]
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.mark.real_data
def test_encoding_keeps_input_order_whatever_the_lengths(encoder):
    texts = ["a much longer sentence about the weather in the mountains today", "short", "medium sized text here"]
    together = encoder.encode(texts, batch_size=2, progress=False)
    one_by_one = np.concatenate([encoder.encode([t], progress=False) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_fingerprint_is_stable_and_depends_on_truncation():
    assert MiniLMEncoder().fingerprint == MiniLMEncoder().fingerprint
    assert MiniLMEncoder(max_seq_length=64).fingerprint != MiniLMEncoder().fingerprint


def test_non_text_input_is_rejected(encoder):
    with pytest.raises(ValidationError, match="strings"):
        encoder.encode(["fine", 3], progress=False)


class CountingEncoder:
    """Wraps an encoder and counts the texts it was asked to embed."""

    def __init__(self, inner):
        self.inner, self.fingerprint, self.dimension, self.calls = inner, inner.fingerprint, inner.dimension, 0

    def encode(self, texts, batch_size=64, progress=True):
        self.calls += len(texts)
        return self.inner.encode(texts, batch_size=batch_size, progress=progress)


@pytest.mark.real_data
def test_cache_computes_once_and_returns_the_same_memory_mapped_embeddings(encoder, tmp_path):
    counting = CountingEncoder(encoder)
    cache = EmbeddingCache(tmp_path)
    texts = ["good film", "bad film", "fine film"]
    first = cache.encode(counting, texts, progress=False)
    second = cache.encode(counting, texts, progress=False)
    assert counting.calls == 3
    assert isinstance(second, np.memmap)
    np.testing.assert_array_equal(first, second)
    assert not list(tmp_path.rglob("*.tmp"))
    cache.encode(counting, texts[::-1], progress=False)  # other content, other key
    assert counting.calls == 6


def test_content_hash_distinguishes_order_and_boundaries():
    assert content_hash(["ab", "c"]) != content_hash(["a", "bc"])
    assert content_hash(["a", "b"]) != content_hash(["b", "a"])
    assert content_hash(["a", "b"]) == content_hash(["a", "b"])


@pytest.mark.real_data
def test_thread_count_does_not_change_embeddings_or_fingerprint_and_is_restored(encoder):
    import torch

    texts = ["I loved this movie, it was wonderful.", "meh", "Quarterly tax filings are due in April, they say."]
    before = torch.get_num_threads()
    two_threads = MiniLMEncoder(num_threads=2)
    np.testing.assert_allclose(two_threads.encode(texts, progress=False), encoder.encode(texts, progress=False),
                               atol=1e-5)
    assert two_threads.fingerprint == encoder.fingerprint
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("encoder_name", ["minilm", "minilm-random"])
def test_a_single_string_is_refused_rather_than_encoded_character_by_character(encoder_name):
    from anchoral.encoders.registry import encoder_class

    with pytest.raises(ValidationError, match="single str"):
        encoder_class(encoder_name)().encode("great movie")
