"""One writer at a time per warehouse: an advisory lock file beside the DuckDB file.

DuckDB itself lets one process hold the file read-write, but ingest opens short connections (so
that readers can query between reports), which would let two ingests interleave. ``writer_lock``
spans a whole run: a second ingest or retag on the same warehouse waits up to ``wait`` seconds and
then raises ``WriterBusy`` naming the process that holds it. The lock is released by the kernel
when its holder dies, so a crashed run never leaves the warehouse locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


class WriterBusy(RuntimeError):
    """Another run is writing the warehouse."""


def lock_path(db_path: Path | str) -> Path:
    return Path(f"{db_path}.lock")


@contextmanager
def writer_lock(db_path: Path | str, wait: float = 0.0, what: str = "ingest") -> Iterator[None]:
    """Hold the warehouse's writer lock for the duration of the block."""
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(0.0, wait)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WriterBusy(_busy_message(path, db_path, wait)) from None
                time.sleep(0.25)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "what": what,
                                  "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def writer_busy(db_path: Path | str) -> str | None:
    """Why a run could not start writing now (another holds the lock), or None: a check before a command
    starts a flow run, so a refusal is one line and not a failed flow run. Taking the lock stays the
    real test (the holder may change in between)."""
    path = lock_path(db_path)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        return _busy_message(path, db_path, 0.0)
    finally:
        os.close(fd)


def _busy_message(path: Path, db_path: Path | str, wait: float) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    who = f"{holder.get('what', 'a run')} (process {holder.get('pid', '?')}, since {holder.get('since', '?')})"
    waited = f" after waiting {wait:g} s" if wait else ""
    return (f"another {who} is writing {db_path}; this run changed nothing{waited}. "
            "Retry when it has finished, or pass --wait SECONDS to queue behind it.")
