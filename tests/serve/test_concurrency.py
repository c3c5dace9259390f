"""Two browser sessions on a live server never get the same item and never double-count a label."""

import threading

import httpx

from anchoral.store import Project
from anchoral.store.rounds import run_round
from tests.serve.conftest import LABELS, TOKEN, live_server, shown_item
from tests.store.fakes import HashingEncoder


def test_two_sessions_label_one_batch_without_sharing_or_double_counting(app, project_dir, truth):
    with Project.open(project_dir) as project:
        run_round(project, n=24, encoder=HashingEncoder())
    received = {"alice": [], "bob": []}
    failures = []

    def annotate(name):
        try:
            with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as browser:
                browser.get(f"/?token={TOKEN}")
                while (item := shown_item(browser.get("/label").text)) is not None:
                    received[name].append(item[0])
                    form = {"item": item[1], "label": LABELS.index(truth[item[0]])}
                    browser.post("/label", data=form)
                    if len(received[name]) % 3 == 0:
                        browser.post("/label", data=form)  # a double submission
        except Exception as exc:  # surfaced by the assertion below
            failures.append(exc)

    with live_server(app) as base:
        threads = [threading.Thread(target=annotate, args=(name,)) for name in received]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert not failures
    alice, bob = set(received["alice"]), set(received["bob"])
    assert not alice & bob, f"both sessions were given {sorted(alice & bob)}"
    assert len(alice) + len(bob) == 24 and alice and bob
    with Project.open(project_dir) as project:
        per_item = project.db.execute("SELECT item, count(*) FROM label_events WHERE source = 'web' GROUP BY item").fetchall()
        assert len(per_item) == 24 and {count for _, count in per_item} == {1}
        assert project.batch_progress().labeled == 24
        assert sum(project.label_counts().values()) == 28
