"""Labeling as a team over HTTP: no silent overwrite, no item held by a client that
cannot label, a next batch that asks first, and requests that are refused cleanly."""

import re
import time

import pytest
from fastapi.testclient import TestClient

from anchoral.errors import ValidationError
from anchoral.serve import create_app
from anchoral.store import Project
from anchoral.store.rounds import run_round
from tests.serve.conftest import TOKEN, shown_item
from tests.store.fakes import HashingEncoder


def seen_event(html: str) -> int:
    return int(re.search(r'name="seen" value="(\d+)"', html).group(1))


@pytest.fixture
def batch(project_dir):
    with Project.open(project_dir) as project:
        return run_round(project, encoder=HashingEncoder()).selected_ids


def logged_in(app) -> TestClient:
    client = TestClient(app)
    client.get(f"/?token={TOKEN}")
    return client


def test_a_stale_label_shows_who_labeled_the_item_and_keeps_theirs_unless_asked(project_dir, batch):
    app = create_app(project_dir, token=TOKEN, encoder=HashingEncoder(), lease_seconds=0.5)
    with logged_in(app) as alice, logged_in(app) as bob:
        bob.post("/annotator", data={"name": "bob"})
        page = alice.get("/label").text
        item_id, position = shown_item(page)
        time.sleep(0.6)  # alice's lease expires (her page stopped renewing it)
        assert shown_item(bob.get("/label").text) == (item_id, position)
        bob.post("/label", data={"item": position, "label": 1, "seen": seen_event(page)})
        refused = alice.post("/label", data={"item": position, "label": 0, "seen": seen_event(page)})
        assert refused.status_code == 409
        assert re.search(r'id="their-annotator"><bdi>bob</bdi><.*id="their-label">negative<', refused.text, re.DOTALL)
        assert 'id="keep-mine"' in refused.text and 'id="keep-theirs"' in refused.text
        with Project.open(project_dir) as project:
            assert [(e.label, e.annotator) for e in project.history(item_id)] == [("negative", "bob")]
        kept_mine = alice.post("/label", data={"item": position, "label": 0, "seen": seen_event(refused.text)})
        assert kept_mine.status_code == 200
    with Project.open(project_dir) as project:
        assert [e.label for e in project.history(item_id)] == ["negative", "positive"]


def test_requests_without_a_session_cookie_do_not_reserve_items(app, project_dir, batch):
    with TestClient(app) as anonymous:
        for _ in range(5):  # link previews, scripts, curl: the token but no cookies
            anonymous.cookies.clear()
            page = anonymous.get("/label", headers={"Authorization": f"Bearer {TOKEN}"})
            assert page.status_code == 200 and shown_item(page.text) is not None
    with logged_in(app) as labeler:
        page = labeler.get("/label").text
        assert "being labeled in other sessions" not in page and shown_item(page) is not None
        dashboard = labeler.get("/dashboard").text
        assert dashboard.count('class="release"') == 1  # only the labeler's own reservation


def test_the_open_page_renews_its_reservation_and_a_closed_tab_or_the_dashboard_releases_it(project_dir, batch):
    app = create_app(project_dir, token=TOKEN, encoder=HashingEncoder(), lease_seconds=60)
    with logged_in(app) as alice, logged_in(app) as bob:
        item = shown_item(alice.get("/label").text)
        assert alice.post("/api/lease", data={"item": item[1]}).json() == {"held": True}
        assert bob.post("/api/lease", data={"item": item[1]}).json() == {"held": False}
        assert alice.post("/release", data={"item": item[1]}).json() == {"released": True}  # the tab's pagehide beacon
        with logged_in(app) as carol:
            assert shown_item(carol.get("/label").text) == item
        dashboard = alice.get("/dashboard").text
        assert f"<code>{item[0]}</code>" in dashboard  # carol's reservation, with a release button
        session = re.search(rf'<code>{item[0]}</code>.*?name="session" value="([0-9a-f]+)"', dashboard, re.DOTALL).group(1)
        released = alice.post("/release", data={"item": item[1], "session": session})
        assert "Reservation released" in released.text and f"<code>{item[0]}</code>" not in released.text


def test_next_batch_asks_first_while_the_batch_has_unlabeled_items(client, app, project_dir, batch):
    asked = client.post("/next-batch", follow_redirects=False)
    assert asked.status_code == 200 and 'id="confirm-next"' in asked.text
    assert re.search(r'id="batch-remaining">5<', asked.text) and "36 unlabeled items in all" in asked.text
    with Project.open(project_dir) as project:
        assert len(project.rounds()) == 1  # nothing started
    started = client.post("/next-batch", data={"confirm": "yes"}, follow_redirects=False)
    assert started.headers["location"] == "/working"
    assert app.state.anchoral.job.wait(60).state == "done"
    with Project.open(project_dir) as project:
        assert len(project.rounds()) == 2


def test_a_web_next_batch_while_anchoral_query_runs_fails_and_says_why(client, app, project_dir):
    with Project.open(project_dir) as cli_process, cli_process.round_lock("anchoral query"):
        client.post("/next-batch")
        status = app.state.anchoral.job.wait(60)
    assert status.state == "failed" and status.error.startswith("a round is already being computed by anchoral query")
    assert "already being computed by anchoral query" in client.get("/working").text
    with Project.open(project_dir) as project:
        assert project.rounds() == []
    client.post("/next-batch")
    assert app.state.anchoral.job.wait(60).state == "done"  # once the query is over, the next batch runs


def test_an_item_id_too_large_for_sqlite_gets_400(client, batch):
    huge = "99999999999999999999999"
    for path, form in (("/label", {"item": huge, "label": 0}), ("/skip", {"item": huge}), ("/api/lease", {"item": huge}),
                       ("/release", {"item": huge})):
        response = client.post(path, data=form)
        assert response.status_code == 400, path
        assert "no item at position" in response.text


def test_a_lease_that_is_not_positive_is_refused_when_the_app_is_made(project_dir):
    for lease in (0, -300):
        with pytest.raises(ValidationError, match="lease_seconds must be positive"):
            create_app(project_dir, token=TOKEN, lease_seconds=lease)


def test_an_invited_labeler_is_recorded_by_their_link_and_a_revoked_link_stops_at_once(app, project_dir, batch):
    with Project.open(project_dir) as project:
        token = project.invite("李雷")
        assert project.invite("李雷") == token and project.labelers() == {"李雷": token}
    with TestClient(app) as li:
        li.get(f"/?token={token}")
        li.post("/annotator", data={"name": "someone else"})  # a self-typed name does not change who labels
        dashboard = li.get("/dashboard").text
        assert 'id="invited"' in dashboard and "<bdi>李雷</bdi>" in dashboard and 'id="name"' not in dashboard
        item = shown_item(li.get("/label").text)
        li.post("/label", data={"item": item[1], "label": 0})
        with Project.open(project_dir) as project:
            assert project.history(item[0])[-1].annotator == "李雷"
            assert project.revoke("李雷") and not project.revoke("李雷")
        assert li.get("/label").status_code == 401
        assert li.get("/api/status", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    with logged_in(app) as everyone:  # the project's own token keeps working
        assert everyone.get("/dashboard").status_code == 200


def test_next_batch_can_be_kept_to_the_owner(project_dir, batch):
    app = create_app(project_dir, token=TOKEN, encoder=HashingEncoder(), owner_only_next_batch=True)
    with Project.open(project_dir) as project:
        token = project.invite("ana")
    with TestClient(app) as ana:
        ana.get(f"/?token={token}")
        assert 'id="next-batch"' not in ana.get("/label").text
        refused = ana.post("/next-batch", data={"confirm": "yes"})
        assert refused.status_code == 403 and "Only the project's owner" in refused.text
    with logged_in(app) as owner:
        assert 'id="next-batch"' in owner.get("/label").text
        assert owner.post("/next-batch", data={"confirm": "yes"}, follow_redirects=False).headers["location"] == "/working"
        assert app.state.anchoral.job.wait(60).state == "done"
    with Project.open(project_dir) as project:
        assert len(project.rounds()) == 2
