import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.experiments.probing import SnapshotRecorder, balanced_probe_rows, snapshot_sizes
from anchoral.loop import LoopConfig


def test_every_label_x_attribute_group_gives_as_many_as_the_smallest():
    labels = np.array([0] * 10 + [1] * 10)
    attributes = np.array([0] * 7 + [1] * 3 + [0] * 4 + [1] * 6)
    rows = balanced_probe_rows(labels, attributes, 2, np.random.default_rng(0))
    cells = np.bincount(labels[rows] * 2 + attributes[rows], minlength=4)
    assert cells.tolist() == [3, 3, 3, 3]


def test_test_splits_with_one_attribute_value_are_one_clear_error():
    with pytest.raises(ValidationError) as raised:
        balanced_probe_rows(np.array([0, 1, 0, 1]), np.zeros(4, dtype=int), 2, np.random.default_rng(0))
    assert "\n" not in str(raised.value) and "one attribute value only" in str(raised.value)


def test_an_empty_group_is_named():
    with pytest.raises(ValidationError, match="no example of label 1 with attribute 0"):
        balanced_probe_rows(np.array([0, 0, 1]), np.array([0, 1, 1]), 2, np.random.default_rng(0))


def test_snapshots_are_taken_at_the_checkpoints_and_the_budget_as_float16():
    sizes = snapshot_sizes(LoopConfig(batch_size=10, budget=0.10, checkpoints=(0.01, 0.05)), 1000)
    assert sizes == {10, 50, 100}

    class Identity:
        def embed(self, inputs):
            return inputs * 2

    class Probing:
        def inputs(self, kind):
            return np.ones((3, 2), dtype=np.float32)

    recorder = SnapshotRecorder(Probing(), sizes)
    for labeled in (5, 10, 30, 100):
        recorder(Identity(), np.arange(labeled))
    assert sorted(recorder.snapshots) == [10, 100]
    assert recorder.snapshots[10].dtype == np.float16 and (recorder.snapshots[10] == 2).all()
