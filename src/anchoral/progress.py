"""Progress bars (rich) that stay quiet when disabled or when output is not a terminal log."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class _SilentProgress:
    def add_task(self, *args, **kwargs):
        return 0

    def advance(self, *args, **kwargs):
        pass

    def update(self, *args, **kwargs):
        pass


@contextmanager
def progress_bar(enabled: bool = True, *, transient: bool = False):
    """A rich progress display with count, elapsed time and ETA; a no-op when disabled."""
    if not enabled:
        yield _SilentProgress()
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        transient=transient,
    )
    with progress:
        yield progress
