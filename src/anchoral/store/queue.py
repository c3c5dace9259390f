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

An overlap item (``overlap``) goes to ``raters`` distinct labelers: that many
sessions may hold it at once (one lease slot each), never two sessions of one
labeler, and never a labeler who has labeled it already. Each labeler's label goes
to their own track (``project``), so labels by different labelers are all kept and
never a stale-label conflict; only the labeler's own earlier label is. A labeler is
known by the name the session labels as (``annotator``: an invited labeler's name,
or the name typed on the dashboard); a caller that gives none is known by session.
Once all its labelers have labeled an overlap item it leaves the queue, labeled if
they agree, else for review (``review``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from anchoral.store.database import ProjectError, write
from anchoral.store.project import OPINIONS, Item, Project, append_label_event

DEFAULT_LEASE_SECONDS = 120.0

PENDING_IN_LATEST_ROUND = f"""
    ri.round = (SELECT max(round) FROM rounds)
    AND ri.item NOT IN (SELECT item FROM current_labels)
    AND NOT EXISTS (SELECT 1 FROM overlap_items o WHERE o.item = ri.item AND {OPINIONS} >= o.raters)
"""
"""SQL: item ``ri.item`` of the latest batch still needs a label from someone."""
LABELED_BY = """EXISTS (SELECT 1 FROM label_events e WHERE e.item = ri.item AND e.track != '' AND e.superseded = 0
    AND e.class IS NOT NULL AND (e.track = :annotator OR (:annotator IS NULL AND e.session = :session)))"""
"""SQL: the labeler (``:annotator``, else ``:session``) has labeled overlap item ``ri.item``."""


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

    def next_item(self, session: str, *, annotator: str | None = None, reserve: bool = True) -> Item | None:
        """The item ``session`` should label now (its current lease, or a new one); None if none is free.

        ``annotator`` is who the session labels as: an overlap item is handed to
        different labelers only. With ``reserve=False`` (a client that cannot label yet)
        the first free item is returned without leasing it, so it stays free for everyone else."""
        now = self.clock()
        if not reserve:
            position = self._first_open(session, annotator, now)
            return None if position is None else self.project.item(position)
        with write(self.db):
            self.db.execute("DELETE FROM leases WHERE expires_at <= ?", (now,))
            kept = self.db.execute(
                f"""SELECT l.item FROM leases l LEFT JOIN round_items ri ON ri.item = l.item
                    AND ({PENDING_IN_LATEST_ROUND}) AND NOT {LABELED_BY}
                    WHERE l.session = :session AND (l.reopened = 1 OR ri.item IS NOT NULL)
                    ORDER BY l.reopened DESC LIMIT 1""",
                {"session": session, "annotator": annotator},
            ).fetchone()
            self.db.execute(
                "DELETE FROM leases WHERE session = ? AND item IS NOT ?", (session, None if kept is None else kept[0])
            )
            if kept is not None:
                position = kept[0]
                self.db.execute(
                    "UPDATE leases SET expires_at = ? WHERE item = ? AND session = ?", (now + self.lease_seconds, position, session)
                )
            else:
                position = self._first_open(session, annotator, now)
                if position is None:
                    return None
                self._lease(position, session, annotator, now + self.lease_seconds)
        return self.project.item(position)

    def _first_open(self, session: str, annotator: str | None, now: float) -> int | None:
        """The first item of the latest batch this labeler may take now: not held by another
        session (an overlap item: fewer labels and holders than it needs, none of them this
        labeler's), the session's skipped items last."""
        rows = self.db.execute(
            f"""SELECT ri.item, coalesce(o.raters, 1) AS raters, {OPINIONS} AS opinions, {LABELED_BY} AS mine
                FROM round_items ri LEFT JOIN overlap_items o ON o.item = ri.item
                LEFT JOIN skips s ON s.session = :session AND s.round = ri.round AND s.item = ri.item
                WHERE {PENDING_IN_LATEST_ROUND}
                ORDER BY s.skipped_at IS NOT NULL, s.skipped_at, ri.rank""",
            {"session": session, "annotator": annotator},
        ).fetchall()
        holders: dict[int, list] = {}
        for lease in self.db.execute("SELECT item, session, annotator FROM leases WHERE expires_at > ?", (now,)):
            if lease["session"] != session:
                holders.setdefault(lease["item"], []).append(lease)
        for row in rows:
            others = holders.get(row["item"], [])
            if row["raters"] == 1:
                if not others:
                    return row["item"]
            elif (
                not row["mine"]
                and not any(annotator is not None and other["annotator"] == annotator for other in others)
                and row["opinions"] + len(others) < row["raters"]
            ):
                return row["item"]
        return None

    def _lease(self, position: int, session: str, annotator: str | None, expires_at: float, *, reopened: bool = False) -> None:
        """Lease an item to ``session`` in its lowest free slot (an ordinary item has only slot 0)."""
        used = {row[0] for row in self.db.execute("SELECT slot FROM leases WHERE item = ?", (position,))}
        slot = min(set(range(len(used) + 1)) - used)
        self.db.execute(
            "INSERT INTO leases (item, slot, session, annotator, expires_at, reopened) VALUES (?, ?, ?, ?, ?, ?)",
            (position, slot, session, annotator, expires_at, int(reopened)),
        )

    def label(self, session: str, position: int, cls: int, annotator: str, *, seen: int | None = None) -> int:
        """Record ``session``'s label for an item and end its lease; returns the label event id.

        ``seen`` is the item's newest event id when the labeler was shown it (0: it
        had none; None: not checked), on the labeler's track of an overlap item
        (``Project.track_of``). Raises LeaseConflict if another session holds a live
        lease on the item (an overlap item: if all the labelers it needs are others),
        and StaleLabel if another session changed the label after ``seen`` to
        something else. Submitting the label this session already gave (a double
        click, a resent form), or the label someone else gave meanwhile, records
        nothing new and returns the existing event.
        """
        if not 0 <= cls < self.project.n_classes:
            raise ProjectError(f"class {cls} is outside the label set [0, {self.project.n_classes})")
        item = self.project.item(position)  # a clear error for a position outside the pool
        raters = self.project.raters_of(position)
        track = annotator if raters > 1 else ""
        with write(self.db):
            self._check_room(session, position, track, raters)
            newest = self.db.execute(
                """SELECT event, class, session, annotator, created_at FROM label_events
                   WHERE item = ? AND track = ? AND superseded = 0""",
                (position, track),
            ).fetchone()
            changed_since_seen = seen is not None and newest is not None and newest["event"] != seen
            if newest is not None and newest["class"] == cls and (newest["session"] == session or changed_since_seen):
                event = newest["event"]
            elif changed_since_seen and newest["session"] != session:
                label = None if newest["class"] is None else self.project.labels[newest["class"]]
                raise StaleLabel(item.id, newest["event"], label, newest["annotator"], newest["created_at"])
            else:
                event = append_label_event(self.db, position, cls, annotator, "web", session, track)
            self._end_lease(session, position, raters)
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

    def holders(self) -> dict[str, str]:
        """Who labels in each session that holds a lease (the name it labels as), for the dashboard."""
        rows = self.db.execute("SELECT DISTINCT session, annotator FROM leases WHERE annotator IS NOT NULL").fetchall()
        return {row[0]: row[1] for row in rows}

    def skip(self, session: str, position: int) -> None:
        """Put an item behind every other pending item for this session and end its lease."""
        self.project.item(position)
        raters = self.project.raters_of(position)
        with write(self.db):
            if raters == 1:
                self._check_room(session, position, "", raters)
            latest = self.db.execute("SELECT max(round) FROM round_items WHERE item = ?", (position,)).fetchone()[0]
            if latest is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO skips (session, round, item, skipped_at) VALUES (?, ?, ?, ?)",
                    (session, latest, position, self.clock()),
                )
            self._end_lease(session, position, raters)

    def undo(self, session: str, annotator: str) -> Item | None:
        """Take back ``session``'s latest label that nobody has changed since.

        The item returns to the label it had before (usually none) through a new
        event on the same track, so the history keeps both, and it is leased back to
        ``session`` to be labeled again (an overlap item: beside its other labelers'
        leases). Returns the item, or None if there is nothing to undo.
        """
        with write(self.db):
            last = self.db.execute(
                """SELECT event, item, track FROM label_events
                   WHERE session = ? AND source = 'web' AND superseded = 0 ORDER BY event DESC LIMIT 1""",
                (session,),
            ).fetchone()
            if last is None:
                return None
            position, track = last["item"], last["track"]
            previous = self.db.execute(
                "SELECT class FROM label_events WHERE item = ? AND track = ? AND event < ? ORDER BY event DESC LIMIT 1",
                (position, track, last["event"]),
            ).fetchone()
            append_label_event(self.db, position, None if previous is None else previous[0], annotator, "undo", session, track)
            if track:
                self.db.execute("DELETE FROM leases WHERE session = ?", (session,))
            else:
                self.db.execute("DELETE FROM leases WHERE session = ? OR item = ?", (session, position))
            self._lease(position, session, track or annotator, self.clock() + self.lease_seconds, reopened=True)
        return self.project.item(position)

    def held_elsewhere(self, session: str) -> int:
        """How many pending items of the latest batch other sessions are looking at now."""
        return self.db.execute(
            f"""SELECT count(DISTINCT l.item) FROM leases l JOIN round_items ri ON ri.item = l.item
                WHERE l.session != ? AND l.expires_at > ? AND {PENDING_IN_LATEST_ROUND}""",
            (session, self.clock()),
        ).fetchone()[0]

    def _check_room(self, session: str, position: int, track: str, raters: int) -> None:
        """LeaseConflict unless ``session`` may label the item now: an ordinary item that no other
        session holds; an overlap item that this session holds, that this labeler (``track``)
        labeled before, or that has room for one more labeler beside the others' labels and leases."""
        holders = [row[0] for row in self.db.execute(
            "SELECT session FROM leases WHERE item = ? AND expires_at > ?", (position, self.clock())
        )]
        others = [holder for holder in holders if holder != session]
        if raters == 1:
            if others:
                raise LeaseConflict(f"item {self.project.item(position).id!r} is being labeled in another session")
            return
        if len(others) < len(holders):
            return
        opinions = dict(self.db.execute(
            """SELECT track, class FROM label_events WHERE item = ? AND track != '' AND superseded = 0
               AND class IS NOT NULL""",
            (position,),
        ).fetchall())
        if track not in opinions and len(opinions) + len(others) >= raters:
            raise LeaseConflict(
                f"item {self.project.item(position).id!r} is being labeled by the {raters} other labelers it goes to"
            )

    def _end_lease(self, session: str, position: int, raters: int) -> None:
        """Drop the session's lease on the item (every lease of an ordinary item: any other has expired)."""
        if raters == 1:
            self.db.execute("DELETE FROM leases WHERE item = ?", (position,))
        else:
            self.db.execute(
                "DELETE FROM leases WHERE item = ? AND (session = ? OR expires_at <= ?)", (position, session, self.clock())
            )
