"""Handing out the latest batch to concurrent annotators.

Each annotator session holds a lease on the one item it is looking at. The
``leases`` table has one row per item, and leases are taken inside a BEGIN
IMMEDIATE transaction, so two sessions can never hold the same item at once. A
lease expires after ``lease_seconds`` (the item goes back to the queue); labeling
or skipping an item ends its lease. A session's skipped items come back to it
only after every other pending item.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from anchoral.store.database import ProjectError, write
from anchoral.store.project import Item, Project, append_label_event

DEFAULT_LEASE_SECONDS = 600.0

PENDING_IN_LATEST_ROUND = """
    ri.round = (SELECT max(round) FROM rounds)
    AND ri.item NOT IN (SELECT item FROM current_labels)
"""


class LeaseConflict(ProjectError):
    """Another session holds the item; the label was not recorded."""


class AnnotationQueue:
    """The latest batch's unlabeled items, one per session at a time.

    Parameters
    ----------
    project : the open project.
    lease_seconds : float, default 600
        How long a session keeps an item it is shown without labeling or skipping it.
    clock : callable returning unix time (tests pass a fake one).
    """

    def __init__(self, project: Project, *, lease_seconds: float = DEFAULT_LEASE_SECONDS, clock: Callable[[], float] = time.time):
        if not lease_seconds > 0:
            raise ProjectError(f"lease_seconds must be positive; got {lease_seconds!r}")
        self.project = project
        self.lease_seconds = float(lease_seconds)
        self.clock = clock

    @property
    def db(self):
        return self.project.db

    def next_item(self, session: str) -> Item | None:
        """The item ``session`` should label now (its current lease, or a new one); None if none is free."""
        now = self.clock()
        with write(self.db):
            self.db.execute("DELETE FROM leases WHERE expires_at <= ?", (now,))
            kept = self.db.execute(
                f"""SELECT l.item FROM leases l LEFT JOIN round_items ri ON ri.item = l.item
                    AND ({PENDING_IN_LATEST_ROUND})
                    WHERE l.session = ? AND (l.reopened = 1 OR ri.item IS NOT NULL)
                    ORDER BY l.reopened DESC LIMIT 1""",
                (session,),
            ).fetchone()
            self.db.execute(
                "DELETE FROM leases WHERE session = ? AND item IS NOT ?", (session, None if kept is None else kept[0])
            )
            if kept is not None:
                position = kept[0]
                self.db.execute("UPDATE leases SET expires_at = ? WHERE item = ?", (now + self.lease_seconds, position))
            else:
                row = self.db.execute(
                    f"""SELECT ri.item FROM round_items ri
                        LEFT JOIN skips s ON s.session = ? AND s.round = ri.round AND s.item = ri.item
                        WHERE {PENDING_IN_LATEST_ROUND} AND ri.item NOT IN (SELECT item FROM leases)
                        ORDER BY s.skipped_at IS NOT NULL, s.skipped_at, ri.rank LIMIT 1""",
                    (session,),
                ).fetchone()
                if row is None:
                    return None
                position = row[0]
                self.db.execute(
                    "INSERT INTO leases (item, session, expires_at) VALUES (?, ?, ?)",
                    (position, session, now + self.lease_seconds),
                )
        return self.project.item(position)

    def label(self, session: str, position: int, cls: int, annotator: str) -> int:
        """Record ``session``'s label for an item and end its lease; returns the label event id.

        Raises LeaseConflict if another session holds a live lease on the item.
        Submitting the label this session already gave (a double click, a resent
        form) records nothing new and returns the existing event.
        """
        if not 0 <= cls < self.project.n_classes:
            raise ProjectError(f"class {cls} is outside the label set [0, {self.project.n_classes})")
        self.project.item(position)  # a clear error for a position outside the pool
        with write(self.db):
            self._check_not_leased_elsewhere(session, position)
            current = self.db.execute(
                "SELECT event, class, session FROM current_labels WHERE item = ?", (position,)
            ).fetchone()
            if current is not None and current["class"] == cls and current["session"] == session:
                event = current["event"]
            else:
                event = append_label_event(self.db, position, cls, annotator, "web", session)
            self.db.execute("DELETE FROM leases WHERE item = ?", (position,))
        return event

    def skip(self, session: str, position: int) -> None:
        """Put an item behind every other pending item for this session and end its lease."""
        with write(self.db):
            self._check_not_leased_elsewhere(session, position)
            latest = self.db.execute("SELECT max(round) FROM round_items WHERE item = ?", (position,)).fetchone()[0]
            if latest is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO skips (session, round, item, skipped_at) VALUES (?, ?, ?, ?)",
                    (session, latest, position, self.clock()),
                )
            self.db.execute("DELETE FROM leases WHERE item = ?", (position,))

    def undo(self, session: str, annotator: str) -> Item | None:
        """Take back ``session``'s latest label that nobody has changed since.

        The item returns to the label it had before (usually none) through a new
        event, so the history keeps both, and it is leased back to ``session`` to
        be labeled again. Returns the item, or None if there is nothing to undo.
        """
        with write(self.db):
            last = self.db.execute(
                """SELECT event, item FROM label_events
                   WHERE session = ? AND source = 'web' AND superseded = 0 ORDER BY event DESC LIMIT 1""",
                (session,),
            ).fetchone()
            if last is None:
                return None
            position = last["item"]
            previous = self.db.execute(
                "SELECT class FROM label_events WHERE item = ? AND event < ? ORDER BY event DESC LIMIT 1",
                (position, last["event"]),
            ).fetchone()
            append_label_event(self.db, position, None if previous is None else previous[0], annotator, "undo", session)
            self.db.execute("DELETE FROM leases WHERE session = ? OR item = ?", (session, position))
            self.db.execute(
                "INSERT INTO leases (item, session, expires_at, reopened) VALUES (?, ?, ?, 1)",
                (position, session, self.clock() + self.lease_seconds),
            )
        return self.project.item(position)

    def held_elsewhere(self, session: str) -> int:
        """How many pending items of the latest batch other sessions are looking at now."""
        return self.db.execute(
            f"""SELECT count(*) FROM leases l JOIN round_items ri ON ri.item = l.item
                WHERE l.session != ? AND l.expires_at > ? AND {PENDING_IN_LATEST_ROUND}""",
            (session, self.clock()),
        ).fetchone()[0]

    def _check_not_leased_elsewhere(self, session: str, position: int) -> None:
        holder = self.db.execute(
            "SELECT session FROM leases WHERE item = ? AND expires_at > ?", (position, self.clock())
        ).fetchone()
        if holder is not None and holder[0] != session:
            raise LeaseConflict(f"item {self.project.item(position).id!r} is being labeled in another session")
