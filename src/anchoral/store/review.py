"""The review queue: overlap items whose labelers disagree, their resolution, and the
agreement of the labelers.

An overlap item (``overlap``) is *in review* once all the labelers it goes to have
labeled it and their labels differ, until a reviewer resolves it. The resolution is a
label event on the item's own track (source ``review``): it becomes the item's label
for training (``Project.current_labels``) and exports, and every labeler's label stays
in the history beside it. A resolution can be changed the same way (the page carries
the resolution it showed, so two reviewers never overwrite each other unknowingly).
Who may resolve is the overlap setting's ``review_by``: the project's owner (the
default: the person who answers for the labels) or any labeler.
"""

from __future__ import annotations

from dataclasses import dataclass

from anchoral.store.agreement import summarize
from anchoral.store.database import ProjectError, write
from anchoral.store.project import OPINIONS, Item, LabelEvent, Project, append_label_event


@dataclass(frozen=True)
class Opinion:
    """One labeler's current label of an overlap item."""

    annotator: str
    label: str
    created_at: str


@dataclass(frozen=True)
class ReviewItem:
    """An overlap item whose labelers disagree; ``resolution`` is its reviewer's label, if any."""

    item: Item
    raters: int
    round: int
    opinions: tuple[Opinion, ...]
    resolution: LabelEvent | None

    @property
    def seen(self) -> int:
        """The event a resolution form carries: the resolution shown (0: none)."""
        return 0 if self.resolution is None else self.resolution.event


class ResolvedMeanwhile(ProjectError):
    """Someone else resolved the item after the reviewer's page showed it; nothing was recorded."""


def opinions_by_item(project: Project) -> dict[int, dict[str, int]]:
    """Every overlap item's current labels by labeler: position -> {labeler: class}."""
    found: dict[int, dict[str, int]] = {}
    rows = project.db.execute(
        """SELECT e.item, e.track, e.class FROM label_events e JOIN overlap_items o ON o.item = e.item
           WHERE e.track != '' AND e.superseded = 0 AND e.class IS NOT NULL ORDER BY e.event"""
    )
    for row in rows:
        found.setdefault(row["item"], {})[row["track"]] = row["class"]
    return found


def _disagreements(project: Project) -> list[ReviewItem]:
    """Overlap items all of whose labelers have labeled them, in disagreement, oldest round first."""
    overlap = {row[0]: (row[1], row[2]) for row in project.db.execute("SELECT item, raters, round FROM overlap_items")}
    found = []
    for position, opinions in opinions_by_item(project).items():
        raters, round_number = overlap[position]
        if len(opinions) < raters or len(set(opinions.values())) == 1:
            continue
        item = project.item(position)
        events = project.history(item.id)
        current = [event for event in events if event.track and not event.superseded and event.label is not None]
        own = [event for event in events if not event.track and not event.superseded and event.label is not None]
        found.append(ReviewItem(
            item=item,
            raters=raters,
            round=round_number,
            opinions=tuple(Opinion(event.annotator, event.label, event.created_at) for event in current),
            resolution=own[0] if own else None,
        ))
    return sorted(found, key=lambda entry: (entry.round, entry.item.position))


def count_to_review(project: Project) -> int:
    """How many disagreements wait for a reviewer (``len(to_review(project))``, in one query)."""
    return project.db.execute(
        f"""SELECT count(*) FROM overlap_items o
            WHERE {OPINIONS} >= o.raters
            AND (SELECT count(DISTINCT e.class) FROM label_events e WHERE e.item = o.item AND e.track != ''
                 AND e.superseded = 0 AND e.class IS NOT NULL) > 1
            AND o.item NOT IN (SELECT item FROM label_events WHERE track = '' AND superseded = 0 AND class IS NOT NULL)"""
    ).fetchone()[0]


def to_review(project: Project) -> list[ReviewItem]:
    """The disagreements nobody has resolved yet: the review queue."""
    return [entry for entry in _disagreements(project) if entry.resolution is None]


def resolved(project: Project) -> list[ReviewItem]:
    """The disagreements that have a resolution, most recently resolved first."""
    done = [entry for entry in _disagreements(project) if entry.resolution is not None]
    return sorted(done, key=lambda entry: entry.resolution.event, reverse=True)


def resolve(project: Project, position: int, cls: int, reviewer: str, *, seen: int | None = None) -> int:
    """Make ``cls`` the label of an overlap item whose labelers disagree; returns the event id.

    ``seen`` is the resolution the reviewer's page showed (0: none; None: not checked):
    if another reviewer resolved the item differently since, ResolvedMeanwhile says
    who and how, and nothing is recorded. Resolving it again with the label it has
    records nothing new."""
    if not 0 <= cls < project.n_classes:
        raise ProjectError(f"class {cls} is outside the label set [0, {project.n_classes})")
    item = project.item(position)
    with write(project.db):
        overlap = project.db.execute("SELECT raters FROM overlap_items WHERE item = ?", (position,)).fetchone()
        if overlap is None:
            raise ProjectError(f"item {item.id!r} is not an overlap item; only disagreements between labelers are reviewed")
        opinions = opinions_by_item(project).get(position, {})
        if len(opinions) < overlap[0]:
            raise ProjectError(
                f"item {item.id!r} has labels from {len(opinions)} of its {overlap[0]} labelers; "
                "it can be reviewed once all of them have labeled it"
            )
        if len(set(opinions.values())) == 1:
            agreed = project.labels[next(iter(opinions.values()))]
            raise ProjectError(f"the labelers of item {item.id!r} agree on {agreed!r}; there is nothing to resolve")
        current = project.db.execute(
            """SELECT event, class, annotator, created_at FROM label_events
               WHERE item = ? AND track = '' AND superseded = 0 AND class IS NOT NULL""",
            (position,),
        ).fetchone()
        if current is not None and current["class"] == cls:
            return current["event"]
        if current is not None and seen is not None and current["event"] != seen:
            raise ResolvedMeanwhile(
                f"item {item.id!r} was resolved meanwhile: {current['annotator']} chose "
                f"{project.labels[current['class']]!r} at {current['created_at']}; nothing was recorded"
            )
        return append_label_event(project.db, position, cls, reviewer, "review", None)


def agreement_report(project: Project) -> dict:
    """The labelers' agreement on overlap items (``agreement.summarize``) and the review counts:
    ``overlap_items``, ``waiting`` (not all their labelers have labeled them), ``agreed``,
    ``in_review`` and ``resolved``. JSON-ready; undefined statistics are None with a reason."""
    opinions = opinions_by_item(project)
    raters = dict(project.db.execute("SELECT item, raters FROM overlap_items").fetchall())
    disagreements = _disagreements(project)
    complete = sum(len(opinions.get(position, {})) >= needed for position, needed in raters.items())
    in_review = sum(entry.resolution is None for entry in disagreements)
    report = summarize(list(opinions.values()), project.labels)
    report["review"] = {
        "overlap_items": len(raters),
        "waiting": len(raters) - complete,
        "agreed": complete - len(disagreements),
        "in_review": in_review,
        "resolved": len(disagreements) - in_review,
    }
    return report
