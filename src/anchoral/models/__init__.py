"""Trainable classifiers exposing fit / predict_proba / embed / proba_from_embedding."""

from anchoral.models.base import STOP_EPOCH_CAP, STOP_LOSS_RATIO, FitReport, Model
from anchoral.models.mlp import MLPHead

__all__ = ["FitReport", "MLPHead", "Model", "STOP_EPOCH_CAP", "STOP_LOSS_RATIO"]
