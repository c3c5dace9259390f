"""The VADER human-rated sentence sets (Hutto & Gilbert, ICWSM 2014), read from the
pinned ``vaderSentiment==3.3.2`` sdist.

Four domains: movie-review snippets, Amazon-review snippets, tweets and New York
Times editorial snippets. Each sentence carries the mean of human ratings in
[-4, 4]; the sentiment label is the sign of that mean, keeping |score| >= 0.5.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from anchoral.data.archives import VADER_SENTIMENT, fetch_archive, read_member
from anchoral.errors import AnchoralError, ValidationError, unknown_name

RATINGS_TARBALL = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
DOMAIN_FILES = {
    "movie": "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
    "amazon": "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
    "tweets": "hutto_ICWSM_2014/tweets_GroundTruth.txt",
    "nyt": "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt",
}
VADER_DOMAINS = tuple(DOMAIN_FILES)
LABEL_NAMES = ("negative", "positive")
MAX_ABS_SCORE = 4.0
COLUMNS = ("id", "text", "score", "label", "label_name", "domain")


def parse_ground_truth(raw: bytes, domain: str) -> pd.DataFrame:
    """Parse one ``*_GroundTruth.txt`` file into columns id, text, score, domain.

    Lines are ``id<TAB>mean score<TAB>text`` with CRLF endings. The files decode
    as UTF-8 (decoding them as latin-1 turns "clichés" into "clichÃ©s").
    """
    lines = raw.decode("utf-8").split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t", 2)
        if len(fields) != 3:
            raise AnchoralError(
                f"line {number} of the {domain!r} ratings has {len(fields)} tab-separated "
                f"field(s); expected 3 (id, score, text): {line[:80]!r}"
            )
        rows.append(fields)
    ids, scores, texts = zip(*rows) if rows else ((), (), ())
    return pd.DataFrame(
        {
            "id": [f"{domain}:{raw_id}" for raw_id in ids],
            "text": list(texts),
            "score": np.asarray(scores, dtype=np.float64),
            "domain": domain,
        }
    )


@functools.lru_cache(maxsize=None)
def _parsed_domain(archive_path: Path, domain: str) -> pd.DataFrame:
    return parse_ground_truth(read_member(archive_path, (RATINGS_TARBALL, DOMAIN_FILES[domain])), domain)


def read_ground_truth(domain: str) -> pd.DataFrame:
    """Every rated sentence of one domain (no filtering): id, text, score, domain."""
    (domain,) = _check_domains(domain)
    return _parsed_domain(fetch_archive(VADER_SENTIMENT), domain).copy()


def load_vader(domains: str | Iterable[str] = VADER_DOMAINS, *, min_abs_score: float = 0.5) -> pd.DataFrame:
    """Labelled VADER sentences of ``domains``, in the order given.

    Columns: ``id`` ("movie:17"), ``text``, ``score`` (mean rating in [-4, 4]),
    ``label`` (int64; 1 positive, 0 negative), ``label_name`` and ``domain``.
    Sentences with ``|score| < min_abs_score`` are dropped as too neutral to label.
    """
    domains = _check_domains(domains)
    min_abs_score = _check_min_abs_score(min_abs_score)
    archive_path = fetch_archive(VADER_SENTIMENT)
    frame = pd.concat([_parsed_domain(archive_path, domain) for domain in domains], ignore_index=True)
    frame = frame.loc[frame["score"].abs() >= min_abs_score].reset_index(drop=True)
    frame["label"] = (frame["score"] > 0).astype(np.int64)
    frame["label_name"] = frame["label"].map(dict(enumerate(LABEL_NAMES)))
    return frame.loc[:, list(COLUMNS)]


def _check_domains(domains) -> tuple[str, ...]:
    chosen = (domains,) if isinstance(domains, str) else tuple(domains)
    if not chosen:
        raise ValidationError(f"domains must name at least one of {', '.join(VADER_DOMAINS)}; got none")
    for domain in chosen:
        if domain not in DOMAIN_FILES:
            raise unknown_name("VADER domain", domain, VADER_DOMAINS)
    if len(set(chosen)) != len(chosen):
        raise ValidationError(f"domains must not repeat a domain; got {list(chosen)}")
    return chosen


def _check_min_abs_score(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"min_abs_score must be a number in (0, {MAX_ABS_SCORE}]; got {value!r}") from exc
    if not 0 < value <= MAX_ABS_SCORE:
        raise ValidationError(
            f"min_abs_score must be in (0, {MAX_ABS_SCORE}] (a score of 0 has no sentiment sign); got {value}"
        )
    return value
