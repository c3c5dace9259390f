"""The per-text embedding cache: only texts never embedded are encoded, in any list order."""

import numpy as np

from anchoral.encoders import EmbeddingCache
from anchoral.encoders.hashing import HashingEncoder


class CountingEncoder:
    """Embeds a text as (length, number of spaces, 1); counts what it was asked to embed."""

    fingerprint = "counting-v1"
    dimension = 3

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, inputs, batch_size=64, progress=True):
        self.seen += list(inputs)
        return np.array([[len(t), t.count(" "), 1.0] for t in inputs], dtype=np.float32)


def test_only_new_texts_are_encoded_and_rows_follow_the_input_order(tmp_path):
    cache, encoder = EmbeddingCache(tmp_path), CountingEncoder()
    first = cache.encode_each(encoder, ["a b", "ccc", "a b"])
    assert encoder.seen == ["a b", "ccc"]  # the repeat is embedded once
    second = cache.encode_each(encoder, ["dd dd d", "ccc", "a b"])
    assert encoder.seen == ["a b", "ccc", "dd dd d"]
    assert np.array_equal(first, [[3, 1, 1], [3, 0, 1], [3, 1, 1]])
    assert np.array_equal(second, [[7, 2, 1], [3, 0, 1], [3, 1, 1]])


def test_a_new_cache_object_reads_the_shards_from_disk(tmp_path):
    EmbeddingCache(tmp_path).encode_each(CountingEncoder(), ["x", "y y"])
    encoder = CountingEncoder()
    again = EmbeddingCache(tmp_path).encode_each(encoder, ["y y", "x"])
    assert encoder.seen == [] and np.array_equal(again, [[3, 1, 1], [1, 0, 1]])
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_whole_list_entry_is_used_and_filed_text_by_text(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.encode(CountingEncoder(), ["p", "q q"])
    encoder = CountingEncoder()
    assert np.array_equal(cache.encode_each(encoder, ["p", "q q"]), [[1, 0, 1], [3, 1, 1]])
    assert np.array_equal(cache.encode_each(encoder, ["q q"]), [[3, 1, 1]])
    assert encoder.seen == []


def test_the_hashing_encoder_is_deterministic_and_normalised():
    encoder = HashingEncoder(dimension=64)
    first = encoder.encode(["a fine film", "a dreadful film"])
    assert first.shape == (2, 64) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    assert np.array_equal(first, HashingEncoder(dimension=64).encode(["a fine film", "a dreadful film"]))
    assert encoder.fingerprint != HashingEncoder(dimension=32).fingerprint
