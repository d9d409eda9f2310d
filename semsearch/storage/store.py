"""The index's source of truth: files, chunks and their vectors in one SQLite database."""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.documents import Chunk
from semsearch.errors import IndexCorrupt, NoIndex
from semsearch.model.spec import ModelSpec
from semsearch.storage import keywords as lexical
from semsearch.storage import meta as index_meta
from semsearch.storage.interface import ChunkRow, FileRow, FileWrite, text_hash
from semsearch.storage.layout import IndexPaths, check_folder
from semsearch.system import PRIVATE_FILE, make_private

if TYPE_CHECKING:  # numpy is imported where vectors are handled, so status stays light
    import numpy as np

FORMAT_VERSION = 4  # 1: the foundation schema below; then one migration per version in _MIGRATIONS

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE roots (path BLOB PRIMARY KEY, added_at REAL NOT NULL);
CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path BLOB NOT NULL UNIQUE,          -- os.fsencode of the absolute path: any bytes a file name may hold
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    indexed_at REAL NOT NULL,
    error TEXT                          -- why the file gave no chunks (corrupt, binary...), else NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- also the id of its vector in FAISS
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    page INTEGER,
    heading TEXT NOT NULL DEFAULT '',
    cell INTEGER,
    text_hash TEXT NOT NULL,            -- sha256 of the embedded text: the key of its vector
    gen INTEGER NOT NULL                -- the write generation that added it
);
CREATE INDEX chunks_file ON chunks(file_id);
CREATE INDEX chunks_hash ON chunks(text_hash);
CREATE INDEX chunks_gen ON chunks(gen);
CREATE TABLE embeddings (text_hash TEXT PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID;
-- chunks removed since the vector file was last saved; searches filter them, the next save drops them
CREATE TABLE tombstones (chunk_id INTEGER PRIMARY KEY, gen INTEGER NOT NULL);
CREATE INDEX tombstones_gen ON tombstones(gen);
"""

# Append-only: the function that brings an index of version N-1 to version N, applied in order on open.
# Each runs inside the transaction that records its version.
_MIGRATIONS = {  # the keyword index is made anew from the stored chunks by the last of these an index needs
    2: lexical.create,  # the FTS5 keyword index of the chunks
    3: lexical.create,  # again: the parts of camelCase identifiers added to each chunk
    4: lexical.create,  # again: each chunk counted keywords.PAD tokens longer (BM25's length normalisation)
}
# the migrations that index every stored chunk's words (the user is told first: it takes a while)
_FILL_KEYWORDS = {version for version, step in _MIGRATIONS.items() if step is lexical.create}


def _fills_keywords_after(version: int) -> bool:
    """Whether a migration past ``version`` makes the keyword index anew from every stored chunk."""
    return any(v > version for v in _FILL_KEYWORDS)


def encode_path(path: Path | str) -> bytes:
    return os.fsencode(path)


def decode_path(raw: bytes) -> Path:
    return Path(os.fsdecode(raw))


class Store:
    """One SQLite database in WAL mode: readers see a consistent snapshot while a writer works."""

    kind = "sqlite"  # the embedded store; storage/postgres.py is the other ("postgresql")

    def __init__(self, paths: IndexPaths, conn: sqlite3.Connection):
        self.paths = paths
        self.conn = conn
        self.readonly = False  # opened read-only: the folder or the database cannot be written

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, paths: IndexPaths, upgrade: bool = True) -> Store:
        """Open an existing index; NoIndex when there is none, IndexCorrupt when it cannot be read.

        ``upgrade=False``: never write, whatever the folder's mode: a read-only connection, and an index of an older
        format is read as it is, not upgraded (for reading the metadata and rows of an index another version
        built, as the benchmarks do; searching it needs the current format)."""
        check_folder(paths)
        if not paths.db.exists():
            if cls.remains(paths):
                raise IndexCorrupt(
                    f"The index database {paths.db} is missing though the index's other files are there; "
                    f"nothing was changed. Restore the file or delete {paths.root} and index again."
                )
            raise NoIndex(f"No index at {paths.root} yet; create one with: semsearch index PATH")
        readonly = not upgrade or not _writable(paths)
        store = cls(paths, cls._connect(paths.db, readonly=readonly))
        store.readonly = readonly
        try:
            store._check()
            if upgrade and int(store._meta["format_version"]) < FORMAT_VERSION:
                if readonly:
                    raise IndexCorrupt(
                        f"The index at {paths.root} needs a one-time upgrade for this version of semsearch, and it "
                        "is read-only; run semsearch index once where it can be written, then search it here."
                    )
                _say_keywords_rebuilt(store, int(store._meta["format_version"]))
                _migrate(store.conn)
        except sqlite3.OperationalError as e:  # e.g. a read-only folder, or a writer holding the database too long
            store.close()
            raise IndexCorrupt(
                f"The index at {paths.root} needs a one-time upgrade for this version of semsearch, which failed "
                f"({e}); make sure the folder is writable and no other semsearch is indexing, then try again."
            ) from e
        except BaseException:
            store.close()
            raise
        return store

    @staticmethod
    def remains(paths: IndexPaths) -> list[Path]:
        """Files of an index whose database is gone: a lost database, never to be silently recreated empty."""
        if not paths.root.is_dir():
            return []
        found = [paths.faiss_meta, *paths.root.glob("vectors-*.faiss"), paths.db.with_name(paths.db.name + "-wal")]
        return [p for p in found if p.exists()]

    @classmethod
    def create(cls, paths: IndexPaths, model: ModelSpec, dim: int) -> Store:
        paths.root.mkdir(parents=True, exist_ok=True)
        tmp = paths.db.with_name(paths.db.name + ".new")
        leftovers = [tmp, *(tmp.with_name(tmp.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]
        for path in leftovers:  # of a creation killed or failed before: a stale WAL must not meet a new file
            path.unlink(missing_ok=True)
        make_private(paths.root)
        try:
            # the database holds the text of every chunk: 0600 from the start (SQLite gives its -wal and -shm
            # files the database's own mode)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
            conn = cls._connect(tmp)
            try:
                with conn:
                    conn.executescript(_SCHEMA)
                    meta = {
                        "format_version": "1",
                        "created_at": str(time.time()),
                        "updated_at": "",
                        "generation": "0",
                        "dim": str(dim),
                    }
                    meta.update(index_meta.model_meta(model))
                    conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
                _migrate(conn)
            finally:
                conn.close()
            os.replace(tmp, paths.db)  # the index appears whole or not at all
        except BaseException:
            for path in leftovers:
                path.unlink(missing_ok=True)
            raise
        return cls.open(paths)

    @staticmethod
    def _connect(db: Path, readonly: bool = False) -> sqlite3.Connection:
        """A connection to ``db``; with ``readonly`` one that never writes (the folder or the file is read-only):
        ``mode=ro`` when SQLite can share the WAL's index there, else ``immutable`` (a read-only folder, where
        nobody can change the database either, and where the -shm file SQLite needs cannot be made)."""
        try:
            if readonly:
                uri = f"file:{urllib.parse.quote(os.fsencode(db))}?mode=ro"
                shared = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]
                if not os.access(db.parent, os.W_OK) and not all(p.exists() for p in shared):
                    uri += "&immutable=1"
                conn = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA query_only=ON")
                return conn
            conn = sqlite3.connect(db, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as e:
            if not _is_damage(e):
                raise  # a full disk, a read-only folder...: see faults.py
            raise IndexCorrupt(
                f"The index database {db} is damaged ({e}); move it aside and index again to rebuild it."
            ) from e
        return conn

    def _check(self) -> None:
        try:
            rows = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as e:
            if not _is_damage(e):
                raise
            raise IndexCorrupt(
                f"The index database {self.paths.db} is damaged ({e}); move it aside and index again to rebuild it."
            ) from e
        index_meta.check_format(
            rows,
            FORMAT_VERSION,
            f"The index at {self.paths.root}",
            f"{self.paths.db} is not a semsearch index; point --index at another folder.",
        )
        self._meta = rows

    def close(self) -> None:
        self.conn.close()

    # -- metadata --------------------------------------------------------------------------------

    def meta(self, key: str, default: str = "") -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    @property
    def dim(self) -> int:
        return int(self.meta("dim"))

    @property
    def generation(self) -> int:
        return int(self.meta("generation", "0"))

    @property
    def model_ref(self) -> str:
        return self.meta("model_ref")

    @property
    def truncate_dim(self) -> int | None:
        """The ``--dim`` the index was built with (None: the model's full vectors)."""
        value = self.meta("truncate_dim")
        return int(value) if value else None

    def check_model(self, model: ModelSpec) -> None:
        """Refuse a model other than the one the index was built with (or the same with other prefixes)."""
        index_meta.check_model(self, model, "This index", "another --index folder")

    def recorded_prefixes(self) -> dict[str, str]:
        """The query and document prefixes the index's vectors were made with."""
        return index_meta.recorded_prefixes(self.meta("model_prefixes", "{}"))

    # -- writing ----------------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[int]:
        """One write transaction; yields its generation number. Readers never see half of it."""
        with self._transaction():
            gen = self.generation + 1
            self.conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(gen),))
            self.conn.execute("UPDATE meta SET value = ? WHERE key = 'updated_at'", (str(time.time()),))
            yield gen

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error, a failed COMMIT included.

        SQLite may already have rolled back by itself (a full disk, SQLITE_FULL, ends the transaction):
        then there is nothing to roll back, and the original error is the one raised.
        """
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def set_meta(self, key: str, value: str) -> None:
        """Record a fact about the index that does not change what a search finds."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def set_model(self, model: ModelSpec, dim: int) -> None:
        """Record a new model and drop everything embedded with the old one (``--change-model``)."""
        with self.write() as gen:
            self._tombstone_chunks(gen, "1", ())
            self.conn.execute("DELETE FROM files")
            self.conn.execute("DELETE FROM embeddings")
            meta = index_meta.model_meta(model) | {"dim": str(dim)}
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())

    def add_root(self, path: Path) -> None:
        self.conn.execute("INSERT OR IGNORE INTO roots VALUES (?, ?)", (encode_path(path), time.time()))

    def roots(self) -> list[Path]:
        return [decode_path(r[0]) for r in self.conn.execute("SELECT path FROM roots ORDER BY path")]

    def put_embeddings(self, hashes: list[str], vectors: np.ndarray) -> None:
        """Store vectors by the hash of their text (a transaction of its own: embedded work is kept)."""
        import numpy as np

        rows = [(h, v.astype(np.float32).tobytes()) for h, v in zip(hashes, vectors)]
        with self._transaction():
            self.conn.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?)", rows)

    def known_hashes(self, hashes: Iterable[str]) -> set[str]:
        hashes = list(set(hashes))
        found: set[str] = set()
        for start in range(0, len(hashes), 500):
            part = hashes[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(
                r[0] for r in self.conn.execute(f"SELECT text_hash FROM embeddings WHERE text_hash IN ({marks})", part)
            )
        return found

    def replace_file(
        self, gen: int, path: Path, size: int, mtime_ns: int, sha256: str, chunks: list[Chunk], error: str | None = None
    ) -> None:
        """Inside ``write()``: set a file's row and its chunks (their vectors must already be stored)."""
        raw = encode_path(path)
        row = self.conn.execute("SELECT id FROM files WHERE path = ?", (raw,)).fetchone()
        now = time.time()
        if row:
            file_id = row[0]
            self._tombstone_chunks(gen, "file_id = ?", (file_id,))
            self.conn.execute(
                "UPDATE files SET size = ?, mtime_ns = ?, sha256 = ?, indexed_at = ?, error = ? WHERE id = ?",
                (size, mtime_ns, sha256, now, error, file_id),
            )
        else:
            file_id = self.conn.execute(
                "INSERT INTO files (path, size, mtime_ns, sha256, indexed_at, error) VALUES (?, ?, ?, ?, ?, ?)",
                (raw, size, mtime_ns, sha256, now, error),
            ).lastrowid
        self.conn.executemany(
            "INSERT INTO chunks (file_id, ord, text, start_line, end_line, page, heading, cell, text_hash, gen)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (file_id, i, c.text, c.start_line, c.end_line, c.page, c.heading, c.cell, text_hash(c.embed_text), gen)
                for i, c in enumerate(chunks)
            ],
        )
        lexical.add_file_chunks(self.conn, file_id, gen)

    def retrying(self, work):
        """One writer, one file: nothing to run again (a failure is reported as it is)."""
        return work()

    def replace_files(self, gen: int, files: list[FileWrite]) -> None:
        for f in files:
            self.replace_file(gen, f.path, f.size, f.mtime_ns, f.sha256, f.chunks, f.error)

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None:
        """A file whose bytes did not change but whose stat did: remember the new stat, keep the chunks."""
        self.conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, file_id))

    def delete_files(self, gen: int, file_ids: list[int]) -> None:
        for start in range(0, len(file_ids), 500):
            part = file_ids[start : start + 500]
            marks = ",".join("?" * len(part))
            self._tombstone_chunks(gen, f"file_id IN ({marks})", part)
            self.conn.execute(f"DELETE FROM files WHERE id IN ({marks})", part)

    def remove_root(self, gen: int, path: Path) -> None:
        self.conn.execute("DELETE FROM roots WHERE path = ?", (encode_path(path),))

    def _tombstone_chunks(self, gen: int, where: str, args) -> None:
        self.conn.execute(f"INSERT OR REPLACE INTO tombstones SELECT id, ? FROM chunks WHERE {where}", (gen, *args))
        self.conn.execute(f"DELETE FROM chunks WHERE {where}", args)

    def drop_unused_embeddings(self) -> int:
        with self._transaction():
            cur = self.conn.execute(
                "DELETE FROM embeddings WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.text_hash = embeddings.text_hash)"
            )
            return cur.rowcount

    def drop_tombstones(self, upto_gen: int) -> None:
        with self._transaction():
            self.conn.execute("DELETE FROM tombstones WHERE gen <= ?", (upto_gen,))

    # -- reading --------------------------------------------------------------------------------

    def sync_vectors(self, rebuild: bool = False) -> str:
        """Bring the saved vector structure up to this database (from every stored vector with ``rebuild``);
        what was rebuilt and why, or "" when it only caught up."""
        from semsearch.storage import vectors

        if rebuild:  # forget the saved file: load() then builds the structure from every stored vector
            self.paths.faiss_meta.unlink(missing_ok=True)
        vi = vectors.save_and_prune(self)
        return vi.damaged or (f"{vi.size} vectors, as asked" if rebuild else "")

    @contextmanager
    def snapshot(self) -> Iterator[int]:
        """A read transaction: every query inside sees the same state. Yields its generation."""
        self.conn.execute("BEGIN")
        try:
            yield self.generation
        finally:
            self.conn.execute("COMMIT")

    def files(self) -> dict[Path, FileRow]:
        return {
            row.path: row
            for row in (
                FileRow(r[0], decode_path(r[1]), r[2], r[3], r[4], r[5])
                for r in self.conn.execute("SELECT id, path, size, mtime_ns, sha256, error FROM files")
            )
        }

    def vectors_since(self, gen: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and vectors of the chunks added after generation ``gen`` (all of them for 0)."""
        import numpy as np

        rows = self.conn.execute(
            "SELECT c.id, e.vector FROM chunks c JOIN embeddings e ON e.text_hash = c.text_hash WHERE c.gen > ?",
            (gen,),
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
        return ids, vectors

    def tombstones_since(self, gen: int) -> np.ndarray:
        import numpy as np

        rows = self.conn.execute("SELECT chunk_id FROM tombstones WHERE gen > ?", (gen,)).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def chunk_rows(self, ids: list[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        for start in range(0, len(ids), 500):
            part = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(part))
            for r in self.conn.execute(
                "SELECT c.id, f.path, c.text, c.start_line, c.end_line, c.page, c.heading, c.cell"
                f" FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.id IN ({marks})",
                part,
            ):
                out[r[0]] = ChunkRow(r[0], decode_path(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])
        return out

    def chunk_places(self) -> list[tuple[int, Path, int, int, int, int | None, int | None]]:
        """Every chunk as (id, file path, ord, start_line, end_line, page, cell), by path and order in the file."""
        return [
            (r[0], decode_path(r[1]), r[2], r[3], r[4], r[5], r[6])
            for r in self.conn.execute(
                "SELECT c.id, f.path, c.ord, c.start_line, c.end_line, c.page, c.cell"
                " FROM chunks c JOIN files f ON f.id = c.file_id ORDER BY f.path, c.ord"
            )
        ]

    def counts(self) -> dict[str, int]:
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "files": one("SELECT COUNT(*) FROM files"),
            "files_skipped": one("SELECT COUNT(*) FROM files WHERE error IS NOT NULL"),
            "chunks": one("SELECT COUNT(*) FROM chunks"),
            "embeddings": one("SELECT COUNT(*) FROM embeddings"),
        }


def _writable(paths: IndexPaths) -> bool:
    """Whether this process may write the index's database and folder (False on a read-only mount)."""
    return os.access(paths.db, os.W_OK) and os.access(paths.root, os.W_OK)


def _is_damage(e: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file itself is bad (rather than the disk or the permissions)."""
    name = getattr(e, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or type(e) is sqlite3.DatabaseError


def _say_keywords_rebuilt(store: Store, version: int) -> None:
    """Before an upgrade from ``version`` that fills the keyword index again from every stored passage, say so."""
    if _fills_keywords_after(version):
        passages = store.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        index_meta.say_upgrading("this index", "its keyword index is rebuilt from", passages)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to FORMAT_VERSION, one migration per transaction (another process may race us)."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()[0])
            if version >= FORMAT_VERSION:
                conn.execute("COMMIT")
                return
            if not (version + 1 in _FILL_KEYWORDS and _fills_keywords_after(version + 1)):
                _MIGRATIONS[version + 1](conn)  # (a keyword index a later migration makes anew is not made twice)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(version + 1),))
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back by itself (a full disk, an I/O error)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
