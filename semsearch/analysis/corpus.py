"""The index's stored vectors with their places, read in one snapshot, for the commands that need no model.

``similar``, ``dupes`` and ``topics`` work on the vectors already in the index (never re-embedding),
so they load no model and start fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch.errors import NoIndex
from semsearch.storage.interface import IndexStore


@dataclass
class Corpus:
    """Every chunk of the index: id, file, place, and its unit-length vector (row i of ``vectors``)."""

    ids: np.ndarray  # (n,) chunk ids
    vectors: np.ndarray  # (n, dim) float32, unit length
    file_of: np.ndarray  # (n,) index into ``files``
    files: list[Path]
    ords: np.ndarray
    start_lines: np.ndarray
    end_lines: np.ndarray
    pages: list[int | None]
    cells: list[int | None]

    @property
    def size(self) -> int:
        return len(self.ids)

    def rows_of_file(self, file_index: int) -> np.ndarray:
        return np.flatnonzero(self.file_of == file_index)

    def file_vectors(self) -> np.ndarray:
        """One unit vector per file: the normalized mean of its chunks' vectors."""
        sums = np.zeros((len(self.files), self.vectors.shape[1]), dtype=np.float32)
        np.add.at(sums, self.file_of, self.vectors)
        return normalize(sums)


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def load_corpus(store: IndexStore) -> Corpus:
    """All chunks and their stored vectors, consistent with each other (one read transaction)."""
    with store.snapshot():
        ids, vectors = store.vectors_since(0)
        places = store.chunk_places()
    by_id = {p[0]: p for p in places}
    keep = np.array([int(i) in by_id for i in ids], dtype=bool)
    ids, vectors = ids[keep], vectors[keep]
    order = np.argsort(ids, kind="stable")
    ids, vectors = ids[order], np.ascontiguousarray(vectors[order])
    file_index: dict[Path, int] = {}
    files: list[Path] = []
    file_of = np.empty(len(ids), dtype=np.int64)
    for row, cid in enumerate(ids):
        path = by_id[int(cid)][1]
        if path not in file_index:
            file_index[path] = len(files)
            files.append(path)
        file_of[row] = file_index[path]
    place = [by_id[int(c)] for c in ids]
    return Corpus(
        ids=ids,
        vectors=vectors,
        file_of=file_of,
        files=files,
        ords=np.array([p[2] for p in place], dtype=np.int64),
        start_lines=np.array([p[3] for p in place], dtype=np.int64),
        end_lines=np.array([p[4] for p in place], dtype=np.int64),
        pages=[p[5] for p in place],
        cells=[p[6] for p in place],
    )


def require_chunks(corpus: Corpus, index_dir: Path) -> None:
    if corpus.size == 0:
        raise NoIndex(f"The index at {index_dir} holds no passages yet; add some with: semsearch index PATH")


def absolute(path: Path | str) -> Path:
    """A path as the index records it: absolute and normalized, symbolic links kept."""
    return Path(os.path.normpath(Path(path).expanduser().absolute()))
