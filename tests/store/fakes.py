"""Fast stand-ins for the slow parts (the MiniLM encoder) and small synthetic pools,
shared by the store and serve tests. Real-data tests use MiniLM and VADER instead."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pandas as pd

POSITIVE_WORDS = ("good", "great", "lovely", "superb", "fine", "happy", "bright", "warm")
NEGATIVE_WORDS = ("bad", "awful", "poor", "dull", "sad", "broken", "cold", "grim")
NEUTRAL_WORDS = ("the", "film", "phone", "book", "meal", "day", "service", "song", "was", "really")


class HashingEncoder:
    """Bag of hashed words, L2-normalised: deterministic, instant, separates our synthetic classes."""

    fingerprint = "test-hashing-encoder-v1"
    dimension = 32

    def __init__(self, delay_per_text: float = 0.0):
        self.delay_per_text = delay_per_text
        self.calls = 0

    def encode(self, inputs, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        self.calls += 1
        texts = list(inputs)
        if self.delay_per_text:
            time.sleep(self.delay_per_text * len(texts))
        output = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                output[row, int(hashlib.sha1(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        return output / np.maximum(np.linalg.norm(output, axis=1, keepdims=True), 1e-6)


def synthetic_pool(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Columns id ("doc-1", ...), text and truth ("positive"/"negative"), classes alternating."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(n):
        truth = "positive" if index % 2 == 0 else "negative"
        words = list(rng.choice(POSITIVE_WORDS if truth == "positive" else NEGATIVE_WORDS, size=3))
        words += list(rng.choice(NEUTRAL_WORDS, size=4))
        rng.shuffle(words)
        rows.append({"id": f"doc-{index + 1}", "text": " ".join(words) + f" #{index}", "truth": truth})
    return pd.DataFrame(rows)


def write_pool(path, n: int = 60, *, labeled: int = 0, seed: int = 0) -> pd.DataFrame:
    """Write a synthetic pool as CSV with a ``label`` column filled for the first ``labeled`` rows."""
    frame = synthetic_pool(n, seed)
    frame["label"] = [truth if index < labeled else None for index, truth in enumerate(frame["truth"])]
    frame[["id", "text", "label"]].to_csv(path, index=False)
    return frame
