"""A small real labeling task from the VADER sentences, the same in every test that uses it
(so the session's MiniLM embedding cache encodes its texts once)."""

from __future__ import annotations

import pandas as pd

from anchoral.data.vader import load_vader

POOL_SIZE = 160
HELDOUT_SIZE = 80


def vader_sample(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pool, held-out) frames with columns id, text, sentiment ("positive"/"negative"), domain."""
    frame = load_vader().sample(POOL_SIZE + HELDOUT_SIZE, random_state=seed).reset_index(drop=True)
    frame["sentiment"] = frame["label_name"]
    frame = frame[["id", "text", "sentiment", "domain"]]
    return frame.iloc[:POOL_SIZE].reset_index(drop=True), frame.iloc[POOL_SIZE:].reset_index(drop=True)
