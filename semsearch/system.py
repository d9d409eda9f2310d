"""Facts about processes and files of this machine that every layer may need: is a process still running."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not; one of another user does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
