"""Fixtures for the web app: a small project, the app over it, and a live Uvicorn server."""

from __future__ import annotations

import re
import socket
import threading
import time
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi.testclient import TestClient

from anchoral.serve import create_app
from anchoral.store.create import DataSpec, init_project
from tests.store.fakes import HashingEncoder, synthetic_pool, write_pool

TOKEN = "test-token-123"
LABELS = ["positive", "negative"]


@pytest.fixture
def project_dir(tmp_path):
    """A 40-item project with 2 labels per class and a 20-item held-out set; batch size 5."""
    write_pool(tmp_path / "pool.csv", 40, labeled=4)
    held = write_pool(tmp_path / "held.csv", 20, seed=7)
    held[["id", "text", "truth"]].rename(columns={"truth": "label"}).to_csv(tmp_path / "held.csv", index=False)
    spec = DataSpec(tmp_path / "pool.csv", "text", "id", "label")
    init_project(tmp_path / "proj", spec, LABELS, heldout=tmp_path / "held.csv", batch_size=5).close()
    return tmp_path / "proj"


@pytest.fixture
def truth(project_dir):
    """Each pool id's true label (what a careful annotator would choose)."""
    frame = synthetic_pool(40)
    return dict(zip(frame["id"], frame["truth"]))


@pytest.fixture
def app(project_dir):
    return create_app(project_dir, token=TOKEN, encoder=HashingEncoder())


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        client.get(f"/?token={TOKEN}")
        yield client


def shown_item(html: str) -> tuple[str, int] | None:
    """(id, position) of the item a label page shows, or None."""
    found = re.search(r'data-item-id="([^"]+)".*?name="item" value="(\d+)"', html, re.DOTALL)
    return None if found is None else (found.group(1), int(found.group(2)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def live_server(app):
    """Serve ``app`` with Uvicorn on 127.0.0.1 in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
