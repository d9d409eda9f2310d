"""Where things live: the index folder and the files inside it, all resolved here."""

from __future__ import annotations

from pathlib import Path

APP_NAME = "semsearch"
ENV_HOME = "SEMSEARCH_HOME"


def default_index_dir() -> Path:
    """The configured index folder: ``SEMSEARCH_HOME``, a project or user config file, else the user data dir."""
    from .config import resolve

    return resolve().index


def resolve_index_dir(option: Path | None) -> Path:
    """``--index DIR`` wins over the environment, the config files and the default (see config.py)."""
    from .config import resolve

    return resolve({"index": option}).index


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
