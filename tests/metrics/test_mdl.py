import math

import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.metrics.mdl import VOITA_TITOV_FRACTIONS, block_ends, online_codelength


def in_transmission_order(ordered, seed=0):
    """Targets laid out so that the seeded shuffle of ``online_codelength`` puts them back in ``ordered``."""
    ordered = np.asarray(ordered)
    laid_out = np.empty_like(ordered)
    laid_out[np.random.default_rng(seed).permutation(ordered.size)] = ordered
    return laid_out


def test_block_ends_follow_voita_and_titov_schedule():
    assert block_ends(10_000, 2) == (10, 20, 40, 80, 160, 320, 625, 1250, 2500, 5000, 10_000)
    assert VOITA_TITOV_FRACTIONS[0] == 0.001 and VOITA_TITOV_FRACTIONS[-1] == 1.0


def test_codelength_of_a_hand_sized_example_equals_the_hand_computation():
    # Identical (zero) representations: the linear probe can only learn the class frequencies of
    # the earlier blocks, so every bit can be counted by hand.
    ordered = [0, 1, 0, 0, 1, 1, 0, 0, 0, 1]
    code = online_codelength(np.zeros((10, 3)), in_transmission_order(ordered), fractions=(0.2, 0.5, 1.0))
    first = 2 * math.log2(2)                       # uniform code for the first 2
    second = 3 * -math.log2(0.5)                   # 0, 0, 1 under the 1:1 frequencies of block one
    third = 2 * -math.log2(0.4) + 3 * -math.log2(0.6)  # 1, 0, 0, 0, 1 under 3:2 of the first five
    assert code.block_ends == (2, 5, 10)
    np.testing.assert_allclose(code.block_bits, [first, second, third], rtol=1e-3)
    np.testing.assert_allclose(code.codelength, first + second + third, rtol=1e-3)
    assert code.uniform_codelength == 10.0
    np.testing.assert_allclose(code.compression, 10.0 / (first + second + third), rtol=1e-3)
    assert code.accuracy == pytest.approx(0.6)  # the last probe predicts the majority value 0


def test_a_value_missing_from_the_training_blocks_is_coded_with_the_add_one_rule():
    ordered = [0, 0, 1, 0, 1, 1]
    code = online_codelength(np.zeros((6, 2)), in_transmission_order(ordered), fractions=(1 / 3, 2 / 3, 1.0))
    # block two (1, 0) after two 0s: p(0) = 3/4, p(1) = 1/4
    np.testing.assert_allclose(code.block_bits[1], -math.log2(0.25) - math.log2(0.75), rtol=1e-9)


def separable_and_noise(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    attribute = rng.integers(0, 2, size=n)
    noise = rng.normal(size=(n, 16))
    separable = noise.copy()
    separable[:, 0] += np.where(attribute == 1, 4.0, -4.0)
    return separable, noise, attribute


@pytest.mark.parametrize("probe", ["linear", "mlp"])
def test_a_linearly_separable_attribute_compresses_well_and_noise_does_not(probe):
    separable, noise, attribute = separable_and_noise()
    readable = online_codelength(separable, attribute, probe=probe)
    unreadable = online_codelength(noise, attribute, probe=probe)
    assert readable.compression > 5
    assert readable.accuracy > 0.97
    assert 0.85 < unreadable.compression < 1.05
    assert 0.4 < unreadable.accuracy < 0.6


def test_the_same_seed_gives_the_same_codelength():
    separable, _, attribute = separable_and_noise(n=2000)
    first = online_codelength(separable[:, :4], attribute, probe="mlp", seed=3)
    assert online_codelength(separable[:, :4], attribute, probe="mlp", seed=3) == first


def test_a_first_block_smaller_than_the_number_of_values_is_one_clear_error():
    with pytest.raises(ValidationError) as raised:
        online_codelength(np.zeros((1100, 4)), np.arange(1100) % 2)
    message = str(raised.value)
    assert "\n" not in message
    assert "first block" in message and "holds 1 example" in message and "at least 2000 examples" in message


def test_a_probing_set_with_one_attribute_value_is_one_clear_error():
    with pytest.raises(ValidationError) as raised:
        online_codelength(np.zeros((3000, 4)), np.ones(3000, dtype=int))
    assert "\n" not in str(raised.value) and "one attribute value" in str(raised.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"probe": "svm"}, "probe must be one of"),
    ({"fractions": (0.5, 0.2, 1.0)}, "increasing fractions"),
    ({"fractions": (0.1, 0.5)}, "ending at 1"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        online_codelength(np.zeros((3000, 4)), np.arange(3000) % 2, **kwargs)


def test_noise_in_a_wide_representation_still_compresses_at_about_one():
    # 256 dimensions, as a head's f_enc: a linear probe with a fixed weak penalty (C = 1) codes it at 0.47
    rng = np.random.default_rng(1)
    code = online_codelength(rng.normal(size=(2000, 256)), rng.integers(0, 2, size=2000))
    assert 0.9 < code.compression < 1.05
