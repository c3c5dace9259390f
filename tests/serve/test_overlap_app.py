"""Overlap in the web app over HTTP: an overlap item goes to two invited labelers at once,
neither sees the other's label, a labeler whose part is done is told so, the owner
resolves a disagreement on the review page (invited labelers only if the project
allows it), and the dashboard and /api/status show the agreement."""

import re

import pytest
from fastapi.testclient import TestClient

from anchoral.serve import create_app
from anchoral.store import Project
from tests.serve.conftest import TOKEN, shown_item
from tests.store.fakes import HashingEncoder


def seen_event(html: str) -> int:
    return int(re.search(r'name="seen" value="(\d+)"', html).group(1))


@pytest.fixture
def tokens(project_dir):
    """alice and bob are invited; a batch of 2 items (doc-10, doc-11), both overlap items with k = 2."""
    with Project.open(project_dir) as project:
        invited = {name: project.invite(name) for name in ("alice", "bob")}
        project.set_overlap(1.0, 2)
        project.record_round(strategy="manual", requested_strategy="manual", params={}, seed=0, batch_size=2,
                             n_labeled=4, last_event=0, metrics={}, started_at="now", selected=[9, 10])
    return invited


@pytest.fixture
def app(project_dir, tokens):
    return create_app(project_dir, token=TOKEN, encoder=HashingEncoder())


def client_with(app, token) -> TestClient:
    client = TestClient(app)
    client.get(f"/?token={token}")
    return client


def label_shown(client, cls) -> tuple[str, int]:
    page = client.get("/label").text
    item = shown_item(page)
    assert client.post("/label", data={"item": item[1], "label": cls, "seen": seen_event(page)}).status_code == 200
    return item


def test_both_labelers_get_the_same_item_at_once_and_neither_sees_the_others_label(app, tokens, project_dir):
    with client_with(app, tokens["alice"]) as alice, client_with(app, tokens["bob"]) as bob:
        alice_page, bob_page = alice.get("/label").text, bob.get("/label").text
        assert shown_item(alice_page) == shown_item(bob_page) == ("doc-10", 9)
        assert 'id="overlap-note"' in alice_page and "labeled by 2 people independently" in alice_page
        alice.post("/label", data={"item": 9, "label": 0, "seen": seen_event(alice_page)})
        bob_again = bob.get("/label").text
        assert shown_item(bob_again) == ("doc-10", 9) and "History:" not in bob_again  # alice's label stays hidden
        refused = bob.post("/label", data={"item": 9, "label": 1, "seen": seen_event(bob_page)})
        assert refused.status_code == 200 and 'id="conflict"' not in refused.text  # another labeler: no conflict
    with Project.open(project_dir) as project:
        assert [(e.annotator, e.label, e.superseded) for e in project.history("doc-10")] == [
            ("alice", "positive", False), ("bob", "negative", False),
        ]


def test_a_labeler_whose_part_is_done_is_told_the_rest_waits_for_others(app, tokens):
    with client_with(app, tokens["alice"]) as alice:
        label_shown(alice, 0)
        label_shown(alice, 0)
        done = alice.get("/label").text
        assert 'id="part-done"' in done and "2 item(s) go to several labelers" in done and "data-wait" in done
        assert 'id="batch-complete"' not in done


def test_the_owner_resolves_a_disagreement_and_training_uses_the_resolution(app, tokens, project_dir):
    with client_with(app, tokens["alice"]) as alice, client_with(app, tokens["bob"]) as bob:
        for client, classes in ((alice, (0, 1)), (bob, (1, 1))):
            for cls in classes:
                label_shown(client, cls)
        complete = bob.get("/label").text
        assert 'id="batch-complete"' in complete and "disagree on 1 of them" in complete
        assert 'id="go-review"' not in complete and 'id="nav-review"' not in complete
        assert bob.get("/review").status_code == 403 and bob.post("/review", data={"item": 9, "label": 0}).status_code == 403
    with Project.open(project_dir) as project:
        assert 9 not in project.current_labels()[0].tolist()
    with client_with(app, TOKEN) as owner:
        label_page = owner.get("/label").text
        assert '<span id="review-count">(1)</span>' in label_page and 'id="in-review"' in label_page
        review = owner.get("/review").text
        assert review.count('class="card review-item"') == 1 and 'data-item-id="doc-10"' in review
        assert re.search(r"<bdi>alice</bdi>: <strong class=\"opinion\">positive</strong>", review)
        assert re.search(r"<bdi>bob</bdi>: <strong class=\"opinion\">negative</strong>", review)
        resolved = owner.post("/review", data={"item": 9, "label": 0, "seen": 0})
        assert resolved.status_code == 200 and 'id="nothing-to-review"' in resolved.text and 'id="resolved"' in resolved.text
        stale = owner.post("/review", data={"item": 9, "label": 1, "seen": 0})  # a second reviewer's old page
        assert stale.status_code == 409 and "was resolved meanwhile" in stale.text
        dashboard = owner.get("/dashboard").text
        # (alice, bob) = (positive, negative), (negative, negative): p_o = 1/2, p_e = 1/2 * 0 + 1/2 * 1 = 1/2: kappa 0
        assert re.search(r'id="kappa-statistic">Cohen(&#39;|\')s kappa</strong>\s*<strong id="kappa">0.000<', dashboard)
        assert 'id="percent-agreement">50.0%<' in dashboard
        status = owner.get("/api/status").json()
        assert status["agreement"]["review"]["resolved"] == 1 and status["batch"]["in_review"] == 0
    with Project.open(project_dir) as project:
        positions, classes, _ = project.current_labels()
        assert dict(zip(positions.tolist(), classes.tolist()))[9] == 0
        assert project.history("doc-10")[-1].source == "review"


def test_invited_labelers_review_when_the_project_allows_it(app, tokens, project_dir):
    with Project.open(project_dir) as project:
        project.set_overlap(review_by="labelers")
    with client_with(app, tokens["alice"]) as alice, client_with(app, tokens["bob"]) as bob:
        label_shown(alice, 0), label_shown(alice, 0)
        label_shown(bob, 1), label_shown(bob, 0)
        assert 'id="nav-review"' in bob.get("/dashboard").text
        assert bob.post("/review", data={"item": 9, "label": 1, "seen": 0}).status_code == 200
    with Project.open(project_dir) as project:
        assert project.history("doc-10")[-1].annotator == "bob"


def test_the_dashboard_of_a_project_without_overlap_says_how_to_turn_it_on(project_dir):
    app = create_app(project_dir, token=TOKEN, encoder=HashingEncoder())
    with client_with(app, TOKEN) as owner:
        dashboard = owner.get("/dashboard").text
        assert 'id="no-agreement-yet"' in dashboard and "anchoral overlap PROJECT 0.1 --k 2" in dashboard
        assert 'id="nav-review"' not in dashboard
