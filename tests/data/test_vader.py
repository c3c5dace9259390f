"""VADER ratings parsing and loading, and the dataset registry built on them."""

import numpy as np
import pytest

from anchoral.data.archives import VADER_SENTIMENT
from anchoral.data.registry import dataset_info, fetch_dataset, list_datasets, load_dataset
from anchoral.data.vader import load_vader, parse_ground_truth, read_ground_truth
from anchoral.errors import AnchoralError, UnknownNameError, ValidationError

RAW_ROWS = {"movie": 10_605, "amazon": 3_708, "tweets": 4_200, "nyt": 5_190}
KEPT_POSITIVE_NEGATIVE = {"movie": (4996, 5076), "amazon": (1750, 1235), "tweets": (2345, 1087), "nyt": (1187, 1783)}


def test_parse_ground_truth_strips_crlf_and_prefixes_ids_with_domain():
    raw = "1_2\t2.5\tclichés but fun\r\n1_3\t-0.25\tmeh\tstill text\r\n2_1\t-3\tawful".encode("utf-8")
    frame = parse_ground_truth(raw, "amazon")
    assert frame["id"].tolist() == ["amazon:1_2", "amazon:1_3", "amazon:2_1"]
    assert frame["text"].tolist() == ["clichés but fun", "meh\tstill text", "awful"]
    assert frame["score"].tolist() == [2.5, -0.25, -3.0]
    assert set(frame["domain"]) == {"amazon"}


def test_parse_ground_truth_rejects_a_line_without_three_fields():
    with pytest.raises(AnchoralError, match="line 2 .* 2 tab-separated field"):
        parse_ground_truth(b"1\t1.0\tok\r\n2\t1.0\r\n", "movie")


def test_unknown_domain_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="unknown VADER domain 'imdb'; expected one of: amazon, movie, nyt, tweets"):
        load_vader(("movie", "imdb"))


@pytest.mark.parametrize("min_abs_score", [0, -1, 4.5, "high"])
def test_min_abs_score_outside_zero_to_four_is_rejected(min_abs_score):
    with pytest.raises(ValidationError, match="min_abs_score must be"):
        load_vader(min_abs_score=min_abs_score)


def test_repeated_domain_is_rejected():
    with pytest.raises(ValidationError, match="must not repeat"):
        load_vader(("movie", "movie"))


def test_unknown_dataset_name_lists_registered_names():
    with pytest.raises(UnknownNameError, match="unknown dataset 'imdb'; expected one of: .*vader, vader-amazon"):
        load_dataset("imdb")


def test_registry_lists_vader_and_its_four_domains():
    infos = [info for info in list_datasets() if info.name.startswith("vader")]
    assert [info.name for info in infos] == ["vader", "vader-amazon", "vader-movie", "vader-nyt", "vader-tweets"]
    assert all(info.archive == VADER_SENTIMENT for info in infos)
    assert dataset_info("vader").attributes == ("domain",)
    assert dataset_info("vader").n_rows == sum(map(sum, KEPT_POSITIVE_NEGATIVE.values()))


@pytest.mark.real_data
def test_real_raw_row_counts_per_domain():
    for domain, n_rows in RAW_ROWS.items():
        frame = read_ground_truth(domain)
        assert len(frame) == n_rows
        assert frame["score"].between(-4, 4).all()
        assert not frame["text"].str.contains("\r").any()


@pytest.mark.real_data
def test_real_kept_counts_labels_and_columns():
    frame = load_vader()
    assert list(frame.columns) == ["id", "text", "score", "label", "label_name", "domain"]
    assert frame["label"].dtype == np.int64 and frame["score"].dtype == np.float64
    assert frame["id"].is_unique
    assert (frame["score"].abs() >= 0.5).all()
    assert ((frame["score"] > 0) == (frame["label"] == 1)).all()
    assert (frame["label_name"] == frame["label"].map({0: "negative", 1: "positive"})).all()
    for domain, (positive, negative) in KEPT_POSITIVE_NEGATIVE.items():
        labels = frame.loc[frame["domain"] == domain, "label"]
        assert (int((labels == 1).sum()), int((labels == 0).sum())) == (positive, negative)


@pytest.mark.real_data
def test_real_text_decodes_as_utf8():
    movie = load_vader("movie")
    assert movie["text"].str.contains("clichés").any()
    assert not movie["text"].str.contains("Ã©").any()


@pytest.mark.real_data
def test_real_registry_row_counts_match_loaded_frames():
    assert fetch_dataset("vader").name == VADER_SENTIMENT.filename
    for info in list_datasets():
        frame = load_dataset(info.name)
        assert len(frame) == info.n_rows
        assert tuple(frame.columns) == info.columns
