"""Shared fixtures: small synthetic pools for fast unit tests, and a session cache
directory so the real archives and MiniLM embeddings are fetched/encoded once per run."""

from __future__ import annotations

import os

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def anchoral_cache(tmp_path_factory):
    """Point ANCHORAL_CACHE at a per-session directory unless the caller chose one."""
    chosen = os.environ.get("ANCHORAL_CACHE")
    if chosen:
        yield chosen
        return
    path = tmp_path_factory.mktemp("anchoral-cache")
    os.environ["ANCHORAL_CACHE"] = str(path)
    yield str(path)
    os.environ.pop("ANCHORAL_CACHE", None)


def make_blobs(n_per_class: int = 60, n_features: int = 8, n_classes: int = 2, separation: float = 3.0, seed: int = 0):
    """Gaussian blobs, one per class, as float32 features and int labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, n_features)) * separation
    features = np.concatenate([centres[c] + rng.normal(size=(n_per_class, n_features)) for c in range(n_classes)])
    labels = np.repeat(np.arange(n_classes), n_per_class)
    order = rng.permutation(labels.size)
    return features[order].astype(np.float32), labels[order]


@pytest.fixture
def blobs():
    return make_blobs()
