"""Image encoders for colored-mnist: pixels, and the small CNN pretrained on held-out digits."""

import numpy as np
import pytest

from anchoral.data import load_benchmark
from anchoral.encoders import make_encoder
from anchoral.encoders.images import DigitsCNNEncoder, PixelEncoder
from anchoral.errors import ValidationError
from anchoral.experiments.encoded import encode_benchmark


def test_pixels_are_the_flattened_image():
    images = np.random.default_rng(0).random((2, 3, 28, 28), dtype=np.float32)
    features = PixelEncoder().encode(images)
    assert features.shape == (2, 2352) and np.array_equal(features[1], images[1].ravel())
    with pytest.raises(ValidationError, match="images of shape"):
        PixelEncoder().encode(np.zeros((2, 28, 28)))


@pytest.mark.real_data
def test_the_cnn_trains_once_then_loads_its_weights_and_embeds_colored_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("ANCHORAL_CACHE", str(tmp_path))
    encoder = DigitsCNNEncoder(epochs=1, dimension=16)
    benchmark = load_benchmark("colored-mnist", pool_size=200, id_test_size=50, ood_test_per_group=25)
    encoded = encode_benchmark(benchmark, encoder, progress=False)
    assert encoded.pool_features.shape == (200, 16) and encoded.ood_features.shape == (100, 16)
    assert (encoded.pool_features >= 0).all()  # last hidden ReLU
    assert list((tmp_path / "models").glob("digits-cnn-*.pt"))
    reloaded = make_encoder("digits-cnn", epochs=1, dimension=16)
    assert np.allclose(reloaded.encode(benchmark.pool.texts[:5]), encoded.pool_features[:5], atol=1e-5)
    assert encode_benchmark(benchmark, make_encoder("pixels"), progress=False).pool_features.shape == (200, 2352)
