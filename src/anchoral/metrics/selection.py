"""Analyses of what a strategy acquired."""

from __future__ import annotations

import numpy as np

from anchoral.errors import ValidationError


def upsampling_ratios(acquired_groups: np.ndarray, pool_groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Each group's share among acquired examples divided by its share of the pool
    (Tamkin et al. Fig. 4/5). 1 = acquired at the pool's rate, > 1 = upsampled.
    NaN for groups absent from the pool; NaN everywhere when nothing was acquired."""
    acquired_groups = np.asarray(acquired_groups, dtype=np.int64)
    pool_groups = np.asarray(pool_groups, dtype=np.int64)
    if pool_groups.size == 0:
        raise ValidationError("pool_groups is empty; expected the group id of every pool example")
    pool_share = np.bincount(pool_groups, minlength=n_groups)[:n_groups] / pool_groups.size
    if acquired_groups.size == 0:
        return np.full(n_groups, np.nan)
    acquired_share = np.bincount(acquired_groups, minlength=n_groups)[:n_groups] / acquired_groups.size
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pool_share > 0, acquired_share / np.where(pool_share > 0, pool_share, 1), np.nan)
