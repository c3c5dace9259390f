"""Encoders selectable by name (for study configs): name -> class, parameters checked up front."""

from __future__ import annotations

import inspect

from anchoral.errors import ValidationError, unknown_name


def _minilm():
    from anchoral.encoders.minilm import MiniLMEncoder

    return MiniLMEncoder


def _minilm_random():
    from anchoral.encoders.minilm_random import RandomInitMiniLMEncoder

    return RandomInitMiniLMEncoder


def _pixels():
    from anchoral.encoders.images import PixelEncoder

    return PixelEncoder


def _digits_cnn():
    from anchoral.encoders.images import DigitsCNNEncoder

    return DigitsCNNEncoder


def _hashing():
    from anchoral.encoders.hashing import HashingEncoder

    return HashingEncoder


# name -> (description, loader of the class); classes are imported only when used.
ENCODERS = {
    "minilm": ("all-MiniLM-L6-v2, pretrained, frozen (the default text encoder)", _minilm),
    "minilm-random": ("all-MiniLM-L6-v2's architecture with randomly initialised weights (Tamkin et al. Fig. 6)",
                      _minilm_random),
    "pixels": ("raw pixels of (3, 28, 28) images, for colored-mnist", _pixels),
    "digits-cnn": ("small CNN pretrained on 1,500 MNIST digits disjoint from colored-mnist's, for colored-mnist",
                   _digits_cnn),
    "hashing": ("hashed word 1-2-gram counts: fast, deterministic, no pretraining (tests, smoke runs)", _hashing),
}
DEFAULT_ENCODER = "minilm"


def available_encoders() -> list[str]:
    return sorted(ENCODERS)


def encoder_class(name: str) -> type:
    if not isinstance(name, str) or name not in ENCODERS:
        raise unknown_name("encoder", str(name), ENCODERS)
    return ENCODERS[name][1]()


def encoder_parameters(name: str) -> dict:
    """The keyword parameters encoder ``name`` accepts, with their defaults."""
    parameters = inspect.signature(encoder_class(name).__init__).parameters.values()
    return {p.name: p.default for p in parameters
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def make_encoder(name: str, **params):
    """Build the encoder registered as ``name`` with constructor ``params``."""
    cls = encoder_class(name)
    unknown = sorted(set(params) - set(encoder_parameters(name)))
    if unknown:
        raise ValidationError(
            f"unknown parameter(s) {unknown} for encoder {name!r}; expected any of: "
            f"{', '.join(encoder_parameters(name)) or '(none)'}"
        )
    return cls(**params)
