"""Progress of long work: a Rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time

from semsearch.progress import Progress


class PlainProgress(Progress):
    """One line at most every few seconds, for logs and pipes."""

    def __init__(self, stream=None, every: float = 5.0):
        self.stream = stream or sys.stderr
        self.every = every
        self.files = self.bytes = self.chunks = 0
        self.total_files = self.total_bytes = 0
        self.started = self.last = time.monotonic()

    def start(self, files: int, total_bytes: int) -> None:
        self.total_files, self.total_bytes = files, total_bytes
        self.started = self.last = time.monotonic()
        if files:
            print(f"indexing {files} files", file=self.stream, flush=True)

    def advance(self, files: int = 0, nbytes: int = 0, chunks: int = 0) -> None:
        self.files += files
        self.bytes += nbytes
        self.chunks += chunks
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            rate = self.chunks / max(now - self.started, 1e-9)
            print(
                f"{self.files}/{self.total_files} files, {self.chunks} chunks embedded, {rate:.1f} chunks/s",
                file=self.stream,
                flush=True,
            )

    def note(self, message: str) -> None:
        print(message, file=self.stream, flush=True)


class RichProgress(Progress):
    """Files done, chunks embedded, rate and time left, on stderr."""

    def __init__(self, console):
        self.console = console
        self._progress = None
        self._task = None
        self._chunks = 0
        self._started = time.monotonic()

    def start(self, files: int, total_bytes: int) -> None:
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self._started = time.monotonic()
        self._progress = Bar(
            TextColumn("[bold]indexing"),
            BarColumn(),
            TextColumn("{task.fields[files]}/{task.fields[total_files]} files"),
            TextColumn("{task.fields[chunks]} chunks"),
            TextColumn("{task.fields[rate]:.1f} chunks/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "index", total=max(total_bytes, 1), files=0, total_files=files, chunks=0, rate=0.0
        )

    def advance(self, files: int = 0, nbytes: int = 0, chunks: int = 0) -> None:
        if self._progress is None:
            return
        self._chunks += chunks
        task = self._progress.tasks[0]
        rate = self._chunks / max(time.monotonic() - self._started, 1e-9)
        self._progress.update(
            self._task, advance=nbytes, files=task.fields["files"] + files, chunks=self._chunks, rate=rate
        )

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def progress_for(console, quiet: bool) -> Progress:
    """Nothing when quiet; a Rich bar on a terminal; plain lines otherwise (logs, pipes)."""
    if quiet:
        return Progress()
    return RichProgress(console) if console.is_terminal else PlainProgress()
