"""How well minority examples were inferred from training dynamics (ALVIN Table 4).

Computed outside the strategy: only the caller knows the ground-truth groups.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from anchoral.errors import ValidationError


def minority_inference_quality(inferred_minority_pool_indices, labeled_indices, labeled_groups_are_minority) -> dict:
    """Recall and precision of the inferred minority among the labeled examples.

    Parameters
    ----------
    inferred_minority_pool_indices : pool indices flagged as minority, or a mapping
        class -> pool indices (ALVIN's ``diagnostics["minority_indices"]``).
    labeled_indices : pool indices of the labeled examples.
    labeled_groups_are_minority : bool per labeled example (aligned with
        ``labeled_indices``), whether it truly belongs to a minority group.

    Returns
    -------
    dict with ``recall`` (fraction of the truly-minority labeled examples that were
    flagged; ALVIN §5.2's "minority recall"), ``precision`` (fraction of the flagged
    ones that are truly minority), ``n_true_minority`` and ``n_inferred``. A ratio
    with an empty denominator is NaN.
    """
    if isinstance(inferred_minority_pool_indices, Mapping):
        parts = [np.asarray(v, dtype=np.int64).ravel() for v in inferred_minority_pool_indices.values()]
        inferred = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    else:
        inferred = np.asarray(inferred_minority_pool_indices, dtype=np.int64).ravel()
    labeled_indices = np.asarray(labeled_indices, dtype=np.int64)
    truly_minority = np.asarray(labeled_groups_are_minority)
    if labeled_indices.ndim != 1:
        raise ValidationError(f"labeled_indices must be 1-D; got shape {labeled_indices.shape}")
    if np.unique(labeled_indices).size != labeled_indices.size:
        raise ValidationError("labeled_indices must not repeat a pool index")
    if truly_minority.shape != labeled_indices.shape or truly_minority.dtype != bool:
        raise ValidationError(
            f"labeled_groups_are_minority must be a bool array with one entry per labeled index "
            f"({labeled_indices.size}); got dtype {truly_minority.dtype} and shape {truly_minority.shape}"
        )
    strangers = np.setdiff1d(inferred, labeled_indices)
    if strangers.size:
        raise ValidationError(
            f"inferred_minority_pool_indices must be labeled pool indices; {strangers.size} are not, e.g. {strangers[:5].tolist()}"
        )
    flagged = np.isin(labeled_indices, inferred)
    n_true = int(truly_minority.sum())
    n_flagged = int(flagged.sum())
    hits = int((flagged & truly_minority).sum())
    return {
        "recall": hits / n_true if n_true else float("nan"),
        "precision": hits / n_flagged if n_flagged else float("nan"),
        "n_true_minority": n_true,
        "n_inferred": n_flagged,
    }
