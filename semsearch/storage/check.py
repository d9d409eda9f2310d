"""Verify an index: every chunk has its stored vector, the vector structure holds exactly the chunks, counts agree."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from semsearch.errors import IndexBusy
from semsearch.storage import vectors
from semsearch.storage.faults import reading_index
from semsearch.storage.layout import IndexPaths
from semsearch.storage.store import Store

ATTEMPTS = 20  # snapshots tried when a writer keeps committing between loading the vectors and checking them


@dataclass
class CheckReport:
    index_dir: str
    generation: int = 0
    files: int = 0
    chunks: int = 0
    embeddings: int = 0
    vectors: int = 0  # ids in the vector structure once brought up to the database's generation
    saved_generation: int | None = None  # the generation of the saved vector file, None when there is none
    problems: list[str] = field(default_factory=list)  # inconsistencies, one plain sentence each
    notes: list[str] = field(default_factory=list)  # normal after an interruption, repaired by the next index

    @property
    def consistent(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return asdict(self) | {"consistent": self.consistent}


def check_index(index_dir: Path) -> CheckReport:
    """Check the index at ``index_dir`` without changing it (safe while another process writes to it)."""
    paths = IndexPaths(index_dir)
    with reading_index(paths):
        from semsearch.storage.access import open_store

        store = open_store(paths)
        if store.kind == "postgresql":
            try:
                with store.snapshot() as gen:
                    report = CheckReport(index_dir=store.where, generation=gen)
                    counts = store.counts()
                    report.files, report.chunks, report.embeddings = (
                        counts["files"],
                        counts["chunks"],
                        counts["embeddings"],
                    )
                    report.vectors = counts["chunks"]  # each chunk row holds its vector
                    report.problems.extend(store.consistency_problems())
                    report.notes.extend(store.graph_notes())
                return report
            finally:
                store.close()
        try:
            for _ in range(ATTEMPTS):
                vi = vectors.load(store)
                with store.snapshot() as gen:
                    if gen != vi.generation:
                        continue  # a writer committed in between: load again
                    report = CheckReport(index_dir=str(paths.root), generation=gen)
                    _check_database(store, report)
                    _check_vectors(store, vi, report)
                _check_saved_file(paths, report)
                return report
        finally:
            store.close()
    raise IndexBusy(
        f"The index at {paths.root} kept changing while it was being checked; run semsearch check again "
        "when indexing is done."
    )


def _one(store: Store, sql: str, *args) -> int:
    return int(store.conn.execute(sql, args).fetchone()[0])


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _check_database(store: Store, report: CheckReport) -> None:
    """Inside a snapshot: SQLite's own check, then the relations between files, chunks and vectors."""
    damaged = [r[0] for r in store.conn.execute("PRAGMA quick_check(5)").fetchall()]
    if damaged != ["ok"]:
        report.problems.append(f"SQLite reports the database damaged: {'; '.join(damaged)}.")
    counts = store.counts()
    report.files, report.chunks, report.embeddings = counts["files"], counts["chunks"], counts["embeddings"]
    missing = _one(
        store,
        "SELECT COUNT(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.text_hash = c.text_hash)",
    )
    if missing:
        report.problems.append(
            f"{_plural(missing, 'chunk has', 'chunks have')} no stored vector; "
            "remove their files from the index and index them again."
        )
    bad_size = _one(store, "SELECT COUNT(*) FROM embeddings WHERE length(vector) != ?", store.dim * 4)
    if bad_size:
        report.problems.append(
            f"{_plural(bad_size, 'stored vector has', 'stored vectors have')} the wrong size "
            f"(the model has {store.dim} dimensions)."
        )
    orphans = _one(
        store, "SELECT COUNT(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.id = c.file_id)"
    )
    if orphans:
        report.problems.append(f"{_plural(orphans, 'chunk belongs', 'chunks belong')} to no file.")
    future = _one(store, "SELECT COUNT(*) FROM chunks WHERE gen > ?", report.generation)
    if future:
        report.problems.append(
            f"{_plural(future, 'chunk was', 'chunks were')} written by a generation after the database's own "
            f"({report.generation})."
        )
    revived = _one(store, "SELECT COUNT(*) FROM tombstones t JOIN chunks c ON c.id = t.chunk_id")
    if revived:
        report.problems.append(f"{_plural(revived, 'chunk is', 'chunks are')} both removed and present.")
    errored = _one(store, "SELECT COUNT(*) FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.error IS NOT NULL")
    if errored:
        report.problems.append(f"{_plural(errored, 'chunk belongs', 'chunks belong')} to files recorded as skipped.")


def _check_vectors(store: Store, vi: vectors.VectorIndex, report: CheckReport) -> None:
    """Inside the snapshot ``vi`` was loaded at: the vector ids are exactly the chunk ids, with the stored vectors."""
    report.vectors = vi.size
    if vi.damaged:
        report.problems.append(
            f"The saved vector file is unusable: {vi.damaged}; run semsearch index --rebuild to rebuild it "
            "from the stored vectors."
        )
    chunk_ids = np.fromiter((r[0] for r in store.conn.execute("SELECT id FROM chunks")), dtype=np.int64)
    vector_ids = vi.ids()
    if len(np.unique(vector_ids)) != len(vector_ids):
        report.problems.append("The vector structure holds some chunk ids more than once.")
    without_chunk = np.setdiff1d(vector_ids, chunk_ids)
    without_vector = np.setdiff1d(chunk_ids, vector_ids)
    if len(without_chunk):
        report.problems.append(
            f"{_plural(len(without_chunk), 'vector has', 'vectors have')} no chunk in the database "
            f"(ids {_sample(without_chunk)}); run semsearch index --rebuild."
        )
    if len(without_vector):
        report.problems.append(
            f"{_plural(len(without_vector), 'chunk is', 'chunks are')} missing from the vector structure "
            f"(ids {_sample(without_vector)}); run semsearch index --rebuild."
        )
    if vi.size != report.chunks and not (len(without_chunk) or len(without_vector)):
        report.problems.append(f"The vector structure holds {vi.size} vectors for {report.chunks} chunks.")
    # The vectors themselves: each id must carry the vector stored for its chunk's text.
    common = np.intersect1d(vector_ids, chunk_ids)
    wrong = 0
    for start in range(0, len(common), 2048):
        part = [int(i) for i in common[start : start + 2048]]
        marks = ",".join("?" * len(part))
        rows = store.conn.execute(
            f"SELECT c.id, e.vector FROM chunks c JOIN embeddings e ON e.text_hash = c.text_hash WHERE c.id IN ({marks})",
            part,
        ).fetchall()
        if not rows:
            continue
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        stored = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        held = vi.reconstruct_batch(ids)
        if stored.shape == held.shape:
            wrong += int(np.count_nonzero(~np.all(np.isclose(stored, held, atol=1e-6), axis=1)))
    if wrong:
        report.problems.append(
            f"{_plural(wrong, 'vector differs', 'vectors differ')} from the one stored for its chunk; "
            "run semsearch index --rebuild."
        )


def _check_saved_file(paths: IndexPaths, report: CheckReport) -> None:
    """Notes on the files of the folder: a vector file behind the database, leftovers of an interrupted run."""
    try:
        report.saved_generation = int(json.loads(paths.faiss_meta.read_text())["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        report.saved_generation = None
    if report.saved_generation is None:
        report.notes.append(
            "There is no saved vector file; queries build the vector structure from the stored vectors, "
            "and the next index saves it."
        )
    elif report.saved_generation < report.generation:
        report.notes.append(
            f"The saved vector file is behind the database (generation {report.saved_generation} of "
            f"{report.generation}), as after an interrupted run; queries catch up in memory and the next index saves it."
        )
    leftovers = vectors.leftovers(paths)
    if leftovers:
        names = ", ".join(p.name for p in leftovers[:3]) + (" ..." if len(leftovers) > 3 else "")
        report.notes.append(
            f"{_plural(len(leftovers), 'file', 'files')} left by an interrupted run ({names}); the next index removes them."
        )


def _sample(ids: np.ndarray, n: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in ids[:n])
    return shown + (", ..." if len(ids) > n else "")
