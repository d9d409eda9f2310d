"""Error types: each user-facing failure is one exception with one plain sentence."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    NO_MATCH = 1  # as grep: the query ran and found nothing
    ERROR = 2
    INTERRUPTED = 130
    CLOSED_PIPE = 141  # the reader of our output went away (| head): as a process that SIGPIPE ended


def quiet_stdout() -> None:
    """After a closed pipe: send what is left in stdout's buffer to /dev/null, so that Python's flush at exit
    does not fail a second time with a traceback."""
    import os
    import sys

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


class SemsearchError(Exception):
    """A failure the user can act on. Its message is shown as it is, without a traceback."""

    exit_code = ExitCode.ERROR


class UsageError(SemsearchError):
    pass


class OutOfRange(UsageError, ValueError):
    """A number outside the range the option allows (also a ValueError: the watcher's wire refuses it too)."""


def check_range(what: str, value, low, high):
    """``value`` when ``low <= value <= high`` (a finite number; whole when the bounds are ints), else OutOfRange."""
    import math

    whole = isinstance(low, int) and isinstance(high, int)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and whole:
        ok = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if ok and isinstance(value, float):
        ok = math.isfinite(value)
    if not ok or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        shown = f"{value!r:.30}"
        raise OutOfRange(f"{what} must be {kind} from {low:g} to {high:g}, not {shown}.")
    return int(value) if whole else value


class PathNotFound(SemsearchError):
    pass


class NoIndex(SemsearchError):
    pass


class ModelMismatch(SemsearchError):
    pass


class IndexCorrupt(SemsearchError):
    pass


class IndexBusy(SemsearchError):
    pass


class IndexWriteFailed(SemsearchError):
    """The disk refused a write (full, read-only, permission denied); the index stays as it was."""


class IndexUnreadable(SemsearchError):
    """The index's files could not be read (permissions, I/O error)."""


class ModelUnavailable(SemsearchError):
    pass


class ExportFailed(SemsearchError):
    """The model could not be exported to ONNX; the caller can go on with the torch encoder."""


class OnnxUnavailable(ModelUnavailable):
    """An exported ONNX encoder folder is missing, incomplete or unreadable."""


class WatcherRunning(SemsearchError):
    """Another watcher already follows this index."""


class WatchFailed(SemsearchError):
    """The watcher could not start, or did not stop."""


class ExtractError(Exception):
    """A file that cannot be turned into text. The run skips it and reports ``reason``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
