"""`anchoral serve` as a real process: it binds 127.0.0.1, prints its token, and a
kill -9 while labeling loses no label the browser was told was saved."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from anchoral.store import Project
from anchoral.store.rounds import run_round
from tests.serve.conftest import free_port, shown_item
from tests.store.fakes import HashingEncoder

REPO = Path(__file__).resolve().parents[2]
SERVE = "import typer; from anchoral.store.commands import register; app = typer.Typer(); register(app); app()"


def start_server(project_dir, port, *extra):
    return subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", str(project_dir), "--port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)},
    )


def wait_until_up(base, token):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/api/status", headers={"Authorization": f"Bearer {token}"}).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the server did not come up")


def test_serve_prints_a_token_url_on_localhost_and_enforces_it(project_dir):
    port = free_port()
    server = start_server(project_dir, port)
    try:
        line = server.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
        assert found and int(found.group(1)) == port, line
        token = found.group(2)
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, token)
        assert httpx.get(f"{base}/label").status_code == 401
        assert httpx.get(f"{base}/label?token={token}", follow_redirects=True).status_code == 200
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(30)


def test_killing_the_server_mid_labeling_loses_no_acknowledged_label(project_dir, truth):
    with Project.open(project_dir) as project:
        run_round(project, n=30, encoder=HashingEncoder())
    port, token = free_port(), "kill-test-token"
    server = start_server(project_dir, port, "--token", token)
    base = f"http://127.0.0.1:{port}"
    acknowledged = []
    stop = threading.Event()

    def annotate():
        with httpx.Client(base_url=base, timeout=10) as browser:
            browser.get(f"/?token={token}")
            try:
                while not stop.is_set():
                    item = shown_item(browser.get("/label").text)
                    if item is None:
                        return
                    reply = browser.post("/label", data={"item": item[1], "label": ["positive", "negative"].index(truth[item[0]])})
                    if reply.status_code == 303:
                        acknowledged.append(item[0])
            except httpx.TransportError:
                return  # the server is gone

    try:
        wait_until_up(base, token)
        worker = threading.Thread(target=annotate)
        worker.start()
        while len(acknowledged) < 8 and worker.is_alive():
            time.sleep(0.01)
        server.send_signal(signal.SIGKILL)  # while the worker keeps posting
    finally:
        stop.set()
        server.kill()
        server.wait(30)
    worker.join(30)
    assert len(acknowledged) >= 8
    with Project.open(project_dir) as project:  # integrity-checked
        for item_id in acknowledged:
            assert project.history(item_id)[-1].label == truth[item_id]
        assert project.batch_progress().labeled >= len(acknowledged)
