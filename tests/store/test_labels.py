"""Labels are append-only events: relabeling keeps history, the current label is the latest."""

import sqlite3

import pytest

from anchoral.store import Project


def test_relabeling_keeps_the_history_and_counts_the_item_once(project):
    position = project.positions_of(["doc-10"])["doc-10"]
    project.set_labels([(position, 0)], annotator="ann", source="test")
    project.set_labels([(position, 1)], annotator="bob", source="test")
    history = project.history("doc-10")
    assert [(e.label, e.annotator, e.superseded) for e in history] == [("positive", "ann", True), ("negative", "bob", False)]
    assert project.label_counts() == {"positive": 2, "negative": 3}
    positions, classes, last_event = project.current_labels()
    assert positions.tolist().count(position) == 1 and classes[positions.tolist().index(position)] == 1
    assert last_event == history[-1].event


def test_a_failing_change_writes_nothing(project):
    before = project.label_counts()
    with pytest.raises(sqlite3.IntegrityError):
        project.set_labels([(10, 0), (11, 1), (10_000, 0)], annotator="ann", source="test")  # no item 10000
    assert project.label_counts() == before
    assert project.history("doc-11") == []


def test_labels_written_by_one_connection_are_seen_by_another(project):
    project.set_labels([(20, 0)], annotator="ann", source="test")
    with Project.open(project.directory) as other:
        assert other.label_counts()["positive"] == 3


def test_the_database_refuses_two_current_labels_for_one_item(project):
    with pytest.raises(sqlite3.IntegrityError):
        project.db.execute(
            "INSERT INTO label_events (item, class, annotator, source, created_at) VALUES (0, 1, 'x', 'test', 'now')"
        )
