"""One writer per index: a file lock held while the index is being changed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from semsearch.progress import Progress
from semsearch.storage.layout import IndexPaths, require_writable
from semsearch.system import PRIVATE_FILE, make_private


@contextmanager
def write_lock(paths: IndexPaths, progress: Progress | None = None) -> Iterator[None]:
    """Hold the index's write lock; when another process holds it, say so and wait for it.

    A shared (PostgreSQL) index takes several writers at once (each batch of files is a transaction that locks
    those files' rows): no lock there.
    """
    from semsearch.storespec import selected

    if selected(paths.root) is not None:
        yield
        return
    require_writable(paths, "this command")  # a read-only index: one sentence, not a failed lock file
    paths.root.mkdir(parents=True, exist_ok=True)
    make_private(paths.root)  # every write: an index made before (or under another umask) becomes private
    lock = FileLock(str(paths.write_lock), mode=PRIVATE_FILE)
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
        make_private(paths.root)  # and what the write made (an ONNX export's folder, say)
