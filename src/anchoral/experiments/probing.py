"""What a study keeps of each trained model's representation, for analyses after the runs:
the probing set of ALVIN §5.3's shortcut-extractability probe (Voita & Titov 2020's MDL
probing, ``anchoral.metrics.mdl``) and the snapshots of f_enc on it.

The probing set is drawn from the benchmark's test splits (ID and OOD, each example
once), balanced over the shortcut attribute and the label: every (label x attribute)
group contributes the same number of examples, the size of the smallest, so neither the
label nor the group share can stand in for the attribute. Like ``BenchmarkEvaluator``
it reads the true groups: it is evaluator-side, never shown to a strategy. Groups
outside the label x attribute grid (rotten-tomatoes' VADER test sentences) carry no
shortcut attribute and are left out.

A run snapshots f_enc of the probing set whenever its labeled set reaches a checkpoint
or the budget (the loop's fractions, which the report's tables use), as float16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anchoral.data.benchmarks import N_ATTRIBUTE_VALUES
from anchoral.errors import ValidationError
from anchoral.experiments.encoded import EncodedBenchmark
from anchoral.loop import LoopConfig, resolve_size, take

PROBING_SEED = 0
SNAPSHOT_DTYPE = np.float16


@dataclass(frozen=True)
class ProbingSet:
    """The balanced probing set: ids, labels and attribute codes, and the model inputs of its rows."""

    ids: np.ndarray
    labels: np.ndarray
    attributes: np.ndarray
    features: np.ndarray
    texts: list

    def inputs(self, input_kind: str):
        """What a model of ``input_kind`` (``"features"`` or ``"texts"``) consumes for the probing set."""
        return self.texts if input_kind == "texts" else self.features


def balanced_probe_rows(labels: np.ndarray, attributes: np.ndarray, n_classes: int,
                        rng: np.random.Generator) -> np.ndarray:
    """Sorted row positions of an equal-size sample of every (label x attribute) group, as large
    as the smallest group allows; a one-line ValidationError when a group is empty."""
    counts = np.zeros((n_classes, N_ATTRIBUTE_VALUES), dtype=np.int64)
    np.add.at(counts, (labels, attributes), 1)
    if (counts.sum(axis=0) == 0).any():
        value = int(np.flatnonzero(counts.sum(axis=0) > 0)[0]) if counts.any() else 0
        raise ValidationError(f"the test splits hold one attribute value only (code {value}) in {int(counts.sum())} "
                              "examples; a probing set balanced over the shortcut attribute needs both")
    if counts.min() == 0:
        label, attribute = (int(v) for v in np.argwhere(counts == 0)[0])
        raise ValidationError(f"the test splits hold no example of label {label} with attribute {attribute}; a "
                              "probing set balanced over label and attribute needs every group")
    per_group = int(counts.min())
    chosen = [rng.choice(np.flatnonzero((labels == label) & (attributes == attribute)), per_group, replace=False)
              for label in range(n_classes) for attribute in range(N_ATTRIBUTE_VALUES)]
    return np.sort(np.concatenate(chosen))


def probing_set(encoded: EncodedBenchmark, seed: int = PROBING_SEED) -> ProbingSet:
    """The benchmark's probing set (module docstring), drawn with ``seed``."""
    benchmark = encoded.benchmark
    n_classes = encoded.n_classes
    ids = np.concatenate([benchmark.id_test.ids, benchmark.ood_test.ids])
    groups = np.concatenate([benchmark.id_test.groups, benchmark.ood_test.groups])
    labels = np.concatenate([benchmark.id_test.labels, benchmark.ood_test.labels])
    features = np.concatenate([np.asarray(encoded.id_features), np.asarray(encoded.ood_features)])
    if isinstance(benchmark.id_test.texts, np.ndarray):  # images
        texts = np.concatenate([benchmark.id_test.texts, benchmark.ood_test.texts])
    else:
        texts = list(benchmark.id_test.texts) + list(benchmark.ood_test.texts)
    _, first = np.unique(ids, return_index=True)
    keep = np.zeros(ids.size, dtype=bool)
    keep[first] = True
    keep &= groups < n_classes * N_ATTRIBUTE_VALUES
    candidates = np.flatnonzero(keep)
    attributes = groups[candidates] % N_ATTRIBUTE_VALUES
    rows = candidates[balanced_probe_rows(labels[candidates], attributes, n_classes, np.random.default_rng(seed))]
    return ProbingSet(ids=ids[rows], labels=labels[rows], attributes=groups[rows] % N_ATTRIBUTE_VALUES,
                      features=features[rows], texts=take(texts, rows))


def snapshot_sizes(loop: LoopConfig, pool_size: int) -> set[int]:
    """Labeled-set sizes at which a run snapshots f_enc of the probing set: the loop's checkpoints and budget."""
    return {resolve_size(value, pool_size, "checkpoint") for value in (*loop.checkpoints, loop.budget)}


class SnapshotRecorder:
    """Called after each fit of a run (``simulate(after_fit=...)``): keeps f_enc of the probing set,
    as float16, at the labeled-set sizes in ``sizes``."""

    def __init__(self, probing: ProbingSet, sizes: set[int]):
        self.probing = probing
        self.sizes = set(sizes)
        self.snapshots: dict[int, np.ndarray] = {}

    def __call__(self, model, labeled_indices: np.ndarray) -> None:
        size = int(len(labeled_indices))
        if size in self.sizes:
            self.snapshots[size] = self.embed(model)

    def keep(self, model, labeled_indices: np.ndarray) -> None:
        """Keep f_enc whatever the labeled-set size, under key -1 (a reference-panel fit's one model)."""
        self.snapshots[-1] = self.embed(model)

    def embed(self, model) -> np.ndarray:
        inputs = self.probing.inputs(getattr(model, "input_kind", "features"))
        return np.asarray(model.embed(inputs), dtype=np.float32).astype(SNAPSHOT_DTYPE)
