"""Handing out the latest batch to concurrent annotators.

Each annotator session holds a lease on the one item it is looking at. The
``leases`` table has one row per item, and leases are taken inside a BEGIN
IMMEDIATE transaction, so two sessions can never hold the same item at once. A
lease expires after ``lease_seconds`` (the item goes back to the queue) unless the
page renews it (``renew``, a heartbeat while the page is open); labeling, skipping
or ``release`` (the tab was closed) ends it. A request that cannot label (no
session yet) looks at an item without leasing it (``next_item(reserve=False)``).
A session's skipped items come back to it only after every other pending item.

A label carries the item's newest event the labeler saw (``seen``). When someone
else changed the item's label since (their lease had expired, or an undo reopened
it), the label is refused with ``StaleLabel``, which says who gave which label:
nothing is overwritten without the labeler choosing to.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from anchoral.store.database import ProjectError, write
from anchoral.store.project import Item, Project, append_label_event

DEFAULT_LEASE_SECONDS = 120.0

PENDING_IN_LATEST_ROUND = """
    ri.round = (SELECT max(round) FROM rounds)
    AND ri.item NOT IN (SELECT item FROM current_labels)
"""


class LeaseConflict(ProjectError):
    """Another session holds the item; the label was not recorded."""


class StaleLabel(ProjectError):
    """Someone else changed the item's label after the labeler's page showed it; nothing was recorded."""

    def __init__(self, item_id: str, event: int, label: str | None, annotator: str, created_at: str):
        self.item_id, self.event, self.label, self.annotator, self.created_at = item_id, event, label, annotator, created_at
        given = "withdrew its label" if label is None else f"labeled it {label!r}"
        super().__init__(f"item {item_id!r} changed while you looked at it: {annotator} {given} at {created_at}")


class AnnotationQueue:
    """The latest batch's unlabeled items, one per session at a time.

    Parameters
    ----------
    project : the open project.
    lease_seconds : float, default 120
        How long a session keeps an item it is shown without labeling, skipping or
        renewing it (the label page renews it while it is open).
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

    def next_item(self, session: str, *, reserve: bool = True) -> Item | None:
        """The item ``session`` should label now (its current lease, or a new one); None if none is free.

        With ``reserve=False`` (a client that cannot label yet) the first free item is
        returned without leasing it, so it stays free for everyone else."""
        now = self.clock()
        if not reserve:
            row = self.db.execute(
                f"""SELECT ri.item FROM round_items ri WHERE {PENDING_IN_LATEST_ROUND}
                    AND ri.item NOT IN (SELECT item FROM leases WHERE expires_at > ?) ORDER BY ri.rank LIMIT 1""",
                (now,),
            ).fetchone()
            return None if row is None else self.project.item(row[0])
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

    def label(self, session: str, position: int, cls: int, annotator: str, *, seen: int | None = None) -> int:
        """Record ``session``'s label for an item and end its lease; returns the label event id.

        ``seen`` is the item's newest event id when the labeler was shown it (0: it
        had none; None: not checked). Raises LeaseConflict if another session holds
        a live lease on the item, and StaleLabel if another session changed the
        item's label after ``seen`` to something else. Submitting the label this
        session already gave (a double click, a resent form), or the label someone
        else gave meanwhile, records nothing new and returns the existing event.
        """
        if not 0 <= cls < self.project.n_classes:
            raise ProjectError(f"class {cls} is outside the label set [0, {self.project.n_classes})")
        item = self.project.item(position)  # a clear error for a position outside the pool
        with write(self.db):
            self._check_not_leased_elsewhere(session, position)
            newest = self.db.execute(
                "SELECT event, class, session, annotator, created_at FROM label_events WHERE item = ? AND superseded = 0",
                (position,),
            ).fetchone()
            changed_since_seen = seen is not None and newest is not None and newest["event"] != seen
            if newest is not None and newest["class"] == cls and (newest["session"] == session or changed_since_seen):
                event = newest["event"]
            elif changed_since_seen and newest["session"] != session:
                label = None if newest["class"] is None else self.project.labels[newest["class"]]
                raise StaleLabel(item.id, newest["event"], label, newest["annotator"], newest["created_at"])
            else:
                event = append_label_event(self.db, position, cls, annotator, "web", session)
            self.db.execute("DELETE FROM leases WHERE item = ?", (position,))
        return event

    def renew(self, session: str, position: int) -> bool:
        """Extend ``session``'s lease on an item (the open page's heartbeat); False if it no longer holds it."""
        self.project.item(position)
        with write(self.db):
            renewed = self.db.execute(
                "UPDATE leases SET expires_at = ? WHERE item = ? AND session = ? AND expires_at > ?",
                (self.clock() + self.lease_seconds, position, session, self.clock()),
            ).rowcount
        return renewed == 1

    def release(self, session: str, position: int | None = None) -> int:
        """End ``session``'s lease on an item (every lease of it when ``position`` is None); returns how many ended."""
        with write(self.db):
            if position is None:
                return self.db.execute("DELETE FROM leases WHERE session = ?", (session,)).rowcount
            self.project.item(position)
            return self.db.execute("DELETE FROM leases WHERE session = ? AND item = ?", (session, position)).rowcount

    def reservations(self) -> list[tuple[Item, str, float]]:
        """Live leases of the latest batch's pending items: (item, session, seconds left), oldest first."""
        now = self.clock()
        rows = self.db.execute(
            f"""SELECT l.item, l.session, l.expires_at FROM leases l JOIN round_items ri ON ri.item = l.item
                WHERE l.expires_at > ? AND {PENDING_IN_LATEST_ROUND} ORDER BY l.expires_at""",
            (now,),
        ).fetchall()
        return [(self.project.item(row[0]), row[1], row[2] - now) for row in rows]

    def skip(self, session: str, position: int) -> None:
        """Put an item behind every other pending item for this session and end its lease."""
        self.project.item(position)
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
