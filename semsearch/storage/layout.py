"""The files inside one index folder, all named here."""

from __future__ import annotations

from pathlib import Path


class IndexPaths:
    """The files of one index folder."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def db(self) -> Path:
        return self.root / "index.sqlite3"

    @property
    def faiss_meta(self) -> Path:
        """Names the current vector file and the generation it holds."""
        return self.root / "vectors.json"

    def faiss_file(self, generation: int) -> Path:
        return self.root / f"vectors-{generation}.faiss"

    @property
    def write_lock(self) -> Path:
        return self.root / "write.lock"

    @property
    def onnx_dir(self) -> Path:
        return self.root / "onnx"

    @property
    def log(self) -> Path:
        """The watcher's log."""
        return self.root / "semsearch.log"

    @property
    def watch_lock(self) -> Path:
        """Held by the one watcher of this index for as long as it runs."""
        return self.root / "watch.lock"

    @property
    def watch_state(self) -> Path:
        """The running watcher's pid, roots, phase and last sync (JSON), removed when it stops."""
        return self.root / "watch.json"

    @property
    def query_socket(self) -> Path:
        """Where a running watcher answers queries (a Unix domain socket, owner only)."""
        return self.root / "query.sock"


def require_writable(paths: IndexPaths, doing: str) -> None:
    """IndexWriteFailed, in one sentence, when the index folder exists but cannot be written (``doing`` must write)."""
    import errno
    import os

    from semsearch.errors import IndexWriteFailed

    check_folder(paths)
    if not paths.root.is_dir():
        return
    for path in (paths.root, paths.db):
        if path.exists() and not os.access(path, os.W_OK):
            try:  # the reason, as the system gives it (a read-only file system, permissions)
                probe = os.statvfs(path)
                read_only_fs = bool(probe.f_flag & os.ST_RDONLY)
            except OSError:
                read_only_fs = False
            reason = os.strerror(errno.EROFS if read_only_fs else errno.EACCES)
            if not paths.db.exists():
                raise IndexWriteFailed(
                    f"Cannot make an index in {paths.root} ({reason}); choose a folder you can write with --index."
                )
            raise IndexWriteFailed(
                f"The index at {paths.root} is read-only ({reason}), and {doing} needs to write to it; search it as it "
                "is, or make it writable (or choose another folder with --index)."
            )


def check_folder(paths: IndexPaths) -> None:
    """UsageError when the index folder is a file (or anything but a folder)."""
    import os
    import stat

    from semsearch.errors import UsageError

    try:
        st = os.stat(paths.root)
    except OSError:
        return  # missing (made when indexing) or unreachable (said by whoever opens it)
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(
            f"The index folder {paths.root} is a file; point --index (or SEMSEARCH_HOME) at a folder, made when missing."
        )
