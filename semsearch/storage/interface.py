"""What the layers above storage need from an index, as small typed interfaces.

The embedded store (SQLite as the truth, FAISS for vectors, FTS5 for keywords: ``storage.store``,
``storage.embedded``) implements them; a second store implements the same. Nothing above ``storage`` reaches
past these into SQLite or FAISS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:  # the interfaces are read by light commands (status) that never load numpy
    import numpy as np

    from semsearch.documents import Chunk
    from semsearch.model.spec import ModelSpec


T = TypeVar("T")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileRow:
    id: int
    path: Path
    size: int
    mtime_ns: int
    sha256: str
    error: str | None


@dataclass(frozen=True)
class ChunkRow:
    id: int
    path: Path
    text: str
    start_line: int
    end_line: int
    page: int | None
    heading: str
    cell: int | None


@dataclass(frozen=True)
class FileWrite:
    """One file to record: its stat, hash and chunks (their vectors already stored), or why it was skipped."""

    path: Path
    size: int
    mtime_ns: int
    sha256: str
    chunks: list[Chunk]
    error: str | None = None


# (chunk id, path, ordinal in its file, start line, end line, page, cell)
ChunkPlace = tuple[int, Path, int, int, int, int | None, int | None]


@runtime_checkable
class IndexStore(Protocol):
    """An open index: metadata, roots, files, chunks and their vectors; every change inside ``write()``."""

    @property
    def dim(self) -> int: ...

    @property
    def generation(self) -> int: ...

    @property
    def model_ref(self) -> str: ...

    @property
    def truncate_dim(self) -> int | None: ...

    def meta(self, key: str, default: str = "") -> str: ...

    def check_model(self, model: ModelSpec) -> None: ...

    def recorded_prefixes(self) -> dict[str, str]: ...

    # -- reading: ``snapshot()`` holds one consistent view (its generation) for the reads inside it

    def snapshot(self) -> AbstractContextManager[int]: ...

    def roots(self) -> list[Path]: ...

    def files(self) -> dict[Path, FileRow]: ...

    def chunk_rows(self, ids: list[int]) -> dict[int, ChunkRow]: ...

    def chunk_places(self) -> list[ChunkPlace]: ...

    def vectors_since(self, gen: int) -> tuple[np.ndarray, np.ndarray]: ...

    def counts(self) -> dict[str, int]: ...

    # -- writing: ``write()`` is one transaction, yielding its generation; a file's chunks change at once

    def write(self) -> AbstractContextManager[int]: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def set_model(self, model: ModelSpec, dim: int) -> None: ...

    def add_root(self, path: Path) -> None: ...

    def put_embeddings(self, hashes: list[str], vectors: np.ndarray) -> None: ...

    def known_hashes(self, hashes: Iterable[str]) -> set[str]: ...

    def replace_file(
        self,
        gen: int,
        path: Path,
        size: int,
        mtime_ns: int,
        sha256: str,
        chunks: list[Chunk],
        error: str | None = None,
    ) -> None: ...

    def replace_files(self, gen: int, files: list[FileWrite]) -> None:
        """``replace_file`` for several files, in the order given (a shared store writes them in one go)."""
        ...

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None: ...

    def delete_files(self, gen: int, file_ids: list[int]) -> None: ...

    def remove_root(self, gen: int, path: Path) -> None: ...

    def drop_unused_embeddings(self) -> int: ...

    def sync_vectors(self, rebuild: bool = False) -> str:
        """After writes: bring the vector search structure up to the stored vectors (rebuilt whole when asked);
        what was rebuilt and why, or ""."""
        ...

    def retrying(self, work: Callable[[], T]) -> T:
        """Run ``work`` (whole write transactions); a shared store runs it again after a lost connection or a
        conflict with another writer (a bounded number of times), the embedded store just runs it."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SearchIndex(Protocol):
    """An open index as a query reads it: nearest vectors, keyword matches and chunk rows, in one snapshot."""

    @property
    def vector_count(self) -> int: ...

    def snapshot(self) -> AbstractContextManager[int]: ...

    def nearest(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest to ``query`` (one row), as (chunk id, cosine), best first."""
        ...

    def vector_of(self, chunk_id: int) -> np.ndarray | None:
        """A chunk's vector, or None when it has none in this view."""
        ...

    def cosines(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        """The cosine of ``query`` (one row) with each of these chunks' vectors (left out: chunks without one)."""
        ...

    def keyword_search(
        self, match: str, limit: int, also: list[int]
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        """The ``limit`` best keyword matches as (chunk id, score), and the scores of the chunks in ``also``."""
        ...

    def keyword_scores(self, match: str, ids: list[int]) -> dict[int, float]: ...

    def keyword_matching(self, expression: str, ids: list[int] | None = None, limit: int = 1000) -> set[int]: ...

    def present_terms(self, expressions: list[str]) -> set[str]:
        """Which of these keyword items (as ``keywords.parse`` makes them) occur in at least one chunk."""
        ...

    def common_terms(self, expressions: list[str], share: float) -> set[str]:
        """Which of these keyword items occur in at least ``share`` of the chunks."""
        ...

    def chunk_rows(self, ids: list[int]) -> dict[int, ChunkRow]: ...
