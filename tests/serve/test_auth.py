"""Every request needs the token; the token moves into an HttpOnly cookie after the first visit."""

import re

import pytest
from fastapi.testclient import TestClient

from anchoral.store import Project
from tests.serve.conftest import TOKEN

ROUTES = [
    ("GET", "/"), ("GET", "/label"), ("GET", "/dashboard"), ("GET", "/working"), ("GET", "/api/job"),
    ("GET", "/api/status"), ("GET", "/no-such-page"), ("POST", "/label"), ("POST", "/skip"), ("POST", "/undo"),
    ("POST", "/next-batch"), ("POST", "/annotator"), ("POST", "/api/lease"), ("POST", "/release"),
]


@pytest.mark.parametrize("method, path", ROUTES)
def test_every_route_answers_401_without_the_token(app, method, path):
    with TestClient(app) as anonymous:
        response = anonymous.request(method, path, data={"item": 0, "label": 0}, follow_redirects=False)
        assert response.status_code == 401
        wrong = anonymous.request(method, path + "?token=nope", headers={"Authorization": "Bearer nope"},
                                  data={"item": 0, "label": 0}, follow_redirects=False)
        assert wrong.status_code == 401


def test_an_unauthorized_post_changes_nothing(app, project_dir):
    with TestClient(app) as anonymous:
        anonymous.post("/next-batch")
        anonymous.post("/label", data={"item": 10, "label": 0})
    with Project.open(project_dir) as project:
        assert project.rounds() == [] and project.history("doc-11") == []


def test_the_token_in_the_address_becomes_a_cookie_and_leaves_the_address(app):
    with TestClient(app) as browser:
        first = browser.get(f"/dashboard?token={TOKEN}", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/dashboard"
        cookie = first.headers.get_list("set-cookie")
        assert any(re.match(rf"anchoral_token_[0-9a-f]+={TOKEN};", c) and "HttpOnly" in c and "SameSite=strict" in c for c in cookie)
        assert browser.get("/dashboard").status_code == 200
        assert browser.get("/api/status").json()["pool_size"] == 40


def test_a_bearer_token_works_for_scripts(app):
    with TestClient(app) as script:
        assert script.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_401_page_says_what_to_do(app):
    with TestClient(app) as anonymous:
        page = anonymous.get("/label")
        assert "anchoral serve" in page.text and "token" in page.text
        assert anonymous.get("/api/job").json() == {"detail": "missing or wrong token"}
