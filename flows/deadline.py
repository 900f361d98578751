"""A deadline for one document's analysis: run it in a forked child process, stop the child when it is late.

One document must not stall an unattended run: a parser that loops on a malformed file, or a regular
expression that backtracks on a pathological input (``bench/pathological_inputs.py``), would otherwise hold
the run, and with it the warehouse's writer lock, until someone kills it. A segmentation fault in a
native parser would take the whole run down with it. In a child the first is stopped at the deadline and
the second ends only the child; both come back as exceptions the flow records as the document's failure.

The child is forked from the process that already holds the analyzer (spaCy, the lexicon, the model),
so it starts in milliseconds and loads nothing. Where ``fork`` does not exist, or with no deadline, the
function runs in-process.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

Result = TypeVar("Result")


class DeadlineExceeded(Exception):
    """The child did not finish in time and was stopped."""


class ChildDied(Exception):
    """The child ended without a result (a crash in native code, or killed by the system)."""


def call_with_deadline(function: Callable[..., Result], args: tuple[Any, ...], seconds: float) -> Result:
    """``function(*args)`` in a forked child, its return value sent back; raises ``DeadlineExceeded`` after
    ``seconds`` (the child is killed) or ``ChildDied``. ``seconds`` <= 0: in-process, no deadline.

    ``function`` should return its own failures as values: an exception raised in the child comes back
    as ``ChildDied`` with its type and message."""
    if seconds <= 0 or "fork" not in multiprocessing.get_all_start_methods():
        return function(*args)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_run_child, args=(sender, function, args), name="breachminer-analysis")
    child.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise DeadlineExceeded(f"did not finish in {seconds:g} s and was stopped")
        try:
            kind, value = receiver.recv()
        except EOFError:
            child.join(10)
            raise ChildDied(f"the analysis process ended without a result ({_exit_cause(child.exitcode)})") from None
        if kind == "error":
            raise ChildDied(f"the analysis process failed: {value}")
        return value
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()


def _run_child(sender: Connection, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        message = ("ok", function(*args))
    except BaseException as exc:  # reported to the parent, which records it; the child ends here anyway
        message = ("error", f"{type(exc).__name__}: {exc}")
    sender.send(message)
    sender.close()


def _exit_cause(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        import signal

        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
