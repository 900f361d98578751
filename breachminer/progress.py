"""A progress hook the CLI sets and the flow calls, so long runs show progress without the flow
knowing how it is displayed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ProgressCallback = Callable[[str, int, int], None]  # (event, done, total)
_callback: ContextVar[ProgressCallback | None] = ContextVar("breachminer_progress", default=None)


@contextmanager
def progress_reporter(callback: ProgressCallback) -> Iterator[None]:
    token = _callback.set(callback)
    try:
        yield
    finally:
        _callback.reset(token)


def report_progress(event: str, done: int, total: int) -> None:
    callback = _callback.get()
    if callback is not None:
        callback(event, done, total)
