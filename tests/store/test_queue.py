"""The annotation queue: leases keep concurrent sessions apart; skip, undo and expiry behave."""

import threading

import numpy as np
import pytest

from anchoral.store import AnnotationQueue, LeaseConflict, Project, ProjectError
from anchoral.store.rounds import run_round


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def batch(project, encoder):
    """The project after one round: a batch of 6 ids."""
    return run_round(project, encoder=encoder).selected_ids


def test_before_any_round_there_is_nothing_to_label(project):
    assert AnnotationQueue(project).next_item("a") is None


def test_two_sessions_get_different_items_and_keep_theirs_until_they_label(project, batch):
    queue = AnnotationQueue(project)
    first_a, first_b = queue.next_item("a"), queue.next_item("b")
    assert first_a.id != first_b.id and {first_a.id, first_b.id} <= set(batch)
    assert queue.next_item("a") == first_a  # a reload shows the same item
    queue.label("a", first_a.position, 0, "ann")
    second_a = queue.next_item("a")
    assert second_a.id not in (first_a.id, first_b.id)


def test_a_session_cannot_label_an_item_another_session_holds(project, batch):
    queue = AnnotationQueue(project)
    held = queue.next_item("a")
    with pytest.raises(LeaseConflict, match="another session"):
        queue.label("b", held.position, 1, "bob")
    assert project.history(held.id) == []


def test_an_expired_lease_returns_the_item_to_the_queue(project, batch):
    clock = Clock()
    queue = AnnotationQueue(project, lease_seconds=60, clock=clock)
    held = queue.next_item("a")
    others = {queue.next_item(f"s{k}").id for k in range(5)}
    assert held.id not in others and queue.next_item("late") is None  # all 6 leased
    clock.now += 61
    assert queue.next_item("late") == held


def test_resubmitting_the_same_label_records_it_once(project, batch):
    queue = AnnotationQueue(project)
    item = queue.next_item("a")
    first = queue.label("a", item.position, 0, "ann")
    assert queue.label("a", item.position, 0, "ann") == first
    assert len(project.history(item.id)) == 1


def test_a_skipped_item_comes_back_after_the_others(project, batch):
    queue = AnnotationQueue(project)
    skipped = queue.next_item("a")
    queue.skip("a", skipped.position)
    seen = []
    while (item := queue.next_item("a")) is not None and item.id not in seen:
        seen.append(item.id)
        if item == skipped:
            break
        queue.label("a", item.position, 1, "ann")
    assert seen[-1] == skipped.id and len(seen) == 6


def test_undo_restores_the_previous_label_keeps_history_and_reopens_the_item(project, batch):
    queue = AnnotationQueue(project)
    item = queue.next_item("a")
    queue.label("a", item.position, 0, "ann")
    nxt = queue.next_item("a")
    assert queue.undo("a", "ann") == item
    assert queue.next_item("a") == item  # shown again; the other item went back to the pool
    assert queue.next_item("b") == nxt
    assert [e.label for e in project.history(item.id)] == ["positive", None]
    assert project.batch_progress().labeled == 0
    queue.label("a", item.position, 1, "ann")
    assert [e.label for e in project.history(item.id)] == ["positive", None, "negative"]
    assert queue.undo("a", "ann") == item and queue.undo("a", "ann") is None  # its last label change is the undo


def test_undo_of_a_relabel_returns_to_the_earlier_label(project, batch):
    queue = AnnotationQueue(project)
    item = project.item(project.positions_of(["doc-1"])["doc-1"])  # labeled "positive" at init
    queue.label("a", item.position, 1, "ann")
    assert queue.undo("a", "ann") == item
    assert project.history("doc-1")[-1].label == "positive"
    assert project.label_counts() == {"positive": 2, "negative": 2}


def test_many_sessions_in_threads_never_share_an_item_and_count_each_label_once(project, encoder):
    run_round(project, n=30, encoder=encoder)
    received: dict[str, list[str]] = {}
    errors = []

    def annotate(session):
        with Project.open(project.directory, check_integrity=False) as own:
            queue = AnnotationQueue(own)
            mine = received.setdefault(session, [])
            try:
                while (item := queue.next_item(session)) is not None:
                    mine.append(item.id)
                    queue.label(session, item.position, int(item.id.split("-")[1]) % 2, session)
            except Exception as exc:  # reported below; a thread cannot fail the test itself
                errors.append(exc)

    threads = [threading.Thread(target=annotate, args=(f"s{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    everything = [item for items in received.values() for item in items]
    assert len(everything) == len(set(everything)) == 30
    assert project.batch_progress().labeled == 30
    events = project.db.execute("SELECT item, count(*) FROM label_events WHERE source = 'web' GROUP BY item").fetchall()
    assert len(events) == 30 and all(count == 1 for _, count in events)
    assert sum(project.label_counts().values()) == 34
    assert np.unique(project.current_labels()[0]).size == 34


def test_a_stale_label_after_the_lease_expired_does_not_replace_another_persons_label(project, batch):
    from anchoral.store import StaleLabel

    clock = Clock()
    queue = AnnotationQueue(project, lease_seconds=60, clock=clock)
    shown_to_alice = queue.next_item("alice")
    seen = project.newest_event(shown_to_alice.position)
    clock.now += 61  # alice walked away; her lease expired
    assert [queue.next_item(f"s{k}") for k in range(6)][0] == shown_to_alice
    bobs = queue.label("s0", shown_to_alice.position, 1, "bob")
    with pytest.raises(StaleLabel, match="bob labeled it 'negative'") as refused:
        queue.label("alice", shown_to_alice.position, 0, "alice", seen=seen)
    assert (refused.value.event, refused.value.label, refused.value.annotator) == (bobs, "negative", "bob")
    assert [e.label for e in project.history(shown_to_alice.id)] == ["negative"]
    queue.label("alice", shown_to_alice.position, 0, "alice", seen=bobs)  # "keep mine", knowing bob's label
    history = project.history(shown_to_alice.id)
    assert [(e.label, e.annotator) for e in history] == [("negative", "bob"), ("positive", "alice")]


def test_a_stale_label_that_agrees_with_the_label_given_meanwhile_records_nothing_new(project, batch):
    queue = AnnotationQueue(project)
    item = queue.next_item("a")
    queue.release("a", item.position)
    bobs = queue.label("b", item.position, 0, "bob")
    assert queue.label("a", item.position, 0, "alice", seen=0) == bobs
    assert len(project.history(item.id)) == 1


def test_a_look_without_reserving_leaves_the_item_free(project, batch):
    queue = AnnotationQueue(project)
    looked = [queue.next_item(f"cookieless-{k}", reserve=False) for k in range(5)]
    assert len({item.id for item in looked}) == 1 and queue.reservations() == []
    assert queue.next_item("labeler") == looked[0] and queue.held_elsewhere("other") == 1


def test_a_renewed_lease_outlives_its_first_expiry_and_a_released_one_frees_the_item(project, batch):
    clock = Clock()
    queue = AnnotationQueue(project, lease_seconds=60, clock=clock)
    held = queue.next_item("a")
    clock.now += 50
    assert queue.renew("a", held.position) and not queue.renew("b", held.position)
    clock.now += 50  # 100 s after it was shown, 50 s after the heartbeat
    with pytest.raises(LeaseConflict):
        queue.label("b", held.position, 0, "bob")
    [(item, session, seconds_left)] = queue.reservations()
    assert (item, session, seconds_left) == (held, "a", 10)
    assert queue.release("a", held.position) == 1 and queue.reservations() == []
    assert queue.next_item("b") == held
    clock.now += 61
    assert not queue.renew("b", held.position)  # expired: the page must ask for an item again


def test_an_item_position_too_large_for_sqlite_is_a_clear_error(project, batch):
    queue = AnnotationQueue(project)
    huge = 99999999999999999999999
    for action in (lambda: queue.label("a", huge, 0, "ann"), lambda: queue.skip("a", huge), lambda: queue.renew("a", huge)):
        with pytest.raises(ProjectError, match="no item at position 99999999999999999999999"):
            action()


def test_the_dashboard_names_who_holds_each_reservation(project, encoder):
    run_round(project, encoder=encoder)
    queue = AnnotationQueue(project)
    queue.next_item("s-alice", annotator="Алиса")
    queue.next_item("s-anonymous")
    assert queue.holders() == {"s-alice": "Алиса"}
    assert {session for _, session, _ in queue.reservations()} == {"s-alice", "s-anonymous"}
