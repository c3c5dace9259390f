"""Getting people in: a token that survives restarts, cookies of their own per project,
names in any script, a link teammates can open, and a busy port said before any link."""

import re
import signal
import socket
import subprocess

import pytest
from fastapi.testclient import TestClient

from anchoral.serve import create_app
from anchoral.serve.network import check_port_free, reachable_hosts
from anchoral.errors import ValidationError
from anchoral.store import Project
from anchoral.store.create import DataSpec, init_project
from anchoral.store.rounds import run_round
from tests.serve.conftest import LABELS, TOKEN, free_port, shown_item
from tests.serve.test_server_process import start_server, wait_until_up
from tests.store.fakes import HashingEncoder, write_pool
from tests.store.test_commands import ANCHORAL


def first_link(server) -> tuple[str, str]:
    lines = []
    while len(lines) < 3 and (line := server.stdout.readline()):  # a note may come first
        lines.append(line)
        if found := re.search(r"Annotate at http://(\S+?):\d+/\?token=(\S+)", line):
            return found.group(1), found.group(2)
    raise AssertionError(f"no link printed: {lines}")


def stop(server):
    server.send_signal(signal.SIGKILL)
    server.wait(30)


def test_the_project_keeps_its_token_across_restarts_until_it_is_replaced(project_dir):
    tokens = []
    for extra in ((), (), ("--new-token",), ()):
        port = free_port()
        server = start_server(project_dir, port, *extra)
        try:
            tokens.append(first_link(server)[1])
            wait_until_up(f"http://127.0.0.1:{port}", tokens[-1])
        finally:
            stop(server)
    assert tokens[0] == tokens[1] != tokens[2] == tokens[3]
    with Project.open(project_dir) as project:
        assert project.access_token() == tokens[3] and "serve_token" not in project.settings


def test_a_wildcard_bind_prints_an_address_teammates_can_open(project_dir):
    port = free_port()
    server = start_server(project_dir, port, "--host", "0.0.0.0")
    try:
        host, token = first_link(server)
        assert host != "127.0.0.1" and host in reachable_hosts("0.0.0.0")
        wait_until_up(f"http://127.0.0.1:{port}", token)
    finally:
        stop(server)
    assert reachable_hosts("0.0.0.0")[-1] == "127.0.0.1" and reachable_hosts("10.1.2.3") == ["10.1.2.3"]


def test_a_port_in_use_is_one_error_line_before_any_link(project_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValidationError, match=f"port {port} on 127.0.0.1 is already in use"):
            check_port_free("127.0.0.1", port)
        server = subprocess.run([ANCHORAL, "serve", str(project_dir), "--port", str(port)],
                                capture_output=True, text=True, timeout=300, check=False)
    assert server.returncode == 2 and "Annotate at" not in server.stdout
    assert server.stderr.splitlines() == [f"error: port {port} on 127.0.0.1 is already in use; choose another with --port"]


def test_two_projects_on_one_host_keep_their_own_cookies(tmp_path, project_dir):
    write_pool(tmp_path / "other.csv", 20, labeled=4)
    other_dir = tmp_path / "other"
    init_project(other_dir, DataSpec(tmp_path / "other.csv", "text", "id", "label"), LABELS).close()
    first = create_app(project_dir, token=TOKEN, encoder=HashingEncoder())
    second = create_app(other_dir, token="another-token-456", encoder=HashingEncoder())
    with TestClient(first) as in_first, TestClient(second) as in_second:  # one browser: one cookie jar per host
        in_first.get(f"/?token={TOKEN}")
        in_second.cookies = in_first.cookies
        in_second.get("/?token=another-token-456")
        in_first.cookies = in_second.cookies
        assert in_first.get("/dashboard").status_code == 200
        assert in_second.get("/dashboard").status_code == 200


@pytest.mark.parametrize("name, saved", [("Иван", "Иван"), ("李雷", "李雷"), ("  alice   smith ", "alice smith"),
                                         ("ناصر <b>", "ناصر b")])
def test_names_in_any_script_and_with_spaces_are_saved_as_given(client, project_dir, name, saved):
    with Project.open(project_dir) as project:
        run_round(project, encoder=HashingEncoder())
    response = client.post("/annotator", data={"name": name})
    assert response.status_code == 200 and f"labeling as <strong><bdi>{saved}</bdi></strong>" in response.text
    item = shown_item(client.get("/label").text)
    client.post("/label", data={"item": item[1], "label": 0})
    with Project.open(project_dir) as project:
        assert project.history(item[0])[-1].annotator == saved
