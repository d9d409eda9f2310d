"""Answer a query: encode it, search the vectors, and return the hits with their places in the files."""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .faults import reading_index
from .models import resolve_model
from .paths import IndexPaths
from .store import Store

if TYPE_CHECKING:
    from . import vectors

log = logging.getLogger(__name__)


@dataclass
class QueryOptions:
    text: str
    k: int = 10
    path_glob: str | None = None
    min_score: float | None = None
    files_only: bool = False


@dataclass(frozen=True)
class Hit:
    path: Path
    start_line: int
    end_line: int
    score: float
    text: str
    page: int | None = None
    heading: str = ""
    cell: int | None = None
    chunk_id: int = 0


def _load_query_encoder(spec, store: Store):
    from .embed import load_query_encoder

    return load_query_encoder(spec, store.paths, store.meta("vector_kind", "fp32"))


def search(index_dir: Path, options: QueryOptions) -> list[Hit]:
    paths = IndexPaths(index_dir)
    with reading_index(paths):
        return _search(paths, options)


def _search(paths: IndexPaths, options: QueryOptions) -> list[Hit]:
    from . import vectors  # faiss: only when searching (render imports this module for Hit)

    store = Store.open(paths)
    try:
        spec = replace(resolve_model(store.model_ref), truncate_dim=store.truncate_dim)
        store.check_model(spec)
        vi = vectors.load(store)
        if vi.damaged:
            log.warning(
                "the vector file was rebuilt in memory from stored vectors (%s); "
                "run semsearch index --rebuild to save it",
                vi.damaged,
            )
        if vi.size == 0:
            return []
        query = _load_query_encoder(spec, store).encode_queries([options.text])
        with store.snapshot():
            return _collect(store, vi, query, options)
    finally:
        store.close()


def _matches_path(path: Path, glob: str) -> bool:
    full = os.fsdecode(path)
    shown = display_path(path)
    return any(
        fnmatch.fnmatch(candidate, pattern)
        for candidate in (full, shown, path.name)
        for pattern in (glob, f"*/{glob}", f"{glob}/*", f"*/{glob}/*")
    )


def _collect(store: Store, vi: vectors.VectorIndex, query, options: QueryOptions) -> list[Hit]:
    """Search wider until enough hits pass the filters (path glob, score floor, one per file)."""
    wanted = options.k
    k = wanted * (4 if (options.path_glob or options.files_only) else 1)
    while True:
        scores, ids = vi.search(query, k)
        rows = store.chunk_rows([int(i) for i in ids[0] if i >= 0])
        hits: list[Hit] = []
        seen_files: set[Path] = set()
        exhausted = k >= vi.size
        for score, cid in zip(scores[0], ids[0]):
            row = rows.get(int(cid))
            if row is None:  # removed since the vector structure was read
                continue
            if options.min_score is not None and score < options.min_score:
                exhausted = True  # scores only fall from here
                break
            if options.path_glob and not _matches_path(row.path, options.path_glob):
                continue
            if options.files_only:
                if row.path in seen_files:
                    continue
                seen_files.add(row.path)
            hits.append(
                Hit(
                    row.path,
                    row.start_line,
                    row.end_line,
                    float(score),
                    row.text,
                    row.page,
                    row.heading,
                    row.cell,
                    row.id,
                )
            )
            if len(hits) == wanted:
                return hits
        if exhausted:
            return hits
        k = min(k * 4, vi.size)


def display_path(path: Path, cwd: Path | None = None) -> str:
    """Relative to the current folder when under it, else absolute."""
    cwd = cwd or Path.cwd()
    try:
        return os.fsdecode(path.relative_to(cwd))
    except ValueError:
        return os.fsdecode(path)
