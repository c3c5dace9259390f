"""A benchmark together with its frozen-encoder features (computed once, cached on disk)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anchoral.data.benchmarks import Benchmark
from anchoral.encoders.base import Encoder
from anchoral.encoders.cache import EmbeddingCache, default_cache
from anchoral.execution import Executor


@dataclass(frozen=True)
class EncodedBenchmark:
    benchmark: Benchmark
    pool_features: np.ndarray
    id_features: np.ndarray
    ood_features: np.ndarray
    encoder_fingerprint: str

    @property
    def n_classes(self) -> int:
        return len(self.benchmark.class_names)

    @property
    def n_groups(self) -> int:
        return len(self.benchmark.group_names)


class ExecutedEncoder:
    """``encoder`` whose ``encode`` runs through ``executor`` (e.g. blocks on Ray actors).

    Same ``fingerprint`` and ``dimension`` as the wrapped encoder: the executor changes
    where the rows are computed, not what they are, so cache entries are shared."""

    def __init__(self, encoder: Encoder, executor: Executor):
        self.encoder = encoder
        self.executor = executor
        self.fingerprint = encoder.fingerprint
        self.dimension = encoder.dimension

    def encode(self, inputs, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        return self.executor.encode(self.encoder, inputs, batch_size=batch_size, progress=progress)


def encode_benchmark(benchmark: Benchmark, encoder: Encoder | None = None, cache: EmbeddingCache | None = None,
                     *, progress: bool = True, executor: Executor | None = None) -> EncodedBenchmark:
    """Embed the pool and both test sets with ``encoder`` (default: MiniLM) through the cache
    (text by text, so benchmark variants drawn from one corpus reuse each other's embeddings).

    ``executor`` (``anchoral.execution``) encodes the texts the cache misses, e.g. over
    blocks on Ray workers that each load the encoder once; ``None`` = in this process."""
    if encoder is None:
        from anchoral.encoders.minilm import MiniLMEncoder

        encoder = MiniLMEncoder()
    if executor is not None:
        encoder = ExecutedEncoder(encoder, executor)
    cache = cache or default_cache()
    splits = (benchmark.pool, benchmark.id_test, benchmark.ood_test)
    if isinstance(benchmark.pool.texts, np.ndarray):  # images: one array, cached by its bytes
        inputs = np.concatenate([split.texts for split in splits])
        features = cache.encode_array(encoder, inputs, progress=progress)
    else:
        texts = [text for split in splits for text in split.texts]
        features = cache.encode_each(encoder, texts, progress=progress)
    ends = np.cumsum([len(split) for split in splits])
    return EncodedBenchmark(
        benchmark=benchmark,
        pool_features=features[: ends[0]],
        id_features=features[ends[0] : ends[1]],
        ood_features=features[ends[1] : ends[2]],
        encoder_fingerprint=encoder.fingerprint,
    )
