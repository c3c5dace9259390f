"""anchoral: active learning with pretrained models that picks the examples which
stop a model from learning shortcuts (ALVIN; Tamkin et al. 2022).

The public API (docs/api.md)::

    from anchoral import ActiveLearner, next_batch, SklearnModel

Names are imported on first use, so ``import anchoral`` (and the command line) stays fast.
"""

__version__ = "0.1.0"

__all__ = [
    "ActiveLearner",
    "FitReport",
    "Selection",
    "SklearnModel",
    "ValidationError",
    "available_strategies",
    "next_batch",
]

_HOMES = {
    "ActiveLearner": "anchoral.api",
    "SklearnModel": "anchoral.api",
    "next_batch": "anchoral.api",
    "Selection": "anchoral.strategies",
    "available_strategies": "anchoral.strategies",
    "FitReport": "anchoral.models.base",
    "ValidationError": "anchoral.errors",
}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'anchoral' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
