"""Pretrained encoders and the on-disk embedding cache."""

from anchoral.encoders.base import Encoder
from anchoral.encoders.cache import EmbeddingCache, content_hash, default_cache
from anchoral.encoders.minilm import MiniLMEncoder, bundled_model_dir

__all__ = ["Encoder", "EmbeddingCache", "MiniLMEncoder", "bundled_model_dir", "content_hash", "default_cache"]
