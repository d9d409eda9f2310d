"""The FAISS search structure over the stored vectors: loaded, brought up to date, searched, saved atomically."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import faiss
import numpy as np

from semsearch.storage import ann
from semsearch.storage.layout import IndexPaths

# Of vectors.json and the file it names; a newer one is rebuilt from the stored vectors, not misread.
# 1: exact (flat) files; 2: approximate (IVF) ones too, which a reader of format 1 would search as if exact.
FORMAT = 2

# faiss 1.15 multiplies matrices (BLAS) when queries × dimensions reach distance_compute_blas_threshold, and
# scans vector by vector below it. Its default (128,000: about 333 queries of 384 dimensions) keeps real
# batches on the slow scan, and BLAS is slow for one query. Measured over 95,613 vectors of 384 dimensions,
# one thread (benchmarks/scale_bench.py prints both): 1 query 4.4 ms scanning vs 12.5 ms BLAS, 4 queries 17.3
# vs 12.1 ms, 100 queries 442 vs 69 ms. So searches of BLAS_MIN_QUERIES queries or more use BLAS.
BLAS_MIN_QUERIES = 4

if TYPE_CHECKING:
    from semsearch.storage.store import Store


def blas_threshold(dim: int) -> int:
    """faiss's distance_compute_blas_threshold for vectors of ``dim`` dimensions."""
    return BLAS_MIN_QUERIES * dim


def use_blas_from(dim: int) -> None:
    """Set faiss's (process-wide) threshold for searches of ``dim``-dimension vectors."""
    faiss.cvar.distance_compute_blas_threshold = blas_threshold(dim)


use_blas_from(384)  # the default model's; each search sets it for its own vectors

MAP_MIN = 20_000  # saved files of at least this many vectors are memory-mapped when read for searching


@dataclass
class VectorIndex:
    index: faiss.Index
    generation: int  # the store generation whose chunks this index holds
    damaged: str = ""  # why the saved file could not be used, when it was rebuilt from the store
    layout: ann.Layout = ann.FLAT  # exact, or approximate with its search parameters
    mapped: bool = False  # read memory-mapped from the saved file: it must never be changed in place

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, self.size))
        if self.size == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        use_blas_from(self.index.d)
        params = ann.search_params(self.layout, k, self.size)
        # A scan for one to three queries runs on one thread either way; a team of OpenMP threads only adds its
        # start (95,613 vectors, idle: 3.7 ms on one thread, 6.6 ms with two; on busy cores far more). The
        # setting is per calling thread, so the watcher's query threads get it here too.
        threads = faiss.omp_get_max_threads()
        if len(queries) < BLAS_MIN_QUERIES and threads > 1:
            faiss.omp_set_num_threads(1)
        try:
            if params is None:
                return self.index.search(queries, k)
            return self.index.search(queries, k, params=params)
        finally:
            faiss.omp_set_num_threads(threads)

    def ids(self) -> np.ndarray:
        return ann.ids_of(self.index)

    def reconstruct(self, chunk_id: int) -> np.ndarray:
        """The vector this structure holds for a chunk; RuntimeError when it holds none."""
        return self.reconstruct_batch(np.array([chunk_id], dtype=np.int64))[0]

    def reconstruct_batch(self, ids: np.ndarray) -> np.ndarray:
        ann.allow_lookup(self.index)
        return self.index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))


def _empty(dim: int) -> faiss.Index:
    return ann.empty_flat(dim)


def _read_saved(
    paths: IndexPaths, dim: int, missing_ok: bool, map_at: int | None = None
) -> tuple[faiss.Index | None, int, str, ann.Layout, bool]:
    """The saved index, its generation, layout and whether it is mapped; (None, 0, reason, ...) when unusable.

    The file is memory-mapped when it holds generation ``map_at`` (nothing to apply to it) and is large.
    """
    try:
        meta = json.loads(paths.faiss_meta.read_text())
        generation, count, version = int(meta["generation"]), int(meta["count"]), int(meta.get("format", 1))
        layout = ann.Layout.from_json(meta)
    except FileNotFoundError:
        return None, 0, "", ann.FLAT, False
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return None, 0, f"{paths.faiss_meta.name} is unreadable ({e})", ann.FLAT, False
    if version > FORMAT:
        return None, 0, f"{paths.faiss_meta.name} was written by a newer semsearch (format {version})", ann.FLAT, False
    file = paths.faiss_file(generation)
    mapped = generation == map_at and count >= MAP_MIN
    try:
        index = faiss.read_index(str(file), (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY) if mapped else 0)
    except Exception as e:  # faiss raises RuntimeError on missing, truncated or foreign files
        if not file.exists():
            if not missing_ok:
                raise FileNotFoundError(file) from e
            return None, 0, f"{file.name} is missing", ann.FLAT, False
        return None, 0, f"{file.name} is damaged ({str(e).splitlines()[0][:120]})", ann.FLAT, False
    if index.d != dim or index.ntotal != count:
        reason = f"{file.name} does not match the database ({index.ntotal} vectors, expected {count})"
        return None, 0, reason, ann.FLAT, False
    if layout.kind != _kind_of(index):
        return None, 0, f"{file.name} is not the {layout.kind} index {paths.faiss_meta.name} names", ann.FLAT, False
    return index, generation, "", layout, mapped


def _kind_of(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexIDMap2) and isinstance(faiss.downcast_index(index.index), faiss.IndexFlat):
        return "flat"
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    return type(index).__name__


def load(store: Store, writer: bool = False, mmap: bool = True) -> VectorIndex:
    """The search structure as of the store's current generation, read inside one snapshot.

    The saved file may lag behind the database (a run interrupted before saving, or a writer
    still at work): the chunks added and removed since its generation are applied in memory.
    A damaged file is rebuilt from the stored vectors, and ``damaged`` says why: exact in a
    query process; in the ``writer``, of the kind its size calls for (see ``ann``).
    A large file that is already current is memory-mapped (unless ``mmap`` is false, and
    never in the writer, which changes it).
    """
    for attempt in range(5):
        with store.snapshot() as gen:
            try:
                map_at = gen if (mmap and not writer) else None
                index, saved_gen, damaged, layout, mapped = _read_saved(
                    store.paths, store.dim, missing_ok=attempt == 4, map_at=map_at
                )
            except FileNotFoundError:
                continue  # a writer replaced the file between reading its name and opening it
            if saved_gen > gen and attempt < 4:
                continue  # saved by a writer after our snapshot began: take a newer snapshot
            if index is None or saved_gen > gen:
                if writer:
                    ids, vecs = store.vectors_since(0)
                    index, layout = ann.build(ids, vecs, store.dim)
                    return VectorIndex(index, gen, damaged, layout)
                index, saved_gen, layout, mapped = _empty(store.dim), 0, ann.FLAT, False
            if saved_gen < gen:
                _apply_changes(index, store, saved_gen)
            return VectorIndex(index, gen, damaged, layout, mapped)
    raise AssertionError("unreachable: the last attempt always returns")


def refresh(vi: VectorIndex, store: Store) -> VectorIndex:
    """Bring an index loaded earlier up to the store's generation (for a process that keeps one in memory).

    Only the chunks added and removed since ``vi.generation`` are applied, in place (so ``vi`` must not be
    memory-mapped: load it with ``mmap=False``). When a writer has saved a newer vector file since, the
    tombstones the delta needs may be gone, and its structure may have changed (exact to IVF): load afresh.
    """
    with store.snapshot() as gen:
        if gen == vi.generation:
            return vi
        # Read after the snapshot began: tombstones are dropped only up to a generation already saved.
        if not vi.mapped and vi.generation < gen and _generation_on_disk(store.paths) <= vi.generation:
            _apply_changes(vi.index, store, vi.generation)
            return replace(vi, generation=gen)
    return load(store, mmap=False)


def _generation_on_disk(paths: IndexPaths) -> int:
    """Like saved_generation, but a missing file is unknown ground, not generation 0."""
    try:
        return int(json.loads(paths.faiss_meta.read_text())["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1 << 62  # missing or unreadable: let load() decide what to do


def rebuild(vi: VectorIndex, store: Store, kind: str | None = None) -> VectorIndex:
    """The same chunks in the structure their number calls for (or ``kind``), from the stored vectors."""
    with store.snapshot() as gen:
        ids, vecs = store.vectors_since(0)
    vi.index = None  # free the old structure before building the new one
    index, layout = ann.build(ids, vecs, store.dim, kind)
    return VectorIndex(index, gen, vi.damaged, layout)


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
    ann.drop_lookup(vi.index)
    data = faiss.serialize_index(vi.index)  # written by Python, so a full disk is an OSError with its errno
    fd, tmp = tempfile.mkstemp(prefix=".vectors-", suffix=".tmp", dir=paths.root)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(memoryview(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        version = 1 if vi.layout.kind == "flat" else FORMAT  # flat files stay readable by older versions
        meta = {"format": version, "generation": vi.generation, "count": vi.size, "dim": vi.index.d}
        meta |= vi.layout.to_json()
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
    """Bring the vector file up to the database and save it; then forget tombstones it no longer needs.

    Here, in the writer, an index that has outgrown its structure is rebuilt from the stored vectors:
    exact search turns into IVF past ``ann.EXACT_LIMIT`` vectors, and IVF is retrained as it grows.
    """
    vi = load(store, writer=True)
    if ann.needs_rebuild(vi.size, vi.layout):
        vi = rebuild(vi, store)
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
