"""Overlap: a seeded share of each batch goes to k different labelers, their labels are all
kept, agreement makes the label, a disagreement waits for review, and the resolution is
what training and exports use."""

import json

import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.store import AnnotationQueue, LeaseConflict, ProjectError, StaleLabel
from anchoral.store.exchange import export_rows
from anchoral.store.overlap import choose_overlap, overlap_count
from anchoral.store.review import ResolvedMeanwhile, agreement_report, resolve, resolved, to_review


def manual_round(project, positions, seed=0):
    return project.record_round(strategy="manual", requested_strategy="manual", params={}, seed=seed,
                                batch_size=len(positions), n_labeled=4, last_event=0, metrics={},
                                started_at="now", selected=list(positions))


def labels_now(project) -> dict[int, int]:
    positions, classes, _ = project.current_labels()
    return dict(zip(positions.tolist(), classes.tolist()))


@pytest.fixture
def team(project):
    """alice, bob and carol are invited; every item of a batch overlaps, k = 2."""
    for name in ("alice", "bob", "carol"):
        project.invite(name)
    project.set_overlap(1.0, 2)
    return project


def label_as(queue, session, name, cls):
    item = queue.next_item(session, annotator=name)
    queue.label(session, item.position, cls, name)
    return item


def test_overlap_count_rounds_halves_up_and_the_draw_is_seeded():
    assert [overlap_count(50, 0.1), overlap_count(5, 0.1), overlap_count(4, 0.1), overlap_count(7, 1.0)] == [5, 1, 0, 7]
    first = choose_overlap(50, 0.1, seed=3, round_number=2)
    assert first.tolist() == choose_overlap(50, 0.1, seed=3, round_number=2).tolist()
    assert len(first) == 5 and len(set(first.tolist())) == 5 and first.max() < 50
    draws = {tuple(choose_overlap(50, 0.1, seed=3, round_number=r).tolist()) for r in range(1, 6)}
    assert len(draws) > 1  # each round draws anew


def test_a_round_marks_its_seeded_share_of_the_batch_as_overlap_items(project):
    project.invite("alice"), project.invite("bob")
    project.set_overlap(0.5, 2)
    batch = list(range(10, 16))
    number = manual_round(project, batch, seed=4)
    marked = [row[0] for row in project.db.execute("SELECT item FROM overlap_items WHERE round = ? ORDER BY item", (number,))]
    assert marked == [batch[rank] for rank in choose_overlap(6, 0.5, 4, number)]
    assert len(marked) == 3 and all(project.raters_of(position) == 2 for position in marked)
    assert all(project.raters_of(position) == 1 for position in batch if position not in marked)


def test_without_overlap_a_round_marks_nothing(project):
    manual_round(project, range(10, 16))
    assert project.db.execute("SELECT count(*) FROM overlap_items").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("fraction", "raters", "review_by", "message"),
    [
        (-0.1, 2, None, r"overlap .* must be in \[0, 1\]; got -0.1"),
        (1.5, 2, None, r"must be in \[0, 1\]; got 1.5"),
        (float("nan"), 2, None, r"must be in \[0, 1\]"),
        (0.2, 1, None, "must be an integer of at least 2; got 1"),
        (0.2, 4, None, r"overlap k is 4 but the project knows 3 labeler\(s\) \(alice, bob, carol\); invite more"),
        (None, None, "everyone", r"review_by \(who resolves disagreements\) must be one of: owner, labelers; got .everyone."),
    ],
)
def test_a_bad_overlap_setting_is_refused_and_the_stored_one_is_kept(team, fraction, raters, review_by, message):
    before = team.overlap()
    with pytest.raises(ValidationError, match=message):
        team.set_overlap(fraction, raters, review_by)
    assert team.overlap() == before


def test_k_is_not_checked_against_the_labelers_when_only_the_reviewer_changes(project):
    assert project.set_overlap(review_by="labelers").review_by == "labelers"
    with pytest.raises(ValidationError, match="knows 0 labeler"):
        project.set_overlap(0.1, 2)
    assert project.set_overlap(0.0, 3).enabled is False  # no overlap: nobody needed


def test_an_overlap_item_goes_to_k_different_labelers_at_once_and_never_twice_to_one(team):
    manual_round(team, [10, 11])
    queue = AnnotationQueue(team)
    first = queue.next_item("alice-tab-1", annotator="alice")
    assert queue.next_item("alice-tab-2", annotator="alice").position == 11  # her other tab: never the same item
    assert queue.next_item("bob", annotator="bob").position == first.position == 10  # the second slot of item 10
    assert queue.next_item("carol", annotator="carol").position == 11
    assert queue.next_item("dave", annotator="dave") is None  # both items have both their labelers
    queue.label("alice-tab-1", 10, 0, "alice")
    assert queue.next_item("alice-tab-1", annotator="alice") is None  # 11 is held by her other tab
    assert {item.id for item, _, _ in queue.reservations()} == {"doc-11", "doc-12"}
    queue.label("bob", 10, 0, "bob")
    assert queue.next_item("dave", annotator="dave") is None  # 10 has its two labels: it left the queue


def test_labels_by_different_labelers_are_all_kept_and_their_agreement_is_the_label(team):
    manual_round(team, [10])
    queue = AnnotationQueue(team)
    label_as(queue, "a", "alice", 1)
    assert 10 not in labels_now(team) and team.batch_progress().labeled == 0  # one of its two labels
    label_as(queue, "b", "bob", 1)
    history = team.history("doc-11")
    assert [(e.label, e.annotator, e.track, e.superseded) for e in history] == [
        ("negative", "alice", "alice", False),
        ("negative", "bob", "bob", False),
    ]
    assert labels_now(team)[10] == 1 and team.label_counts() == {"positive": 2, "negative": 3}
    row = next(row for row in export_rows(team) if row["id"] == "doc-11")
    assert row["label"] == "negative" and set(row["annotator"].split(", ")) == {"alice", "bob"}


def test_a_disagreement_is_left_out_of_training_until_a_reviewer_resolves_it(team):
    manual_round(team, [10, 11])
    queue = AnnotationQueue(team)
    for session, name, first, second in (("a", "alice", 0, 0), ("b", "bob", 1, 0)):
        label_as(queue, session, name, first)
        label_as(queue, session, name, second)
    assert 10 not in labels_now(team) and labels_now(team)[11] == 0
    progress = team.batch_progress()
    assert (progress.labeled, progress.in_review, progress.remaining) == (1, 1, 0)
    (waiting,) = to_review(team)
    assert waiting.item.id == "doc-11" and waiting.seen == 0
    assert {(o.annotator, o.label) for o in waiting.opinions} == {("alice", "positive"), ("bob", "negative")}

    event = resolve(team, 10, 1, "owner", seen=0)
    assert labels_now(team)[10] == 1 and to_review(team) == []
    assert [entry.resolution.event for entry in resolved(team)] == [event]
    row = next(row for row in export_rows(team) if row["id"] == "doc-11")
    assert (row["label"], row["annotator"]) == ("negative", "owner")
    assert [(e.annotator, e.label, e.source) for e in team.history("doc-11")] == [
        ("alice", "positive", "web"), ("bob", "negative", "web"), ("owner", "negative", "review"),
    ]
    assert team.batch_progress().labeled == 2
    report = agreement_report(team)
    assert report["review"] == {"overlap_items": 2, "waiting": 0, "agreed": 1, "in_review": 0, "resolved": 1}
    json.dumps(report, allow_nan=False)


def test_a_resolution_made_meanwhile_is_not_overwritten_unknowingly(team):
    manual_round(team, [10])
    queue = AnnotationQueue(team)
    label_as(queue, "a", "alice", 0)
    label_as(queue, "b", "bob", 1)
    first = resolve(team, 10, 0, "owner", seen=0)
    assert resolve(team, 10, 0, "carol", seen=0) == first  # the same choice: nothing new
    with pytest.raises(ResolvedMeanwhile, match="owner chose 'positive'"):
        resolve(team, 10, 1, "carol", seen=0)
    changed = resolve(team, 10, 1, "carol", seen=first)  # knowingly changed: both kept in the history
    assert labels_now(team)[10] == 1
    assert [e.event for e in team.history("doc-11") if e.source == "review"] == [first, changed]


def test_only_complete_disagreements_of_overlap_items_can_be_resolved(team):
    manual_round(team, [10, 11])
    queue = AnnotationQueue(team)
    with pytest.raises(ProjectError, match="not an overlap item"):
        resolve(team, 20, 0, "owner")
    label_as(queue, "a", "alice", 0)
    with pytest.raises(ProjectError, match="has labels from 1 of its 2 labelers"):
        resolve(team, 10, 1, "owner")
    label_as(queue, "b", "bob", 0)
    with pytest.raises(ProjectError, match="agree on 'positive'; there is nothing to resolve"):
        resolve(team, 10, 1, "owner")


def test_undo_takes_back_only_the_labelers_own_label_and_gives_the_item_back_to_them(team):
    manual_round(team, [10])
    queue = AnnotationQueue(team)
    label_as(queue, "a", "alice", 0)
    label_as(queue, "b", "bob", 1)
    assert team.batch_progress().in_review == 1
    assert queue.undo("a", "alice").position == 10
    assert team.batch_progress().in_review == 0 and to_review(team) == []
    assert queue.next_item("a", annotator="alice").position == 10  # reopened for her
    assert queue.next_item("c", annotator="carol") is None  # bob's label and alice's lease fill its two places
    queue.label("a", 10, 1, "alice")
    assert labels_now(team)[10] == 1
    assert [(e.annotator, e.label, e.superseded) for e in team.history("doc-11") if e.track == "bob"] == [("bob", "negative", False)]


def test_a_labeler_relabeling_from_another_tab_gets_the_stale_label_and_others_never_do(team):
    manual_round(team, [10])
    queue = AnnotationQueue(team)
    item = queue.next_item("a1", annotator="alice")
    seen_by_bob = team.newest_event(item.position, team.track_of(item.position, "bob"))
    assert queue.next_item("b", annotator="bob") == item
    queue.label("a1", item.position, 0, "alice", seen=0)
    queue.label("b", item.position, 1, "bob", seen=seen_by_bob)  # alice's label is no conflict for bob
    with pytest.raises(StaleLabel, match="alice labeled it 'positive'"):
        queue.label("a2", item.position, 1, "alice", seen=0)


def test_a_third_labeler_cannot_label_an_item_both_its_labelers_hold(team):
    manual_round(team, [10])
    queue = AnnotationQueue(team)
    queue.next_item("a", annotator="alice")
    queue.next_item("b", annotator="bob")
    with pytest.raises(LeaseConflict, match="the 2 other labelers it goes to"):
        queue.label("c", 10, 0, "carol")
    assert team.history("doc-11") == []


def test_an_imported_label_of_an_overlap_item_is_its_label(team):
    manual_round(team, [10])
    queue = AnnotationQueue(team)
    label_as(queue, "a", "alice", 0)
    team.set_labels([(10, 1)], annotator="import", source="import")
    assert labels_now(team)[10] == 1
    assert queue.next_item("b", annotator="bob") is None  # labeled: nothing more to do on it


def test_the_agreement_report_reads_the_labelers_labels_of_overlap_items(team):
    manual_round(team, [10, 11, 12, 13])
    queue = AnnotationQueue(team)
    # (alice, bob): (0, 0), (1, 1), (0, 1), (1, 1): p_o = 3/4, p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2, kappa = 1/2.
    for name, classes in (("alice", (0, 1, 0, 1)), ("bob", (0, 1, 1, 1))):
        for cls in classes:
            label_as(queue, name, name, cls)
    report = agreement_report(team)
    assert report["statistic"] == "cohen" and report["raters"] == ["alice", "bob"] and report["items"] == 4
    assert report["kappa"]["value"] == pytest.approx(0.5)
    assert report["percent_agreement"]["value"] == pytest.approx(0.75)
    assert report["review"]["in_review"] == 1 and report["review"]["agreed"] == 3


def test_a_project_without_overlap_reports_no_agreement_with_a_reason(project):
    report = agreement_report(project)
    assert report["items"] == 0 and report["kappa"] == {"value": None, "reason": "no item was labeled by two or more labelers"}
    assert report["review"]["overlap_items"] == 0
    json.dumps(report, allow_nan=False)


def test_many_labelers_in_threads_give_each_overlap_item_exactly_k_labels(team):
    import threading

    team.set_overlap(0.5, 3)
    manual_round(team, list(range(10, 30)))
    overlap = {row[0] for row in team.db.execute("SELECT item FROM overlap_items")}
    directory = team.directory
    errors = []

    def work(name):
        from anchoral.store import Project

        try:
            with Project.open(directory) as mine:
                queue = AnnotationQueue(mine)
                while (item := queue.next_item(name, annotator=name)) is not None:
                    queue.label(name, item.position, item.position % 2, name)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("alice", "bob", "carol", "dave", "erin")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    per_item = dict(team.db.execute("SELECT item, count(DISTINCT track) FROM label_events WHERE source = 'web' GROUP BY item"))
    assert all(per_item[position] == (3 if position in overlap else 1) for position in range(10, 30))
    assert len(overlap) == 10 and np.isin(list(range(10, 30)), list(labels_now(team))).all()


def test_a_round_never_selects_an_item_awaiting_its_labelers_agreement(team, encoder):
    from anchoral.store.rounds import run_round

    queue = AnnotationQueue(team)
    number = manual_round(team, [10, 11, 12, 13])
    assert number and team.raters_of(10) == 2
    label_as(queue, "s-alice", "alice", 0)          # 10: one of its two labelers so far
    label_as(queue, "s-alice", "alice", 0)          # 11
    label_as(queue, "s-bob", "bob", 1)              # 10: a disagreement, in review
    waiting = team.awaiting_agreement().tolist()
    assert waiting == [10, 11] and not {10, 11} & set(team.current_labels()[0].tolist())
    for _ in range(2):  # strategy ranking or not, the batch is full and skips them
        result = run_round(team, strategy="entropy", n=50, encoder=encoder)
        positions = team.positions_of(result.selected_ids).values()
        assert len(result.selected_ids) == 50 and not {10, 11} & set(positions)
    every = run_round(team, strategy="random", n=1000, encoder=encoder)  # more than is selectable: what is left
    unlabeled = team.pool_size - len(team.current_labels()[0]) - 2
    assert len(every.selected_ids) == unlabeled and not {10, 11} & set(team.positions_of(every.selected_ids).values())
