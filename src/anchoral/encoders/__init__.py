"""Pretrained encoders and the on-disk embedding cache."""

from anchoral.encoders.base import Encoder
from anchoral.encoders.cache import EmbeddingCache, content_hash, default_cache, text_key
from anchoral.encoders.minilm import MiniLMEncoder, bundled_model_dir
from anchoral.encoders.registry import available_encoders, encoder_parameters, make_encoder

__all__ = [
    "EmbeddingCache",
    "Encoder",
    "MiniLMEncoder",
    "available_encoders",
    "bundled_model_dir",
    "content_hash",
    "default_cache",
    "encoder_parameters",
    "make_encoder",
    "text_key",
]
