"""Describe an index: where it is, its model, roots, counts, size on disk and freshness."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from semsearch.pathtext import json_bytes, json_text
from semsearch.storage.access import open_store
from semsearch.storage.faults import reading_index
from semsearch.storage.layout import IndexPaths
from semsearch.watcher.state import describe as describe_watcher


@dataclass
class IndexStatus:
    index_dir: str
    model: str
    dim: int
    roots: list[str]
    files: int
    files_skipped: int
    chunks: int
    size_bytes: int
    updated_at: float | None
    created_at: float | None
    vectors_generation: int | None
    generation: int
    format_version: int
    search: str = "exact"  # or "approximate (IVF, N lists, M searched per query)" for large indexes
    watcher: dict = field(default_factory=lambda: {"running": False})  # see watchstate.describe

    @property
    def vectors_current(self) -> bool:
        return self.vectors_generation == self.generation

    def to_json(self) -> dict:
        data = asdict(self)
        data["vectors_current"] = self.vectors_current
        data["index_dir"] = json_text(self.index_dir)
        data["roots"] = [json_text(r) for r in self.roots]
        if any(json_bytes(r) is not None for r in self.roots):  # exact bytes of every root, in the same order
            data["roots_bytes"] = [base64.b64encode(os.fsencode(r)).decode("ascii") for r in self.roots]
        return data


def index_status(index_dir: Path) -> IndexStatus:
    paths = IndexPaths(index_dir)
    with reading_index(paths):
        return _index_status(paths)


def _index_status(paths: IndexPaths) -> IndexStatus:
    store = open_store(paths)
    if getattr(store, "kind", "") == "postgresql":
        return _shared_status(store, paths)
    try:
        with store.snapshot() as gen:
            counts = store.counts()
            roots = [str(r) for r in store.roots()]
            model, dim = store.meta("model_name"), store.dim
            updated, created = store.meta("updated_at"), store.meta("created_at")
            version = int(store.meta("format_version"))
    finally:
        store.close()
    search = "exact"
    try:
        saved = json.loads(paths.faiss_meta.read_text())
        vectors_gen: int | None = int(saved["generation"])
        if saved.get("kind") == "ivf":
            search = f"approximate (IVF, {saved['nlist']} lists, {saved['nprobe']} searched per query)"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        vectors_gen = None  # no vector file yet, or an unreadable one (rebuilt on next use)
    size = _folder_size(paths.root)
    return IndexStatus(
        index_dir=str(paths.root),
        model=model,
        dim=dim,
        roots=roots,
        files=counts["files"],
        files_skipped=counts["files_skipped"],
        chunks=counts["chunks"],
        size_bytes=size,
        updated_at=float(updated) if updated else None,
        created_at=float(created) if created else None,
        vectors_generation=vectors_gen,
        generation=gen,
        format_version=version,
        search=search,
        watcher=describe_watcher(paths),
    )


def _shared_status(store, paths: IndexPaths) -> IndexStatus:
    """A shared (PostgreSQL) index: the database (password masked), every machine's roots, its size there."""
    try:
        with store.snapshot() as gen:
            counts = store.counts()
            roots = [str(p) if o == store.origin else f"{o}:{p}" for o, p in store.all_roots()]
            model, dim = store.meta("model_name"), store.dim
            created = store.meta("created_at")
            version = int(store.meta("format_version"))
            updated = store.updated_at()
            size = store.size_bytes()
    finally:
        store.close()
    return IndexStatus(
        index_dir=store.where,
        model=model,
        dim=dim,
        roots=roots,
        files=counts["files"],
        files_skipped=counts["files_skipped"],
        chunks=counts["chunks"],
        size_bytes=size,
        updated_at=updated,
        created_at=float(created) if created else None,
        vectors_generation=gen,  # the vectors are in the database: always current
        generation=gen,
        format_version=version,
        search="approximate (pgvector HNSW) and BM25 keywords, in PostgreSQL",
        watcher=describe_watcher(paths),
    )


def _folder_size(root: Path) -> int:
    """Bytes of the files in the index folder; a file a writer removes meanwhile counts for nothing."""
    total = 0
    for f in root.iterdir():
        try:
            total += f.stat().st_size if f.is_file() else 0
        except FileNotFoundError:
            continue
    return total
