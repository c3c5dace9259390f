"""A project written by an older anchoral (schema 1, before overlap) opens, is brought up
to date in place, keeps its labels, history, rounds and reservations, and can then use overlap."""

import json
import sqlite3
import time
from pathlib import Path

from anchoral.store import PROJECT_FILE, SCHEMA_VERSION, AnnotationQueue, Project
from anchoral.store.database import APPLICATION_ID

SCHEMA_V1 = Path(__file__).with_name("schema_v1.sql").read_text()


def write_v1_project(directory: Path) -> None:
    """A schema-1 project: 6 items, two labels, one round of 4 items, a label changed once, a live lease."""
    directory.mkdir()
    db = sqlite3.connect(directory / PROJECT_FILE)
    db.executescript(SCHEMA_V1)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("INSERT INTO schema_version VALUES (1, '2025-01-01T00:00:00+00:00')")
    settings = {"strategy": "random", "batch_size": 4, "seed": 3, "data_file": "old.csv", "serve_token": "old-token"}
    db.executemany("INSERT INTO settings VALUES (?, ?)", [(key, json.dumps(value)) for key, value in settings.items()])
    db.executemany("INSERT INTO label_set VALUES (?, ?)", [(0, "positive"), (1, "negative")])
    db.executemany("INSERT INTO items VALUES (?, ?, ?)", [(p, f"doc-{p}", f"text {p}") for p in range(6)])
    db.execute(
        """INSERT INTO rounds VALUES (1, 'random', 'random', '{}', 3, 4, 0, 0, '{}', '2025-01-01', '2025-01-01')"""
    )
    db.executemany("INSERT INTO round_items VALUES (1, ?, ?, NULL)", [(rank, rank) for rank in range(4)])
    events = [  # item, class, annotator, superseded
        (0, 0, "ann", 1),
        (0, 1, "bob", 0),
        (1, 0, "ann", 0),
    ]
    db.executemany(
        """INSERT INTO label_events (item, class, annotator, source, session, round, created_at, superseded)
           VALUES (?, ?, ?, 'web', 's1', 1, '2025-01-01', ?)""",
        events,
    )
    db.execute("INSERT INTO leases VALUES (2, 'carol-session', ?, 0)", (time.time() + 600,))
    db.commit()
    db.close()


def test_an_old_schema_project_opens_and_is_upgraded_keeping_everything(tmp_path):
    write_v1_project(tmp_path / "old")
    with Project.open(tmp_path / "old") as project:
        assert project.db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert project.access_token() == "old-token"
        positions, classes, last_event = project.current_labels()
        assert positions.tolist() == [0, 1] and classes.tolist() == [1, 0] and last_event == 3
        assert [(e.label, e.annotator, e.superseded, e.track) for e in project.history("doc-0")] == [
            ("positive", "ann", True, ""),
            ("negative", "bob", False, ""),
        ]
        assert project.batch_progress().labeled == 2
        queue = AnnotationQueue(project)
        assert [(item.id, session) for item, session, _ in queue.reservations()] == [("doc-2", "carol-session")]
        assert queue.next_item("dave").id == "doc-3"  # carol still holds doc-2
        assert project.overlap().enabled is False


def test_an_upgraded_project_takes_overlap_and_keeps_one_label_per_labeler(tmp_path):
    write_v1_project(tmp_path / "old")
    with Project.open(tmp_path / "old") as project:
        project.invite("alice")
        project.invite("bob")
        project.set_overlap(1.0, 2)
        project.record_round(strategy="manual", requested_strategy="manual", params={}, seed=0, batch_size=2,
                             n_labeled=2, last_event=3, metrics={}, started_at="now", selected=[4, 5])
        queue = AnnotationQueue(project)
        for session, name, cls in (("a", "alice", 0), ("b", "bob", 0)):
            item = queue.next_item(session, annotator=name)
            assert item.id == "doc-4"
            queue.label(session, item.position, cls, name)
        assert dict(zip(*[a.tolist() for a in project.current_labels()[:2]]))[4] == 0


def test_a_second_open_finds_the_project_already_upgraded(tmp_path):
    write_v1_project(tmp_path / "old")
    Project.open(tmp_path / "old").close()
    with Project.open(tmp_path / "old") as project:
        versions = [row[0] for row in project.db.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == [1, 2]

