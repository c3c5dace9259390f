"""A labeling project: a directory holding one SQLite file (see ``database``).

``Project`` reads the pool, the label set, the labels and the rounds, and makes
every state change in one transaction. A label is an append-only event: giving an
item a new label marks its previous event superseded, so the history is kept and
the current label is the latest event (a ``NULL`` class means withdrawn by undo).

Events come in tracks. Track ``""`` is the item's own label. An overlap item (see
``overlap``) also has one track per labeler, named after them: each labeler's label
is kept beside the others', not over them. The item's label (``current_labels``) is
then its own track's, if it has one (a reviewer's resolution, an import), else the
labelers' when enough of them gave the same label; see ``database.CURRENT_LABELS_VIEW``.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

import numpy as np

from anchoral.store.database import (
    PROJECT_FILE,
    ProjectError,
    open_database,
    utc_now,
    write,
)
from anchoral.store.overlap import OverlapSetting, check_overlap, choose_overlap


SERVE_TOKEN_KEY = "serve_token"
ROUND_LOCK_KEY = "round_lock"
LABELERS_KEY = "labelers"
OVERLAP_KEY = "overlap"
RUNTIME_KEYS = (SERVE_TOKEN_KEY, ROUND_LOCK_KEY, LABELERS_KEY, OVERLAP_KEY)  # in ``settings``, changed after init
MAX_LABELER_NAME = 64
STALE_LOCK_SECONDS = 6 * 3600.0
OPINIONS = """(SELECT count(*) FROM label_events e WHERE e.item = o.item AND e.track != ''
               AND e.superseded = 0 AND e.class IS NOT NULL)"""
"""SQL: how many labelers' labels overlap item ``o.item`` has now (joined as ``o``)."""


@dataclass(frozen=True)
class Item:
    position: int
    id: str
    text: str


@dataclass(frozen=True)
class LabelEvent:
    event: int
    item_id: str
    label: str | None
    annotator: str
    source: str
    session: str | None
    round: int | None
    created_at: str
    superseded: bool
    track: str = ""  # "": the item's own label; a labeler's name: their label of an overlap item


@dataclass(frozen=True)
class RoundInfo:
    round: int
    strategy: str
    requested_strategy: str
    params: dict
    seed: int
    batch_size: int
    n_labeled: int
    metrics: dict
    started_at: str
    finished_at: str


@dataclass(frozen=True)
class BatchProgress:
    """How far the latest batch is: ``labeled`` of ``total`` items have a current label;
    ``in_review`` more were labeled by all their labelers, who disagree (see ``review``)."""

    round: int | None
    total: int
    labeled: int
    in_review: int = 0

    @property
    def remaining(self) -> int:
        """Items that still need a label from someone."""
        return self.total - self.labeled - self.in_review


def project_file(directory: str | Path) -> Path:
    return Path(directory) / PROJECT_FILE


class Project:
    """An open project. Use ``Project.open(directory)``; close it (or use ``with``).

    The label set and settings are read once at open: they are fixed at ``init``.
    """

    def __init__(self, directory: Path, connection: sqlite3.Connection):
        self.directory = directory
        self.db = connection
        self.labels: tuple[str, ...] = tuple(
            row["name"] for row in connection.execute("SELECT name FROM label_set ORDER BY class")
        )
        self.settings: dict = {
            row["key"]: json.loads(row["value"])
            for row in connection.execute(
                f"SELECT key, value FROM settings WHERE key NOT IN ({','.join('?' * len(RUNTIME_KEYS))})", RUNTIME_KEYS
            )
        }

    @classmethod
    def open(cls, directory: str | Path, *, check_integrity: bool = True) -> Project:
        """Open the project in ``directory``; ProjectError if it is not a usable project."""
        directory = Path(directory)
        if not directory.exists():
            raise ProjectError(f"project directory {directory} does not exist; create it with `anchoral init`")
        if not directory.is_dir():
            raise ProjectError(f"{directory} is not a project directory (it is a file)")
        path = directory / PROJECT_FILE
        if not path.exists():
            raise ProjectError(
                f"{directory} is not an anchoral project (it has no {PROJECT_FILE}); create one with `anchoral init`"
            )
        return cls(directory.resolve(), open_database(path, check_integrity=check_integrity))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- access ----------------------------------------------------------------------
    def access_token(self, *, rotate: bool = False) -> str:
        """The web app's access token, kept in the project (key ``serve_token`` of
        ``settings``) so its links work across restarts; ``rotate`` replaces it."""
        with write(self.db):
            row = self.db.execute("SELECT value FROM settings WHERE key = ?", (SERVE_TOKEN_KEY,)).fetchone()
            if row is not None and not rotate:
                return json.loads(row[0])
            token = secrets.token_urlsafe(18)
            self.db.execute(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (SERVE_TOKEN_KEY, json.dumps(token))
            )
        return token

    def labelers(self) -> dict[str, str]:
        """Invited labelers: name -> their own access token (see ``invite``)."""
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (LABELERS_KEY,)).fetchone()
        return {} if row is None else json.loads(row[0])

    def invite(self, name: str) -> str:
        """A labeler's own access token (made on the first call, the same afterwards): labels
        given through it are recorded under ``name``, whatever the browser calls itself."""
        name = check_labeler_name(name)
        with write(self.db):
            labelers = self.labelers()
            token = labelers.setdefault(name, secrets.token_urlsafe(18))
            self._store_labelers(labelers)
        return token

    def revoke(self, name: str) -> bool:
        """Withdraw a labeler's token (their links stop working at once); False if ``name`` was not invited."""
        with write(self.db):
            labelers = self.labelers()
            removed = labelers.pop(name, None) is not None
            self._store_labelers(labelers)
        return removed

    def labeler_of(self, token: str | None) -> str | None:
        """The invited labeler whose token ``token`` is, or None (compared in constant time)."""
        if not token:
            return None
        found = None
        for name, theirs in self.labelers().items():
            if hmac.compare_digest(theirs.encode(), token.encode()):
                found = name
        return found

    def known_labelers(self) -> list[str]:
        """Everyone the project knows as a labeler: the invited, and whoever has labeled in the web app."""
        labeled = {row[0] for row in self.db.execute("SELECT DISTINCT annotator FROM label_events WHERE source = 'web'")}
        return sorted(labeled | set(self.labelers()))

    def overlap(self) -> OverlapSetting:
        """The overlap setting (read from the file each time: ``anchoral overlap`` may change it while the app runs)."""
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (OVERLAP_KEY,)).fetchone()
        return OverlapSetting() if row is None else OverlapSetting(**json.loads(row[0]))

    def set_overlap(self, fraction=None, raters=None, review_by: str | None = None) -> OverlapSetting:
        """Change the overlap setting (what is not given stays); an overlap of more raters
        than ``known_labelers`` is refused. Nothing is written unless all of it is valid."""
        with write(self.db):
            current = self.overlap()
            checked = check_overlap(
                current.fraction if fraction is None else fraction,
                current.raters if raters is None else raters,
                current.review_by if review_by is None else review_by,
                labelers=None if fraction is None and raters is None else self.known_labelers(),
            )
            self.db.execute(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                (OVERLAP_KEY, json.dumps(asdict(checked))),
            )
        return checked

    def _store_labelers(self, labelers: dict[str, str]) -> None:
        self.db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (LABELERS_KEY, json.dumps(labelers)))

    @contextmanager
    def round_lock(self, holder: str) -> Iterator[None]:
        """Hold the project's one round lock while a round is computed (``holder`` says who:
        "the web app", "anchoral query"). The lock is a row in the SQLite file, so it holds
        across processes: a second round started meanwhile is refused at once with who holds
        it. A lock left by a process that died (same machine, its pid gone) or older than
        six hours is taken over."""
        mine = {"holder": holder, "pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                "nonce": secrets.token_hex(8)}
        with write(self.db):
            row = self.db.execute("SELECT value FROM settings WHERE key = ?", (ROUND_LOCK_KEY,)).fetchone()
            if row is not None and _lock_is_live(json.loads(row[0])):
                other = json.loads(row[0])
                started = time.strftime("%H:%M:%S", time.localtime(other["since"]))
                raise ProjectError(
                    f"a round is already being computed by {other['holder']} (pid {other['pid']} on {other['host']}, "
                    f"since {started}); wait for it to finish, then label its batch"
                )
            self.db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (ROUND_LOCK_KEY, json.dumps(mine)))
        try:
            yield
        finally:
            with write(self.db):
                self.db.execute(
                    "DELETE FROM settings WHERE key = ? AND json_extract(value, '$.nonce') = ?", (ROUND_LOCK_KEY, mine["nonce"])
                )

    # -- the pool ------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def pool_size(self) -> int:
        return self.db.execute("SELECT count(*) FROM items").fetchone()[0]

    def ids(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT id FROM items ORDER BY position")]

    def texts(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT text FROM items ORDER BY position")]

    def item(self, position: int) -> Item:
        if not isinstance(position, (int, np.integer)) or not 0 <= position < 2**63:
            raise ProjectError(f"the pool has no item at position {position}")
        row = self.db.execute("SELECT position, id, text FROM items WHERE position = ?", (position,)).fetchone()
        if row is None:
            raise ProjectError(f"the pool has no item at position {position}")
        return Item(row["position"], row["id"], row["text"])

    def positions_of(self, ids: Iterable[str]) -> dict[str, int]:
        """Pool positions of the given ids; ids not in the pool are left out."""
        found: dict[str, int] = {}
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT id, position FROM items WHERE id IN ({marks})", chunk):
                found[row[0]] = row[1]
        return found

    def heldout(self) -> tuple[list[str], np.ndarray] | None:
        """Texts and classes of the held-out labeled set, or None when the project has none."""
        rows = self.db.execute("SELECT text, class FROM heldout_items ORDER BY position").fetchall()
        if not rows:
            return None
        return [row[0] for row in rows], np.array([row[1] for row in rows], dtype=np.int64)

    # -- labels --------------------------------------------------------------------
    def class_of(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise ProjectError(f"label {label!r} is not in the project's label set [{', '.join(self.labels)}]") from None

    def current_labels(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(positions, classes, newest event id) of every labeled item, in labeling order: what rounds train on.

        An overlap item counts with its reviewer's resolution when it has one, else with
        the label its labelers agree on once all of them have labeled it; an overlap item
        whose labelers disagree and that nobody has resolved yet is left out."""
        rows = self.db.execute("SELECT item, class, event FROM current_labels ORDER BY event").fetchall()
        positions = np.array([row[0] for row in rows], dtype=np.int64)
        classes = np.array([row[1] for row in rows], dtype=np.int64)
        last_event = self.db.execute("SELECT coalesce(max(event), 0) FROM label_events").fetchone()[0]
        return positions, classes, last_event

    def awaiting_agreement(self) -> np.ndarray:
        """Positions of overlap items that some of their labelers have labeled but that have no
        label to train on yet (others still to label, or a disagreement in review): not
        training data, and not to be selected again either."""
        rows = self.db.execute(
            "SELECT DISTINCT e.item FROM label_events e JOIN overlap_items o ON o.item = e.item "
            "WHERE e.track != '' AND e.superseded = 0 AND e.class IS NOT NULL "
            "AND e.item NOT IN (SELECT item FROM current_labels) ORDER BY e.item"
        ).fetchall()
        return np.array([row[0] for row in rows], dtype=np.int64)

    def label_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.labels, 0)
        for row in self.db.execute("SELECT class, count(*) FROM current_labels GROUP BY class"):
            counts[self.labels[row[0]]] = row[1]
        return counts

    def newest_event(self, position: int, track: str = "") -> int:
        """Id of the item's newest label event on ``track`` (0 if none): what a labeler saw, for ``AnnotationQueue.label``."""
        row = self.db.execute(
            "SELECT event FROM label_events WHERE item = ? AND track = ? AND superseded = 0", (position, track)
        ).fetchone()
        return 0 if row is None else row[0]

    def raters_of(self, position: int) -> int:
        """How many distinct labelers the item is shown to: 1, or its overlap's k."""
        row = self.db.execute("SELECT raters FROM overlap_items WHERE item = ?", (position,)).fetchone()
        return 1 if row is None else row[0]

    def track_of(self, position: int, annotator: str) -> str:
        """The track ``annotator``'s label of the item goes to: their own on an overlap item, else the item's."""
        return annotator if self.raters_of(position) > 1 else ""

    def labeled_rows(self) -> dict[int, sqlite3.Row]:
        """Current label row (class, annotator, created_at, ...) of every labeled item, by position."""
        return {row["item"]: row for row in self.db.execute("SELECT * FROM current_labels")}

    def history(self, item_id: str) -> list[LabelEvent]:
        """Every label event of one item, oldest first (the last one not superseded is current)."""
        rows = self.db.execute(
            """SELECT e.*, i.id AS item_id FROM label_events e JOIN items i ON i.position = e.item
               WHERE i.id = ? ORDER BY e.event""",
            (item_id,),
        ).fetchall()
        return [self._event(row) for row in rows]

    def _event(self, row: sqlite3.Row) -> LabelEvent:
        return LabelEvent(
            event=row["event"],
            item_id=row["item_id"],
            label=None if row["class"] is None else self.labels[row["class"]],
            annotator=row["annotator"],
            source=row["source"],
            session=row["session"],
            round=row["round"],
            created_at=row["created_at"],
            superseded=bool(row["superseded"]),
            track=row["track"],
        )

    def set_labels(
        self,
        assignments: Sequence[tuple[int, int | None]],
        *,
        annotator: str,
        source: str,
        session: str | None = None,
    ) -> list[int]:
        """Give each (position, class) its label in one transaction; returns the new event ids."""
        with write(self.db):
            return [append_label_event(self.db, position, cls, annotator, source, session) for position, cls in assignments]

    # -- rounds --------------------------------------------------------------------
    def rounds(self) -> list[RoundInfo]:
        return [self._round(row) for row in self.db.execute("SELECT * FROM rounds ORDER BY round")]

    def latest_round(self) -> RoundInfo | None:
        row = self.db.execute("SELECT * FROM rounds ORDER BY round DESC LIMIT 1").fetchone()
        return None if row is None else self._round(row)

    @staticmethod
    def _round(row: sqlite3.Row) -> RoundInfo:
        return RoundInfo(
            round=row["round"],
            strategy=row["strategy"],
            requested_strategy=row["requested_strategy"],
            params=json.loads(row["params"]),
            seed=row["seed"],
            batch_size=row["batch_size"],
            n_labeled=row["n_labeled"],
            metrics=json.loads(row["metrics"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
        )

    def batch(self, round_number: int | None = None) -> list[Item]:
        """The items a round selected, in the order they were picked (default: the latest round)."""
        if round_number is None:
            latest = self.latest_round()
            if latest is None:
                return []
            round_number = latest.round
        rows = self.db.execute(
            """SELECT i.position, i.id, i.text FROM round_items r JOIN items i ON i.position = r.item
               WHERE r.round = ? ORDER BY r.rank""",
            (round_number,),
        ).fetchall()
        if not rows and self.db.execute("SELECT 1 FROM rounds WHERE round = ?", (round_number,)).fetchone() is None:
            raise ProjectError(f"the project has no round {round_number}")
        return [Item(row[0], row[1], row[2]) for row in rows]

    def batch_progress(self) -> BatchProgress:
        """Progress of the latest batch (the one annotators are working on)."""
        row = self.db.execute(
            f"""SELECT r.round, count(ri.item) AS total, count(c.item) AS labeled,
                       coalesce(sum(c.item IS NULL AND o.raters IS NOT NULL AND {OPINIONS} >= o.raters), 0) AS in_review
               FROM (SELECT max(round) AS round FROM rounds) r
               LEFT JOIN round_items ri ON ri.round = r.round
               LEFT JOIN current_labels c ON c.item = ri.item
               LEFT JOIN overlap_items o ON o.item = ri.item"""
        ).fetchone()
        return BatchProgress(round=row["round"], total=row["total"], labeled=row["labeled"], in_review=row["in_review"])

    def labeled_per_round(self) -> dict[int, tuple[int, int]]:
        """For each round: (items of its batch that have a label now, batch size)."""
        rows = self.db.execute(
            """SELECT ri.round, count(c.item), count(*) FROM round_items ri
               LEFT JOIN current_labels c ON c.item = ri.item GROUP BY ri.round"""
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def record_round(
        self,
        *,
        strategy: str,
        requested_strategy: str,
        params: dict,
        seed: int,
        batch_size: int,
        n_labeled: int,
        last_event: int,
        metrics: dict,
        started_at: str,
        selected: Sequence[int],
        scores: Sequence[float] | None = None,
        follows: int | None = -1,
    ) -> int:
        """Record a finished round and its batch in one transaction; returns its number.

        The project's overlap setting (read in that transaction) marks a seeded share of
        the batch as overlap items (``overlap.choose_overlap``); an item chosen before
        keeps its earlier number of labelers. ``follows`` is the round that was the latest when this one started (None:
        there was none; -1: not checked). If another round was recorded meanwhile
        (a web next-batch and ``anchoral query`` at once), this one is refused: one
        round at a time, checked in the same transaction that would write it.
        """
        with write(self.db):
            number = self.db.execute("SELECT coalesce(max(round), 0) + 1 FROM rounds").fetchone()[0]
            if follows != -1 and number != (follows or 0) + 1:
                raise ProjectError(
                    f"round {number - 1} was recorded by someone else (the web app's next batch or "
                    f"`anchoral query`) while this round was being computed; this round was not recorded, "
                    "and the batch being labeled is round " + str(number - 1)
                )
            self.db.execute(
                """INSERT INTO rounds (round, strategy, requested_strategy, params, seed, batch_size, n_labeled,
                                       last_event, metrics, started_at, finished_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (number, strategy, requested_strategy, json.dumps(params), seed, batch_size, n_labeled,
                 last_event, json.dumps(metrics), started_at, utc_now()),
            )
            self.db.executemany(
                "INSERT INTO round_items (round, rank, item, score) VALUES (?, ?, ?, ?)",
                [
                    (number, rank, int(item), None if scores is None else float(scores[rank]))
                    for rank, item in enumerate(selected)
                ],
            )
            overlap = self.overlap()
            if overlap.enabled:
                ranks = choose_overlap(len(selected), overlap.fraction, seed, number)
                self.db.executemany(
                    "INSERT OR IGNORE INTO overlap_items (item, raters, round) VALUES (?, ?, ?)",
                    [(int(selected[rank]), overlap.raters, number) for rank in ranks],
                )
        return number


def check_labeler_name(name: str) -> str:
    """A labeler's name: spaces collapsed, 1 to 64 characters, no control characters (any script)."""
    cleaned = " ".join(str(name).split())
    if not cleaned or len(cleaned) > MAX_LABELER_NAME or re.search(r"[\x00-\x1f\x7f]", cleaned):
        raise ProjectError(f"a labeler's name must be 1 to {MAX_LABELER_NAME} printable characters; got {name!r}")
    return cleaned


def _lock_is_live(lock: dict) -> bool:
    if time.time() - lock.get("since", 0) > STALE_LOCK_SECONDS:
        return False
    if lock.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(lock["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, ValueError, KeyError):
        return True
    return True


def append_label_event(
    db: sqlite3.Connection,
    position: int,
    cls: int | None,
    annotator: str,
    source: str,
    session: str | None,
    track: str = "",
) -> int:
    """Supersede the item's current event on ``track`` and append the new one (caller holds the transaction)."""
    db.execute("UPDATE label_events SET superseded = 1 WHERE item = ? AND track = ? AND superseded = 0", (position, track))
    cursor = db.execute(
        """INSERT INTO label_events (item, class, annotator, source, session, round, created_at, track)
           VALUES (?, ?, ?, ?, ?, (SELECT max(round) FROM round_items WHERE item = ?), ?, ?)""",
        (position, cls, annotator, source, session, position, utc_now(), track),
    )
    return cursor.lastrowid
