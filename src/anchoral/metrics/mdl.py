"""Minimum-description-length probing, online (prequential) code (Voita & Titov 2020, §2.2;
ALVIN §5.3 and Table 5): how easily a target (here: the shortcut attribute) can be read
from a representation.

Order the probing set randomly with a fixed seed and cut it at the block schedule
(``VOITA_TITOV_FRACTIONS``: 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25, 50, 100% of
it; block ends ``int(fraction * n)``). The first block is sent with the uniform code,
t1 * log2(K) bits for K target values; every next block with the cross-entropy, in
bits, of its targets under a probe trained on all earlier blocks. The uniform code of
the whole set is n * log2(K); compression = uniform codelength / online codelength, so
1 means the representation does not help to transmit the target, and higher means
the target is easier to extract.

Choices where the paper leaves room, documented here:
- probes: ``"linear"`` (default) = multinomial logistic regression (L-BFGS) on inputs
  standardised with the training blocks' mean and std, its L2 strength chosen per block
  among C = 0.001, 0.01, 0.1 by 3-fold cross-validated log-loss on the training blocks
  (tolerance 1e-3; Voita & Titov pick their probes' stopping point on held-out training
  data too, and a code stays prequential as long as the probe depends only on earlier
  blocks); with fewer than 3 examples of a value to cross-validate, C = 0.001. A fixed
  C = 1 overfits the early blocks of a 256-dimensional f_enc and codes pure noise at
  compression 0.47 (with the choice: 0.98); adding C = 1 to the grid changes no
  compression of ours by more than 0.05 and doubles the time. ``"mlp"`` = one hidden ReLU layer of 128 units (scikit-learn's
  MLPClassifier, Adam, 200 epochs) on the same standardised inputs, its L2 penalty chosen
  per block between alpha = 3 and 30 by the log-loss on a held-out quarter of the
  training blocks (stratified, seeded), then refitted on all of them; with fewer than 8
  examples of a value, alpha = 30. (scikit-learn's default 1e-4 overfits and codes
  256-dimensional noise at 0.68 with alpha = 3, 0.97 with 30; a fixed 30 leaves a
  separable attribute at 2.5 where 3 gives 15.) It costs about four fits per block.
  Both probes are seeded, so a codelength is reproducible;
- while the training blocks lack a target value the probe cannot give it any
  probability, so the block is coded with the add-one (Laplace) rule mixed in:
  p = (m * p_probe + 1) / (m + K) for m training examples (a probe trained on one value
  only is just that rule); a probability is floored at 1e-12 (about 40 bits);
- ``accuracy`` is that of the last probe (trained on the first half) on the last block
  (the second half): held-out accuracy on half the probing set.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from anchoral.errors import ValidationError
from anchoral.validation import check_features

VOITA_TITOV_FRACTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)
PROBES = ("linear", "mlp")
PROBABILITY_FLOOR = 1e-12
MLP_HIDDEN_UNITS = 128
MLP_L2_GRID = (3.0, 30.0)
MLP_SELECTION_MIN_COUNT = 8
LINEAR_C_GRID = (0.001, 0.01, 0.1)
CV_FOLDS = 3


def probe_settings(probe: str) -> str:
    """Everything that determines a probe's codelengths besides its data (for caches to key on)."""
    if probe == "linear":
        return f"linear C={LINEAR_C_GRID} cv={CV_FOLDS} tol=1e-3 schedule={VOITA_TITOV_FRACTIONS}"
    return (f"mlp hidden={MLP_HIDDEN_UNITS} alpha={MLP_L2_GRID} min_count={MLP_SELECTION_MIN_COUNT} "
            f"schedule={VOITA_TITOV_FRACTIONS}")


@dataclass(frozen=True)
class OnlineCode:
    """The online codelength of a probing set and what it is made of (bits)."""

    codelength: float
    uniform_codelength: float
    accuracy: float
    n_examples: int
    n_values: int
    block_ends: tuple[int, ...]
    block_bits: tuple[float, ...]

    @property
    def compression(self) -> float:
        return self.uniform_codelength / self.codelength


def block_ends(n_examples: int, n_values: int, fractions=VOITA_TITOV_FRACTIONS) -> tuple[int, ...]:
    """End (exclusive) of each block: ``int(fraction * n_examples)``; the first block must hold
    at least one example per target value."""
    fractions = tuple(float(f) for f in fractions)
    if (len(fractions) < 2 or not all(0 < f <= 1 for f in fractions) or fractions[-1] != 1.0
            or any(b <= a for a, b in zip(fractions, fractions[1:]))):
        raise ValidationError(f"the MDL block schedule must be at least two increasing fractions in (0, 1] ending "
                              f"at 1; got {fractions}")
    ends = tuple(int(f * n_examples) for f in fractions)
    if ends[0] < n_values:
        needed = math.ceil(n_values / fractions[0])
        raise ValidationError(
            f"the first block of the MDL schedule holds {ends[0]} example(s) ({100 * fractions[0]:g}% of "
            f"{n_examples}), fewer than the {n_values} values of the probed target; the probing set needs at "
            f"least {needed} examples for this schedule")
    return ends


def online_codelength(representations, targets, *, probe: str = "linear", fractions=VOITA_TITOV_FRACTIONS,
                      seed: int = 0) -> OnlineCode:
    """The online (prequential) codelength of ``targets`` given ``representations`` (module docstring)."""
    representations = check_features(representations, "representations")
    targets = np.asarray(targets)
    if targets.ndim != 1 or targets.shape[0] != representations.shape[0] or not np.issubdtype(targets.dtype, np.integer):
        raise ValidationError(f"targets must be integer codes, one per representation row ({representations.shape[0]}); "
                              f"got dtype {targets.dtype}, shape {targets.shape}")
    if probe not in PROBES:
        raise ValidationError(f"probe must be one of {', '.join(PROBES)}; got {probe!r}")
    values, codes = np.unique(targets, return_inverse=True)
    if values.size < 2:
        raise ValidationError(f"the probing set has one attribute value ({values.tolist()}) in all "
                              f"{targets.size} examples; MDL probing needs at least two")
    n_values = int(values.size)
    ends = block_ends(targets.size, n_values, fractions)
    order = np.random.default_rng(seed).permutation(targets.size)
    inputs, codes = representations[order].astype(np.float64), codes[order]
    block_bits = [ends[0] * math.log2(n_values)]
    accuracy = float("nan")
    for start, stop in zip(ends, ends[1:]):
        if stop == start:
            block_bits.append(0.0)
            continue
        probabilities = _probe_probabilities(inputs[:start], codes[:start], inputs[start:stop], n_values, probe, seed)
        chosen = np.maximum(probabilities[np.arange(stop - start), codes[start:stop]], PROBABILITY_FLOOR)
        block_bits.append(float(-np.log2(chosen).sum()))
        accuracy = float((probabilities.argmax(axis=1) == codes[start:stop]).mean())
    return OnlineCode(codelength=float(sum(block_bits)), uniform_codelength=targets.size * math.log2(n_values),
                      accuracy=accuracy, n_examples=int(targets.size), n_values=n_values, block_ends=ends,
                      block_bits=tuple(block_bits))


def _probe_probabilities(train_x, train_y, test_x, n_values: int, probe: str, seed: int) -> np.ndarray:
    """Probabilities (rows of test_x, n_values columns) of a probe trained on (train_x, train_y)."""
    seen = np.unique(train_y)
    probabilities = np.zeros((test_x.shape[0], n_values))
    if seen.size > 1:
        mean, std = train_x.mean(axis=0), train_x.std(axis=0)
        std[std == 0] = 1.0
        smallest = int(np.bincount(train_y)[seen].min())
        train_x = (train_x - mean) / std
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on tiny early blocks
            model = _make_probe(probe, seed, smallest, train_x, train_y)
            model.fit(train_x, train_y)
        probabilities[:, model.classes_] = model.predict_proba((test_x - mean) / std)
    if seen.size < n_values:
        count = train_y.size
        probabilities = (count * probabilities + 1.0) / (count + n_values) if seen.size > 1 else \
            np.broadcast_to((np.bincount(train_y, minlength=n_values) + 1.0) / (count + n_values),
                            probabilities.shape).copy()
    return probabilities


def _make_probe(probe: str, seed: int, smallest_value_count: int, train_x: np.ndarray, train_y: np.ndarray):
    """The unfitted probe for one block, its regularisation chosen on the training blocks alone."""
    if probe == "linear":
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

        if smallest_value_count < CV_FOLDS:
            return LogisticRegression(C=LINEAR_C_GRID[0], max_iter=1000)
        return LogisticRegressionCV(Cs=LINEAR_C_GRID, cv=CV_FOLDS, scoring="neg_log_loss", max_iter=1000, tol=1e-3)
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    def mlp(alpha: float):
        return MLPClassifier(hidden_layer_sizes=(MLP_HIDDEN_UNITS,), alpha=alpha, max_iter=200, random_state=seed)

    if smallest_value_count < MLP_SELECTION_MIN_COUNT:
        return mlp(MLP_L2_GRID[-1])
    fit_x, held_x, fit_y, held_y = train_test_split(train_x, train_y, test_size=0.25, stratify=train_y,
                                                    random_state=seed)
    losses = [log_loss(held_y, mlp(alpha).fit(fit_x, fit_y).predict_proba(held_x), labels=np.unique(train_y))
              for alpha in MLP_L2_GRID]
    return mlp(MLP_L2_GRID[int(np.argmin(losses))])
