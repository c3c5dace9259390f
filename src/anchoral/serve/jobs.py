"""The "next batch" job: retrain and query in a background thread, one at a time,
with its progress readable by any request while it works."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass

from anchoral.errors import AnchoralError

IDLE, RUNNING, DONE, FAILED = "idle", "running", "done", "failed"


@dataclass
class JobStatus:
    state: str = IDLE
    stage: str = ""
    done: int = 0
    total: int = 0
    round: int | None = None
    error: str | None = None
    started: float | None = None
    seconds: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class BackgroundJob:
    """Runs ``work(report)`` in a thread; ``work`` calls ``report(stage, done, total)``
    and returns the number of the round it recorded. A second ``start`` while one
    runs is refused (returns False), so two next-batch clicks make one round."""

    def __init__(self, work: Callable[[Callable[[str, int, int], None]], int]):
        self._work = work
        self._lock = threading.Lock()
        self._status = JobStatus()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        with self._lock:
            if self._status.state == RUNNING:
                return False
            self._status = JobStatus(state=RUNNING, stage="starting", started=time.time())
            self._thread = threading.Thread(target=self._run, name="anchoral-next-batch", daemon=True)
            self._thread.start()
            return True

    def status(self) -> JobStatus:
        with self._lock:
            return JobStatus(**asdict(self._status))

    def wait(self, timeout: float | None = None) -> JobStatus:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()

    def _report(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            self._status.stage, self._status.done, self._status.total = stage, done, total

    def _run(self) -> None:
        try:
            number = self._work(self._report)
        except AnchoralError as exc:
            self._finish(FAILED, error=str(exc))
        except Exception as exc:  # shown on the page; the server keeps serving
            traceback.print_exc()
            self._finish(FAILED, error=f"{type(exc).__name__}: {exc}")
        else:
            self._finish(DONE, round_number=number)

    def _finish(self, state: str, *, error: str | None = None, round_number: int | None = None) -> None:
        with self._lock:
            self._status.state = state
            self._status.error = error
            self._status.round = round_number
            self._status.seconds = time.time() - (self._status.started or time.time())
