"""The FAISS search structure over the stored vectors: loaded, brought up to date, searched, saved atomically."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

import faiss
import numpy as np

from .paths import IndexPaths
from .store import Store

FORMAT = 1  # of vectors.json and the file it names; a newer one is rebuilt from the stored vectors, not misread


@dataclass
class VectorIndex:
    index: faiss.Index
    generation: int  # the store generation whose chunks this index holds
    damaged: str = ""  # why the saved file could not be used, when it was rebuilt from the store

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, self.size))
        if self.size == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)


def _empty(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _read_saved(paths: IndexPaths, dim: int, missing_ok: bool) -> tuple[faiss.Index | None, int, str]:
    """The saved index and its generation; (None, 0, reason) when absent or unusable."""
    try:
        meta = json.loads(paths.faiss_meta.read_text())
        generation, count, version = int(meta["generation"]), int(meta["count"]), int(meta.get("format", 1))
    except FileNotFoundError:
        return None, 0, ""
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return None, 0, f"{paths.faiss_meta.name} is unreadable ({e})"
    if version > FORMAT:
        return None, 0, f"{paths.faiss_meta.name} was written by a newer semsearch (format {version})"
    file = paths.faiss_file(generation)
    try:
        index = faiss.read_index(str(file))
    except Exception as e:  # faiss raises RuntimeError on missing, truncated or foreign files
        if not file.exists():
            if not missing_ok:
                raise FileNotFoundError(file) from e
            return None, 0, f"{file.name} is missing"
        return None, 0, f"{file.name} is damaged ({str(e).splitlines()[0][:120]})"
    if index.d != dim or index.ntotal != count:
        return None, 0, f"{file.name} does not match the database ({index.ntotal} vectors, expected {count})"
    return index, generation, ""


def load(store: Store) -> VectorIndex:
    """The search structure as of the store's current generation, read inside one snapshot.

    The saved file may lag behind the database (a run interrupted before saving, or a writer
    still at work): the chunks added and removed since its generation are applied in memory.
    A damaged file is rebuilt from the stored vectors, and ``damaged`` says why.
    """
    for attempt in range(5):
        with store.snapshot() as gen:
            try:
                index, saved_gen, damaged = _read_saved(store.paths, store.dim, missing_ok=attempt == 4)
            except FileNotFoundError:
                continue  # a writer replaced the file between reading its name and opening it
            if saved_gen > gen and attempt < 4:
                continue  # saved by a writer after our snapshot began: take a newer snapshot
            if index is None or saved_gen > gen:
                index, saved_gen = _empty(store.dim), 0
            if saved_gen < gen:
                _apply_changes(index, store, saved_gen)
            return VectorIndex(index, gen, damaged)
    raise AssertionError("unreachable: the last attempt always returns")


def refresh(vi: VectorIndex, store: Store) -> VectorIndex:
    """Bring an index loaded earlier up to the store's generation (for a process that keeps one in memory).

    Only the chunks added and removed since ``vi.generation`` are applied, in place. When a writer has
    saved a newer vector file since, the tombstones the delta needs may be gone: then load afresh.
    """
    with store.snapshot() as gen:
        if gen == vi.generation:
            return vi
        # Read after the snapshot began: tombstones are dropped only up to a generation already saved.
        if vi.generation < gen and _generation_on_disk(store.paths) <= vi.generation:
            _apply_changes(vi.index, store, vi.generation)
            return VectorIndex(vi.index, gen)
    return load(store)


def _generation_on_disk(paths: IndexPaths) -> int:
    """Like saved_generation, but a missing file is unknown ground, not generation 0."""
    try:
        return int(json.loads(paths.faiss_meta.read_text())["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1 << 62  # missing or unreadable: let load() decide what to do


def _apply_changes(index: faiss.Index, store: Store, since: int) -> None:
    removed = store.tombstones_since(since)
    if len(removed) and index.ntotal:
        index.remove_ids(faiss.IDSelectorBatch(removed))
    ids, vectors = store.vectors_since(since)
    if len(ids):
        if index.ntotal:  # a chunk id is never reused, but never add one twice either
            index.remove_ids(faiss.IDSelectorBatch(ids))
        index.add_with_ids(vectors, ids)


def save(vi: VectorIndex, paths: IndexPaths) -> None:
    """Write the index under a new name, then switch ``vectors.json`` to it: a crash leaves the old pair.

    Call with the write lock held: it also removes the files earlier runs left (see ``leftovers``).
    """
    target = paths.faiss_file(vi.generation)
    data = faiss.serialize_index(vi.index)  # written by Python, so a full disk is an OSError with its errno
    fd, tmp = tempfile.mkstemp(prefix=".vectors-", suffix=".tmp", dir=paths.root)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(memoryview(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        meta = {"format": FORMAT, "generation": vi.generation, "count": vi.size, "dim": vi.index.d}
        _write_json_atomic(paths.faiss_meta, meta)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    for old in leftovers(paths):  # older vector files, and what a run killed while saving left behind
        old.unlink(missing_ok=True)


def saved_generation(paths: IndexPaths) -> int:
    """The generation of the vector file on disk (0 when there is none)."""
    try:
        return int(json.loads(paths.faiss_meta.read_text())["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def save_and_prune(store: Store) -> VectorIndex:
    """Bring the vector file up to the database and save it; then forget tombstones it no longer needs."""
    vi = load(store)
    save(vi, store.paths)
    store.drop_tombstones(saved_generation(store.paths))  # only what the file on disk already reflects
    return vi


def leftovers(paths: IndexPaths) -> list:
    """Files an interrupted run left in the index folder: unfinished writes and vector files no longer named."""
    current = None
    try:
        current = paths.faiss_file(int(json.loads(paths.faiss_meta.read_text())["generation"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = [*paths.root.glob(".vectors-*.tmp"), *paths.root.glob(f".{paths.faiss_meta.name}-*.tmp")]
    found += [p for p in paths.root.glob("vectors-*.faiss") if p != current]
    return sorted(found)


def _write_json_atomic(path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
