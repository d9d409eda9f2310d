"""One writer per index: a file lock held while the index is being changed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from .paths import IndexPaths
from .progress import Progress


@contextmanager
def write_lock(paths: IndexPaths, progress: Progress | None = None) -> Iterator[None]:
    """Hold the index's write lock; when another process holds it, say so and wait for it."""
    paths.root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(paths.write_lock))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            progress.note(
                f"Another semsearch process is writing to {paths.root}; waiting for it to finish (Ctrl-C to give up)."
            )
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
