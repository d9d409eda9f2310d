"""What long work reports its progress to (files, bytes, chunks, notes); the command line draws it (output.progress)."""

from __future__ import annotations


class Progress:
    """The interface the services report to. The base class reports nothing."""

    def start(self, files: int, total_bytes: int) -> None: ...

    def advance(self, files: int = 0, nbytes: int = 0, chunks: int = 0) -> None: ...

    def note(self, message: str) -> None: ...

    def finish(self) -> None: ...
