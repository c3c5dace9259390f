"""Trainable classifiers exposing fit / predict_proba / embed / proba_from_embedding.

Models are registered by name; ``input_kind`` says what a model consumes for each
example: ``"features"`` (frozen pretrained-encoder features) or ``"texts"``.
"""

from __future__ import annotations

from anchoral.errors import ValidationError, unknown_name
from anchoral.models.base import STOP_EPOCH_CAP, STOP_LOSS_RATIO, FitReport, Model
from anchoral.models.finetune import FineTunedTransformer
from anchoral.models.linear import LinearHead
from anchoral.models.mlp import MLPHead

MODELS: dict[str, type] = {"mlp": MLPHead, "linear": LinearHead, "finetune": FineTunedTransformer}


def make_model(name: str, n_classes: int, *, seed: int = 0, **params):
    """Build the model registered as ``name`` for ``n_classes`` classes."""
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    try:
        return MODELS[name](n_classes, seed=seed, **params)
    except TypeError as exc:
        raise ValidationError(f"invalid parameters for model {name!r}: {exc}") from exc


def with_shared_state_cache(name: str, params: dict) -> dict:
    """``params`` for a model rebuilt from its name at every round (a labeling project, the
    ActiveLearner): a fine-tuned transformer with ``train_layers`` and no ``cache_dir`` keeps its
    frozen states in the anchoral cache (``cache_dir="auto"``), so the next round's model finds
    the pool's states instead of recomputing them. Anything else is returned unchanged."""
    params = dict(params or {})
    if (MODELS.get(name) is FineTunedTransformer and params.get("train_layers") is not None
            and params.get("cache_states", True) and "cache_dir" not in params):
        params["cache_dir"] = "auto"
    return params


def use_device(device: str | None) -> None:
    """Make ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``) the device of every
    model built with ``device="auto"`` (the default) in this process and the worker processes
    it starts, by setting ``$ANCHORAL_DEVICE``; ``None`` leaves the setting alone. Checked
    first: naming CUDA on a machine without a GPU is a ValidationError."""
    import os

    from anchoral.models.finetune import DEVICE_ENV, resolve_device

    if device is None:
        return
    resolve_device(device)
    os.environ[DEVICE_ENV] = device


__all__ = ["FineTunedTransformer", "FitReport", "LinearHead", "MLPHead", "MODELS", "Model", "STOP_EPOCH_CAP", "STOP_LOSS_RATIO", "make_model", "use_device", "with_shared_state_cache"]
