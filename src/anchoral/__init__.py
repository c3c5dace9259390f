"""anchoral: active learning with pretrained models that picks the examples which
stop a model from learning shortcuts (ALVIN; Tamkin et al. 2022)."""

__version__ = "0.1.0"
