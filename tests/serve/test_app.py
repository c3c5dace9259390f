"""The pages and actions of the web app, through its HTTP interface."""

import re

from fastapi.testclient import TestClient

from anchoral.serve.charts import learning_curve_svg
from anchoral.store import Project
from tests.serve.conftest import LABELS, TOKEN, shown_item


def start_batch(client, app):
    assert client.post("/next-batch", follow_redirects=False).headers["location"] == "/working"
    status = app.state.anchoral.job.wait(120)
    assert status.state == "done", status.error
    return status


def progress(html):
    return re.search(r'id="progress"><strong>(\d+)</strong> of (\d+)', html).groups()


def test_before_the_first_batch_the_page_offers_to_select_one(client):
    page = client.get("/label").text
    assert "No batch yet" in page and 'action="/next-batch"' in page


def test_a_label_is_committed_before_the_next_page_is_served(client, app, project_dir, truth):
    start_batch(client, app)
    page = client.get("/label").text
    assert progress(page) == ("0", "5")
    item_id, position = shown_item(page)
    response = client.post("/label", data={"item": position, "label": LABELS.index(truth[item_id])}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/label"
    with Project.open(project_dir) as other_connection:  # committed by the time the redirect arrives
        event = other_connection.history(item_id)[-1]
        assert (event.label, event.source) == (truth[item_id], "web") and event.annotator.startswith("web-")
    page = client.get("/label").text
    assert progress(page) == ("1", "5") and shown_item(page)[0] != item_id


def test_undo_shows_the_item_again_and_skip_moves_on(client, app, project_dir):
    start_batch(client, app)
    first = shown_item(client.get("/label").text)
    client.post("/label", data={"item": first[1], "label": 0})
    second = shown_item(client.get("/label").text)
    undone = client.post("/undo").text
    assert "Label taken back" in undone and shown_item(undone) == first and "History:" in undone
    client.post("/label", data={"item": first[1], "label": 1})
    assert shown_item(client.get("/label").text) == second
    after_skip = client.post("/skip", data={"item": second[1]}).text
    assert shown_item(after_skip) not in (first, second)
    with Project.open(project_dir) as project:
        assert [e.label for e in project.history(first[0])] == ["positive", None, "negative"]


def test_labeling_the_whole_batch_then_next_batch_retrains_and_selects(client, app, project_dir, truth):
    start_batch(client, app)
    while (item := shown_item(client.get("/label").text)) is not None:
        client.post("/label", data={"item": item[1], "label": LABELS.index(truth[item[0]])})
    done = client.get("/label").text
    assert "Batch complete" in done and progress(done) == ("5", "5")
    start_batch(client, app)
    page = client.get("/label").text
    assert "round <strong>2</strong>" in page and progress(page) == ("0", "5")
    status = client.get("/api/status").json()
    assert status["labeled"] == 9 and status["rounds"] == 2 and status["last_metrics"]["n_labeled"] == 9
    dashboard = client.get("/dashboard").text
    assert 'class="chart"' in dashboard and dashboard.count('class="point"') == 2
    assert re.search(r'data-label="positive">(\d+)<', dashboard).group(1) == str(status["label_counts"]["positive"])


def test_a_second_next_batch_click_while_one_runs_makes_one_round(app, project_dir):
    import threading

    gate = threading.Event()
    state = app.state.anchoral
    original = state._next_batch
    state.job._work = lambda report: (gate.wait(30), original(report))[1]
    with TestClient(app) as client:
        client.get(f"/?token={TOKEN}")
        assert client.post("/next-batch", follow_redirects=False).headers["location"] == "/working"
        busy = client.post("/next-batch")
        assert "already being computed" in busy.text and client.get("/api/job").json()["state"] == "running"
        assert "Retraining and selecting" in client.get("/working").text
        gate.set()
        assert state.job.wait(60).state == "done"
    with Project.open(project_dir) as project:
        assert len(project.rounds()) == 1


def test_a_failing_next_batch_shows_its_error(app, project_dir, client):
    with Project.open(project_dir) as project:
        project.set_labels([(p, p % 2) for p in range(40)], annotator="all", source="test")
    client.post("/next-batch")
    status = app.state.anchoral.job.wait(60)
    assert status.state == "failed" and "every item in the pool is labeled" in status.error
    assert "every item in the pool is labeled" in client.get("/working").text


def test_a_label_for_an_item_another_session_holds_is_refused(app, project_dir):
    with TestClient(app) as alice, TestClient(app) as bob:
        for client in (alice, bob):
            client.get(f"/?token={TOKEN}")
        start_batch(alice, app)
        held_by_alice = shown_item(alice.get("/label").text)
        refused = bob.post("/label", data={"item": held_by_alice[1], "label": 0})
        assert "being labeled in another session" in refused.text and shown_item(refused.text) != held_by_alice
    with Project.open(project_dir) as project:
        assert project.history(held_by_alice[0]) == []


def test_the_annotator_name_is_recorded_with_each_label(client, app, project_dir):
    client.post("/annotator", data={"name": "Zoë <script>"})
    start_batch(client, app)
    page = client.get("/label").text
    assert "Zoë" in page and "<script>" not in page.split("<main>")[0]
    item = shown_item(page)
    client.post("/label", data={"item": item[1], "label": 0})
    with Project.open(project_dir) as project:
        assert project.history(item[0])[-1].annotator == "Zoë script"


def test_the_learning_curve_is_an_svg_with_one_point_per_measured_round():
    svg = learning_curve_svg([(10, 0.7), (20, 0.8), (30, 0.85)])
    assert svg.startswith("<svg") and svg.count("<circle") == 3 and "30 labels: accuracy 0.850" in svg
    assert learning_curve_svg([]) == ""


def test_a_forged_form_gets_a_400_naming_the_problem_and_records_nothing(client, app, project_dir):
    start_batch(client, app)
    item = shown_item(client.get("/label").text)
    bad_label = client.post("/label", data={"item": item[1], "label": 7})
    assert bad_label.status_code == 400 and "outside the label set" in bad_label.text
    bad_item = client.post("/label", data={"item": 10_000, "label": 0})
    assert bad_item.status_code == 400 and "no item at position 10000" in bad_item.text
    with Project.open(project_dir) as project:
        assert project.history(item[0]) == []
