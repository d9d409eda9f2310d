"""The embedded index as a query reads it: the SQLite store (rows, FTS5 keywords) with its FAISS vectors."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager

import numpy as np

from semsearch.storage import keywords
from semsearch.storage.store import ChunkRow, Store

log = logging.getLogger(__name__)


def open_for_search(store: Store, with_vectors: bool, private: bool = False) -> EmbeddedIndex:
    """The index over ``store`` as queries read it: with its vectors loaded when searching by meaning (a
    ``private`` copy, not memory-mapped, for a process that keeps it up to date in place)."""
    if not with_vectors:
        return EmbeddedIndex(store)
    from semsearch.storage import vectors  # faiss: only when searching by meaning

    vi = vectors.load(store, mmap=not private)
    if vi.damaged:
        log.warning(
            "the vector file was rebuilt in memory from stored vectors (%s); run semsearch index --rebuild to save it",
            vi.damaged,
        )
    return EmbeddedIndex(store, vi)


class EmbeddedIndex:
    """``SearchIndex`` over an open ``Store`` and its loaded ``VectorIndex`` (None when only keywords are read)."""

    def __init__(self, store: Store, vectors=None):
        self.store = store
        self.vectors = vectors

    @property
    def generation(self) -> int:
        """The store generation the loaded vectors hold."""
        return self.vectors.generation if self.vectors is not None else self.store.generation

    def refresh(self) -> None:
        """Bring the loaded vectors up to the store's generation (cheap when nothing changed)."""
        if self.vectors is not None and self.store.generation != self.vectors.generation:
            from semsearch.storage import vectors

            self.vectors = vectors.refresh(self.vectors, self.store)

    @property
    def vector_count(self) -> int:
        return self.vectors.size if self.vectors is not None else 0

    def snapshot(self) -> AbstractContextManager[int]:
        return self.store.snapshot()

    def nearest(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        scores, ids = self.vectors.search(query, k)
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def vector_of(self, chunk_id: int) -> np.ndarray | None:
        try:
            return self.vectors.reconstruct(chunk_id)
        except RuntimeError:  # added after the vector structure was read: it has no vector here yet
            return None

    def cosines(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        found = {}
        for cid in ids:
            vector = self.vector_of(cid)
            if vector is not None:
                found[cid] = float(vector @ query[0])
        return found

    def keyword_search(
        self, match: str, limit: int, also: list[int]
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        return keywords.search_and_score(self.store.conn, match, limit, also)

    def keyword_scores(self, match: str, ids: list[int]) -> dict[int, float]:
        return keywords.scores_for(self.store.conn, match, ids)

    def keyword_matching(self, expression: str, ids: list[int] | None = None, limit: int = 1000) -> set[int]:
        return keywords.matching(self.store.conn, expression, ids, limit)

    def present_terms(self, expressions: list[str]) -> set[str]:
        return keywords.present(self.store.conn, expressions)

    def common_terms(self, expressions: list[str], share: float) -> set[str]:
        return keywords.common(self.store.conn, expressions, share)

    def chunk_rows(self, ids: list[int]) -> dict[int, ChunkRow]:
        return self.store.chunk_rows(ids)
