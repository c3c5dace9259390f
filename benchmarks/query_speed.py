"""How long a labeler waits for the next batch on a 19.5k-item project (issue "Labeling as a team", item 6).

Builds a labeling project from every VADER sentence (19,459 items, the four domains, binary
sentiment) with ``--labels`` of them labeled (a seeded random sample, labels from VADER's
ground truth), the project's defaults otherwise (ALVIN, the MLP head, batch 50). The
embeddings come from the MiniLM cache (``~/.cache/anchoral``); a first run that has to
embed says so and how long it took, and that time is not part of either number below.

Two numbers, each the median of ``--repeats`` rounds:
- **web**: a real ``anchoral serve`` process; the owner's ``POST /next-batch`` (confirmed)
  until ``/api/job`` reports the round done, polled every 20 ms. The first click of a
  server is timed on its own twice: at once after it answers its first request (the
  server imports the round's modules in the background from its start, which this click
  may not wait for), and 10 s after start (a team labels a batch before it asks for the
  next one). The median is over the clicks after the first.
- **cli**: ``anchoral query PROJECT`` as a new process, start to exit.

Printed next to each: the round's own ``total_seconds`` and its fit / select split as the
project records them, and the reference of the same process: ``python -c "import numpy"``
(the interpreter's start-up floor on this machine under its current load). Targets: web
under 2 s, CLI under 4 s.

    .venv/bin/python benchmarks/query_speed.py [--labels 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
TOKEN = "benchmark-owner-token"


def build_project(directory: Path, n_labels: int) -> Path:
    from anchoral.data.vader import load_vader
    from anchoral.store.create import DataSpec, init_project
    from anchoral.store.rounds import embed

    frame = load_vader()
    rng = np.random.default_rng(0)
    given = np.full(len(frame), "", dtype=object)
    chosen = rng.choice(len(frame), n_labels, replace=False)
    given[chosen] = frame["label_name"].to_numpy()[chosen]
    frame = frame.assign(given=given)
    csv = directory / "vader.csv"
    frame[["id", "text", "given"]].to_csv(csv, index=False)
    labels = sorted(frame["label_name"].unique())
    with init_project(directory / "project", DataSpec(csv, "text", "id", "given"), labels) as project:
        started = time.perf_counter()
        embed(project.texts(), None)  # fills the cache if it lacks any sentence
        seconds = time.perf_counter() - started
        if seconds > 5:
            print(f"(embedded the pool first: {seconds:.0f} s, not counted)")
        print(f"project: {project.pool_size:,} items, {len(project.current_labels()[0])} labeled, "
              f"strategy {project.settings['strategy']}, model {project.settings.get('model', 'mlp')}")
    return directory / "project"


def latest_timings(project_dir: Path) -> dict:
    from anchoral.store import Project

    with Project.open(project_dir) as project:
        return project.latest_round().metrics.get("timings", {})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url: str, data: bytes | None = None) -> bytes:
    call = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(call, timeout=120) as response:
        return response.read()


def web_round(base: str) -> float:
    started = time.perf_counter()
    request(f"{base}/next-batch", b"confirm=yes")
    while True:
        job = json.loads(request(f"{base}/api/job"))
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if job["state"] == "failed":
        raise SystemExit(f"the web round failed: {job['error']}")
    return seconds


def measure_web(project_dir: Path, repeats: int, delay: float = 0.0) -> tuple[float, list[float], list[dict]]:
    port = free_port()
    server = subprocess.Popen([str(BIN / "anchoral"), "serve", str(project_dir), "--port", str(port), "--token", TOKEN],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                request(f"{base}/api/status")
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"the server did not start: {server.stderr.read().decode()[-500:]}")
                time.sleep(0.1)
        time.sleep(delay)
        first = web_round(base)
        times, timings = [], []
        for _ in range(repeats):
            times.append(web_round(base))
            timings.append(latest_timings(project_dir))
        return first, times, timings
    finally:
        server.terminate()
        server.wait(30)


def measure_cli(project_dir: Path, repeats: int) -> tuple[list[float], list[dict]]:
    times, timings = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([str(BIN / "anchoral"), "query", str(project_dir)], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
        timings.append(latest_timings(project_dir))
    return times, timings


def interpreter_floor(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import numpy"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def split(timings: list[dict]) -> str:
    def median(key):
        return statistics.median(t.get(key, float("nan")) for t in timings)
    return (f"round {median('total_seconds'):.2f} s (fit {median('fit_seconds'):.2f}, "
            f"select {median('select_seconds'):.2f}, embeddings {median('embed_seconds'):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=500, help="labeled items in the project (default 500)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as scratch:
        project_dir = build_project(Path(scratch), args.labels)
        floor = interpreter_floor(args.repeats)
        first, _, _ = measure_web(project_dir, 0)
        settled, web, web_timings = measure_web(project_dir, args.repeats, delay=10.0)
        cli, cli_timings = measure_cli(project_dir, args.repeats)
    print(f"{'path':<22}{'wall s':>8}{'target':>8}   what the round itself took")
    print(f"{'web, first click':<22}{first:>8.2f}{'':>8}   (at once after start: imports not done)")
    print(f"{'web, first click, 10 s':<22}{settled:>8.2f}{'':>8}   (10 s after start)")
    print(f"{'web, next batch':<22}{statistics.median(web):>8.2f}{'< 2':>8}   {split(web_timings)}")
    print(f"{'cli, anchoral query':<22}{statistics.median(cli):>8.2f}{'< 4':>8}   {split(cli_timings)}")
    print(f"{'python -c import numpy':<22}{floor:>8.2f}{'':>8}   (start-up floor, same machine and load)")
    print(f"ratios: web / target {statistics.median(web) / 2:.2f}, cli / target {statistics.median(cli) / 4:.2f}")


if __name__ == "__main__":
    main()
