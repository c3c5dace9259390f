"""kill -9 at any moment loses no committed label and leaves a project that opens.

Real child processes write to the project and are killed with SIGKILL mid-way;
the project is then reopened (with its integrity check) and compared with what
the child reported as committed.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from anchoral.store import Project

REPO = Path(__file__).resolve().parents[2]

WRITER = """
import random, sys
from anchoral.store import Project
project = Project.open(sys.argv[1])
rng = random.Random(0)
for step in range(100000):
    position, cls = rng.randrange(project.pool_size), rng.randrange(2)
    if step % 10 == 9:  # now and then a big transaction: 40 labels at once
        assignments = [(rng.randrange(project.pool_size), rng.randrange(2)) for _ in range(40)]
        events = project.set_labels(assignments, annotator="bulk", source="test")
        print("bulk", events[-1], flush=True)
    else:
        (event,) = project.set_labels([(position, cls)], annotator="child", source="test")
        print("one", event, position, cls, flush=True)
"""

QUERY = """
import sys
from anchoral.store import Project
from anchoral.store.rounds import run_round
from tests.store.fakes import HashingEncoder

class SlowEncoder(HashingEncoder):
    fingerprint = "test-slow-encoder-" + sys.argv[2]

project = Project.open(sys.argv[1])
print("started", flush=True)
run_round(project, encoder=SlowEncoder(delay_per_text=0.05))
print("finished", flush=True)
"""


def start(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_a_writer_killed_mid_way_loses_no_committed_label(project):
    directory, baseline = project.directory, project.db.execute("SELECT max(event) FROM label_events").fetchone()[0]
    project.close()
    child = start(WRITER, directory)
    committed = []
    try:
        while len(committed) < 150:
            line = child.stdout.readline()
            assert line, f"the writer died early: {child.stderr.read()}"
            committed.append(line.split())
    finally:
        child.send_signal(signal.SIGKILL)  # while it keeps writing
        child.wait(30)
    assert child.returncode == -signal.SIGKILL

    with Project.open(directory) as reopened:  # runs PRAGMA quick_check
        events = {row[0]: tuple(row) for row in reopened.db.execute("SELECT event, item, class, superseded FROM label_events")}
        for fields in committed:
            assert int(fields[1]) in events, f"committed event {fields[1]} is missing"
            if fields[0] == "one":
                assert events[int(fields[1])][1:3] == (int(fields[2]), int(fields[3]))
        latest = {}
        for event, item, cls, _ in sorted(events.values()):
            latest[item] = (event, cls)
        current = dict(zip(*[array.tolist() for array in reopened.current_labels()[:2]]))
        assert current == {item: cls for item, (_, cls) in latest.items()}  # current = latest, one per item
        assert max(events) > baseline


def test_a_query_killed_mid_way_records_nothing_and_keeps_every_label(project):
    directory = project.directory
    counts = project.label_counts()
    project.close()
    child = start(QUERY, directory, time.time_ns())
    try:
        assert child.stdout.readline().strip() == "started", child.stderr.read()
        time.sleep(1.0)  # inside the (slow) embedding
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    with Project.open(directory) as reopened:
        assert reopened.rounds() == [] and reopened.label_counts() == counts
