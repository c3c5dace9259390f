"""Overlap: a seeded share of each batch is shown to several labelers, so that their
agreement can be measured (``agreement``) and their disagreements reviewed (``review``).

The setting is kept in the project (``Project.overlap``, changed with
``Project.set_overlap`` or ``anchoral overlap``): ``fraction`` of each batch, rounded
to the nearest whole item (halves up), is shown to ``raters`` distinct labelers; the
others are labeled once, as without overlap. Which items overlap is drawn when the
round is recorded, from the project's seed and the round number, so it is
reproducible. A change applies to the batches selected after it; an item keeps the
number of labelers it was chosen with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from anchoral.errors import ValidationError
from anchoral.validation import check_fraction

REVIEWERS = ("owner", "labelers")
"""Who may resolve disagreements: the project's owner (its own token) only, or any labeler too."""
OVERLAP_STREAM = 7  # keeps the overlap draw independent of the round's selection (seeded [seed, round])


@dataclass(frozen=True)
class OverlapSetting:
    """``fraction`` of each batch goes to ``raters`` distinct labelers; ``review_by`` resolves disagreements."""

    fraction: float = 0.0
    raters: int = 2
    review_by: str = "owner"

    @property
    def enabled(self) -> bool:
        return self.fraction > 0

    def as_dict(self) -> dict:
        return {"fraction": self.fraction, "k": self.raters, "review_by": self.review_by}

    def describe(self) -> str:
        """One line for people: what the setting does."""
        reviewer = "the owner" if self.review_by == "owner" else "any labeler"
        if not self.enabled:
            return f"off (disagreements, if any, are resolved by {reviewer})"
        return f"{self.fraction:.0%} of each batch is shown to {self.raters} labelers; disagreements are resolved by {reviewer}"


def check_overlap(fraction, raters, review_by: str = "owner", *, labelers: Iterable[str] | None = None) -> OverlapSetting:
    """A valid setting, or a ValidationError saying what is wrong.

    ``labelers``, when given, are the people the project knows (``Project.known_labelers``):
    an overlap item needs ``raters`` different ones, so more raters than that is refused.
    """
    fraction = check_fraction(fraction, "overlap (the share of each batch shown to several labelers)", inclusive_zero=True)
    if isinstance(raters, bool) or not isinstance(raters, (int, np.integer)) or raters < 2:
        raise ValidationError(f"overlap k (how many different labelers see an overlap item) must be an integer of at least 2; got {raters!r}")
    if review_by not in REVIEWERS:
        raise ValidationError(f"review_by (who resolves disagreements) must be one of: {', '.join(REVIEWERS)}; got {review_by!r}")
    if labelers is not None and fraction > 0:
        known = sorted(set(labelers))
        if raters > len(known):
            named = f" ({', '.join(known)})" if known else ""
            raise ValidationError(
                f"overlap k is {raters} but the project knows {len(known)} labeler(s){named}; "
                "invite more with `anchoral invite PROJECT NAME` or choose a smaller k"
            )
    return OverlapSetting(fraction=fraction, raters=int(raters), review_by=review_by)


def overlap_count(batch_size: int, fraction: float) -> int:
    """How many of a batch's items overlap: ``fraction`` of it, rounded to the nearest item (halves up)."""
    return min(batch_size, math.floor(fraction * batch_size + 0.5))


def choose_overlap(batch_size: int, fraction: float, seed: int, round_number: int) -> np.ndarray:
    """Ranks (0 = picked first) of the batch items that overlap, sorted; the same for the same inputs."""
    count = overlap_count(batch_size, fraction)
    rng = np.random.default_rng([int(seed), int(round_number), OVERLAP_STREAM])
    return np.sort(rng.choice(batch_size, size=count, replace=False)) if count else np.empty(0, dtype=np.int64)
