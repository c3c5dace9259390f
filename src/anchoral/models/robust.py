"""Group-robust training of a head: options that use *inferred* groups, never true ones.

The options are model parameters (``head``, ``groups``, ``n_clusters``, ``n_folds``), so
every strategy can run under every head.
"""

from __future__ import annotations

ROBUST_PARAMS = ("head", "groups", "n_clusters", "n_folds")
"""Model parameters that choose a robust head; dropping them leaves the plain (ERM) head."""


def plain_model_params(params: dict) -> dict:
    """``params`` without the robust-head options: the same model trained by plain ERM."""
    return {key: value for key, value in params.items() if key not in ROBUST_PARAMS}
