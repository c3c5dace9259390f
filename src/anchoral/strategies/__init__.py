"""Query strategies, one module per family, selectable by name."""

from __future__ import annotations

from anchoral.errors import ValidationError, unknown_name
from anchoral.strategies.alfamix import AlfaMix
from anchoral.strategies.alvin import ALVIN, ALVINInterpolateAll, ALVINKMeans, ALVINRandomPairs, ALVINUniform
from anchoral.strategies.badge import Badge
from anchoral.strategies.base import RoundState, Selection, Strategy
from anchoral.strategies.bertkm import BertKM
from anchoral.strategies.cal import ContrastiveActiveLearning
from anchoral.strategies.coreset import CoreSet
from anchoral.strategies.minority import MinoritySeeking
from anchoral.strategies.random import RandomSampling
from anchoral.strategies.uncertainty import EntropySampling, LeastConfidence, MarginSampling

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        RandomSampling,
        LeastConfidence,
        EntropySampling,
        MarginSampling,
        ALVIN,
        ALVINRandomPairs,
        ALVINInterpolateAll,
        ALVINUniform,
        ALVINKMeans,
        Badge,
        BertKM,
        ContrastiveActiveLearning,
        AlfaMix,
        CoreSet,
        MinoritySeeking,
    )
}


def available_strategies() -> list[str]:
    return sorted(STRATEGIES)


def default_strategies() -> list[str]:
    """Every registered strategy except ablation variants, random first (the demo's default set)."""
    names = [name for name in sorted(STRATEGIES) if not STRATEGIES[name].is_ablation]
    return ["random"] + [name for name in names if name != "random"]


def make_strategy(name: str, **params) -> Strategy:
    """Build the strategy registered as ``name`` with constructor ``params``."""
    if name not in STRATEGIES:
        raise unknown_name("strategy", name, STRATEGIES)
    try:
        return STRATEGIES[name](**params)
    except TypeError as exc:
        raise ValidationError(f"invalid parameters for strategy {name!r}: {exc}") from exc


__all__ = [
    "AlfaMix",
    "Badge",
    "BertKM",
    "ContrastiveActiveLearning",
    "CoreSet",
    "ALVIN",
    "ALVINInterpolateAll",
    "ALVINKMeans",
    "ALVINRandomPairs",
    "ALVINUniform",
    "STRATEGIES",
    "EntropySampling",
    "LeastConfidence",
    "MarginSampling",
    "RandomSampling",
    "RoundState",
    "Selection",
    "Strategy",
    "available_strategies",
    "default_strategies",
    "make_strategy",
]
