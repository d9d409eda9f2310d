"""Waiting for something another thread or process does: one poll loop for every test."""

from __future__ import annotations

import time
from collections.abc import Callable

WAIT = 60.0  # seconds: the bound on every poll (the machine is shared and slow); never a timing assertion


def eventually(check: Callable, what: str, timeout: float = WAIT, give_up: Callable[[], bool] | None = None):
    """Poll ``check`` until it returns something truthy and return that; None when ``give_up()`` says waiting
    is pointless (the process it waits on ended); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if give_up is not None and give_up():
            return None
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.02)
