"""The per-document deadline: a late child is stopped, a crashed one is reported, results come back whole."""

from __future__ import annotations

import os
import signal
import time

import pytest

from flows.deadline import ChildDied, DeadlineExceeded, call_with_deadline


def test_the_result_comes_back_from_the_child() -> None:
    assert call_with_deadline(lambda n: [str(i) * 10 for i in range(n)], (200_000,), 60)[-1] == "199999" * 10
    assert call_with_deadline(os.getpid, (), 60) != os.getpid()  # it ran elsewhere
    assert call_with_deadline(os.getpid, (), 0) == os.getpid()  # no deadline: in-process


def test_a_late_child_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"did not finish in 0\.5 s"):
        call_with_deadline(time.sleep, (600,), 0.5)
    assert time.monotonic() - started < 60  # it did not wait for the sleep


def test_a_crashed_or_failing_child_is_reported() -> None:
    with pytest.raises(ChildDied, match="killed by signal SIGSEGV"):
        call_with_deadline(lambda: os.kill(os.getpid(), signal.SIGSEGV), (), 60)  # as a native parser crash
    with pytest.raises(ChildDied, match="exit code 3"):
        call_with_deadline(os._exit, (3,), 60)
    with pytest.raises(ChildDied, match="ZeroDivisionError"):
        call_with_deadline(lambda: 1 / 0, (), 60)
