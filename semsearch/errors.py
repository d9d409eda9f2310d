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
