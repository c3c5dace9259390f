"""Image encoders for Colored-MNIST: raw pixels, and a small CNN pretrained on a disjoint
split of the digits (0-9 classification) whose penultimate layer gives the features.

The CNN is "pretrained" in Tamkin et al.'s sense only at toy scale: it has seen 1,500
other digits, each drawn in a random colour (colour independent of the digit), so its
features know digit shapes and have seen both colours without any correlation between them.
"""

from __future__ import annotations

import hashlib
import io
from typing import Sequence

import numpy as np

from anchoral.errors import ValidationError
from anchoral.validation import check_positive_int

IMAGE_SHAPE = (3, 28, 28)


def _check_images(inputs) -> np.ndarray:
    images = np.asarray(inputs, dtype=np.float32)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise ValidationError(f"inputs must be images of shape (n, {', '.join(map(str, IMAGE_SHAPE))}); "
                              f"got shape {images.shape}")
    return images


class PixelEncoder:
    """The image's pixels as features: (3, 28, 28) -> 2,352 values in [0, 1]."""

    dimension = int(np.prod(IMAGE_SHAPE))
    fingerprint = "pixels-3x28x28"

    def encode(self, inputs: Sequence, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        images = _check_images(inputs)
        return images.reshape(images.shape[0], -1).copy()


def _network(hidden: int):
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 5 * 5, hidden), nn.ReLU(),
        nn.Linear(hidden, 10),
    )


class DigitsCNNEncoder:
    """A two-conv-layer CNN trained to classify the 1,500 pretraining digits (0-9), frozen;
    features = its last hidden layer (ReLU, ``dimension`` values).

    Parameters
    ----------
    seed : int, default 0
        Seeds the initial weights, the random colours of the pretraining digits and the minibatches.
    epochs : int, default 15
    dimension : int, default 64
    """

    def __init__(self, seed: int = 0, epochs: int = 15, dimension: int = 64):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValidationError(f"seed must be a non-negative integer; got {seed!r}")
        self.seed = seed
        self.epochs = check_positive_int(epochs, "epochs")
        self.dimension = check_positive_int(dimension, "dimension")
        self.fingerprint = "digits-cnn-" + hashlib.sha256(
            f"v1/{seed}/{epochs}/{dimension}".encode()).hexdigest()[:16]
        self._network = None

    def _weights_path(self):
        from anchoral.data.archives import cache_dir

        return cache_dir() / "models" / f"{self.fingerprint}.pt"

    def network(self):
        """The trained network (trained once, then loaded from the cache directory)."""
        if self._network is None:
            import torch

            network = _network(self.dimension)
            path = self._weights_path()
            if path.exists():
                network.load_state_dict(torch.load(path, weights_only=True))
            else:
                self._pretrain(network)
                from anchoral.encoders.cache import _write_atomically

                buffer = io.BytesIO()
                torch.save(network.state_dict(), buffer)
                _write_atomically(path, lambda file: file.write(buffer.getvalue()), suffix=".pt.tmp")
            self._network = network.eval()
        return self._network

    def _pretrain(self, network) -> None:
        import torch

        from anchoral.data.mnist import colorize, load_mnist_digits, pretraining_mask

        images, digits = load_mnist_digits()
        mask = pretraining_mask(digits)
        rng = np.random.default_rng(self.seed)
        inputs = torch.from_numpy(colorize(images[mask], rng.integers(0, 2, size=int(mask.sum()))))
        targets = torch.from_numpy(digits[mask])
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        for layer in network:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
        optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
        network.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(targets), generator=generator)
            for start in range(0, len(order), 64):
                batch = order[start : start + 64]
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(network(inputs[batch]), targets[batch])
                loss.backward()
                optimiser.step()

    def encode(self, inputs: Sequence, batch_size: int = 256, progress: bool = True) -> np.ndarray:
        import torch

        images = _check_images(inputs)
        body = self.network()[:-1]  # everything up to the last hidden ReLU
        output = np.empty((images.shape[0], self.dimension), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                output[start : start + batch_size] = body(torch.from_numpy(images[start : start + batch_size])).numpy()
        return output
