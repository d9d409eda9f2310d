"""One writer per index: a file lock held while the index is being changed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from semsearch.progress import Progress
from semsearch.storage.layout import IndexPaths


@contextmanager
def write_lock(paths: IndexPaths, progress: Progress | None = None) -> Iterator[None]:
    """Hold the index's write lock; when another process holds it, say so and wait for it."""
    paths.root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(paths.write_lock))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        message = f"Another semsearch process is writing to {paths.root}; waiting for it to finish (Ctrl-C to give up)."
        if progress is not None and type(progress).note is not Progress.note:
            progress.note(message)
        else:  # no progress display (remove, --quiet): waiting silently would look like a hang
            print(f"semsearch: {message}", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
