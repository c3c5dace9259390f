"""The public Python API (docs/api.md): a stateful ``ActiveLearner`` for a pool-based
session, the stateless ``next_batch`` for a loop of your own, and ``SklearnModel``, the
adapter that makes any scikit-learn classifier with ``predict_proba`` an anchoral model.

- ``inputs``: what a pool may be (arrays, lists of texts, DataFrames, Datasets);
- ``classifiers``: the scikit-learn adapter and what it offers each strategy;
- ``selection``: one selection from what the caller has (``next_batch``);
- ``learner``: the session, optionally kept in a labeling project's SQLite file.
"""

from anchoral.api.classifiers import SklearnModel
from anchoral.api.learner import ActiveLearner
from anchoral.api.selection import next_batch

__all__ = ["ActiveLearner", "SklearnModel", "next_batch"]
