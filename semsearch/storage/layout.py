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
