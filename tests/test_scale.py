"""Past a size threshold the index switches to approximate (IVF) search and keeps its results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import faiss
import numpy as np
import pytest

from semsearch.documents import Chunk
from semsearch.model.spec import resolve_model
from semsearch.storage import ann, vectors
from semsearch.storage.layout import IndexPaths
from semsearch.storage.store import Store, text_hash

DIM = 384
LIMIT = 2_000  # the switch, lowered so that a few thousand vectors cross it
PER_FILE = 50


def clustered_vectors(n: int, seed: int, clusters: int = 40, rank: int = 24) -> np.ndarray:
    """Unit vectors with the shape of embeddings: topics (clusters), each spread along a few directions of its own.

    Uniformly random vectors have no neighbours worth the name and make every approximate index look broken.
    """
    topics = np.random.default_rng(1000)  # the same topics for every sample: queries and chunks share them
    centers = topics.standard_normal((clusters, DIM))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    bases = topics.standard_normal((clusters, rank, DIM)) * (0.9 / np.sqrt(DIM))
    rng = np.random.default_rng(seed)
    which = rng.integers(0, clusters, n)
    spread = np.einsum("nr,nrd->nd", rng.standard_normal((n, rank)), bases[which])
    noise = rng.standard_normal((n, DIM)) * (0.25 / np.sqrt(DIM))
    out = (centers[which] + spread + noise).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def low_limit(monkeypatch):
    monkeypatch.setattr(ann, "EXACT_LIMIT", LIMIT)
    monkeypatch.setattr(ann, "BACK_TO_EXACT", LIMIT // 2)


class FakeCorpus:
    """Chunks and their vectors written straight into a real store, as the indexer would (no model needed)."""

    def __init__(self, root: Path):
        self.paths = IndexPaths(root)
        self.store = Store.create(self.paths, resolve_model(None), DIM)
        self.files = 0
        self.vectors: dict[int, np.ndarray] = {}  # chunk id -> vector

    def add_files(self, vecs: np.ndarray) -> list[int]:
        """One file per PER_FILE vectors; returns the new chunk ids."""
        texts = [f"chunk {self.files} {i} {np.random.default_rng(i).random()}" for i in range(len(vecs))]
        hashes = [text_hash(t) for t in texts]
        self.store.put_embeddings(hashes, vecs)
        before = self._max_id()
        with self.store.write() as gen:
            for start in range(0, len(vecs), PER_FILE):
                self.files += 1
                chunks = [Chunk(t, 1, 1) for t in texts[start : start + PER_FILE]]
                path = Path(f"/nowhere/f{self.files}.txt")
                self.store.replace_file(gen, path, 1, 1, f"{self.files:064x}", chunks)
        rows = self.store.conn.execute("SELECT c.id, c.text_hash FROM chunks c WHERE c.id > ?", (before,)).fetchall()
        by_hash = dict(zip(hashes, vecs))
        for cid, h in rows:
            self.vectors[cid] = by_hash[h]
        return [cid for cid, _ in rows]

    def replace_file(self, path: str, vecs: np.ndarray) -> tuple[list[int], list[int]]:
        """Give an existing file new chunks (its old ones are tombstoned); returns the old and the new ids."""
        texts = [f"new text {path} {i}" for i in range(len(vecs))]
        self.store.put_embeddings([text_hash(t) for t in texts], vecs)
        old = {r[0] for r in self.store.conn.execute("SELECT id FROM chunks")}
        with self.store.write() as gen:
            self.store.replace_file(gen, Path(path), 2, 2, "f" * 64, [Chunk(t, 1, 1) for t in texts])
        now = {r[0]: None for r in self.store.conn.execute("SELECT id FROM chunks")}
        gone = sorted(old - now.keys())
        for cid in gone:
            del self.vectors[cid]
        new = sorted(now.keys() - old)
        self.vectors.update(zip(new, vecs))
        return gone, new

    def delete_files(self, paths: list[str]) -> list[int]:
        rows = self.store.files()
        ids = [rows[Path(p)].id for p in paths]
        gone = [
            r[0]
            for r in self.store.conn.execute(
                f"SELECT id FROM chunks WHERE file_id IN ({','.join('?' * len(ids))})", ids
            )
        ]
        with self.store.write() as gen:
            self.store.delete_files(gen, ids)
        for cid in gone:
            del self.vectors[cid]
        return gone

    def _max_id(self) -> int:
        return self.store.conn.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()[0]

    def saved_meta(self) -> dict:
        return json.loads(self.paths.faiss_meta.read_text())

    def exact_top10(self, queries: np.ndarray) -> np.ndarray:
        ids = np.array(sorted(self.vectors), dtype=np.int64)
        matrix = np.vstack([self.vectors[i] for i in ids])
        _, pos = faiss.knn(queries, matrix, 10, metric=faiss.METRIC_INNER_PRODUCT)
        return ids[pos]


@pytest.fixture
def fake(tmp_path):
    corpus = FakeCorpus(tmp_path / "index")
    yield corpus
    corpus.store.close()


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found.tolist(), exact.tolist())]))


def test_index_stays_exact_below_the_limit_and_switches_to_ivf_past_it(low_limit, fake, cli):
    fake.add_files(clustered_vectors(LIMIT - 500, seed=1))
    vectors.save_and_prune(fake.store)
    assert fake.saved_meta()["kind"] == "flat" and fake.saved_meta()["format"] == 1
    assert json.loads(cli("status", "--json", "--index", fake.paths.root).stdout)["search"] == "exact"

    fake.add_files(clustered_vectors(2_500, seed=2))  # 4,000 in all: past the limit
    vectors.save_and_prune(fake.store)
    meta = fake.saved_meta()
    assert meta["kind"] == "ivf" and meta["count"] == len(fake.vectors) == 4_000
    assert meta["format"] == 2  # a semsearch that knows only exact files (format 1) rebuilds rather than misreads
    assert meta["nlist"] == ann.nlist_for(meta["count"]) and 1 <= meta["nprobe"] <= meta["nlist"]
    assert meta["recall"] >= ann.TARGET_RECALL
    status = cli("status", "--index", fake.paths.root).stdout
    assert f"approximate (IVF, {meta['nlist']} lists, {meta['nprobe']} searched per query)" in status

    vi = vectors.load(fake.store)
    assert vi.layout.kind == "ivf" and vi.layout.nprobe == meta["nprobe"]
    assert sorted(vi.ids().tolist()) == sorted(fake.vectors)
    queries = clustered_vectors(300, seed=3)  # not stored: fresh points of the same topics
    _, found = vi.search(queries, 10)
    assert recall_at_10(found, fake.exact_top10(queries)) >= 0.95


def test_deleted_and_replaced_chunks_are_honoured_by_the_ivf_index(low_limit, fake):
    fake.add_files(clustered_vectors(3_000, seed=4))
    vectors.save_and_prune(fake.store)
    assert fake.saved_meta()["kind"] == "ivf"
    saved_generation = fake.saved_meta()["generation"]

    before = dict(fake.vectors)
    deleted = fake.delete_files(["/nowhere/f3.txt", "/nowhere/f7.txt"])
    replaced, new_ids = fake.replace_file("/nowhere/f8.txt", clustered_vectors(PER_FILE, seed=5))
    gone = set(deleted) | set(replaced)
    assert len(gone) == 3 * PER_FILE and not gone & fake.vectors.keys()
    old_vectors = np.vstack([before[c] for c in sorted(gone)])
    new_vectors = np.vstack([fake.vectors[c] for c in new_ids])

    def check(vi: vectors.VectorIndex) -> None:
        assert vi.layout.kind == "ivf" and vi.size == len(fake.vectors)
        _, found = vi.search(old_vectors, 10)  # a removed chunk would be its own best match
        assert not gone & set(found.ravel().tolist())
        _, found = vi.search(new_vectors, 1)
        assert found[:, 0].tolist() == new_ids

    # a query process applies the changes to the saved (older) file in memory...
    vi = vectors.load(fake.store)
    assert fake.saved_meta()["generation"] == saved_generation and not vi.mapped
    check(vi)
    # ...and the writer saves them into the file, then forgets the tombstones
    vectors.save_and_prune(fake.store)
    assert fake.saved_meta()["kind"] == "ivf" and fake.saved_meta()["generation"] > saved_generation
    assert fake.store.tombstones_since(0).size == 0
    check(vectors.load(fake.store))


def test_ivf_is_retrained_as_it_grows_and_goes_back_to_exact_when_it_shrinks(low_limit, fake):
    fake.add_files(clustered_vectors(2_000, seed=6))
    vectors.save_and_prune(fake.store)
    assert fake.saved_meta()["trained_for"] == 2_000
    fake.add_files(clustered_vectors(1_000, seed=7))
    vectors.save_and_prune(fake.store)
    assert fake.saved_meta()["trained_for"] == 2_000  # new vectors go into the trained lists
    fake.add_files(clustered_vectors(1_500, seed=8))
    vectors.save_and_prune(fake.store)
    assert fake.saved_meta()["trained_for"] == 4_500  # more than twice what it was trained for
    fake.delete_files([f"/nowhere/f{i}.txt" for i in range(1, 80)])
    vectors.save_and_prune(fake.store)
    assert fake.saved_meta()["kind"] == "flat" and fake.saved_meta()["count"] == len(fake.vectors) < LIMIT // 2


def test_rebuild_restores_the_ivf_index_from_stored_vectors_without_reembedding(low_limit, fake, cli):
    fake.add_files(clustered_vectors(3_000, seed=9))
    vectors.save_and_prune(fake.store)
    queries = clustered_vectors(50, seed=10)
    _, before = vectors.load(fake.store).search(queries, 10)
    meta = fake.saved_meta()
    fake.paths.faiss_file(meta["generation"]).write_bytes(b"damaged")
    # Mark the ONNX export as impossible for this index (as it is for some models): making it takes a minute.
    fake.store.set_meta("onnx_failed", resolve_model(None).fingerprint)

    vi = vectors.load(fake.store)  # a query process can still search: exactly, built in memory
    assert vi.damaged and vi.layout.kind == "flat" and vi.size == 3_000
    result = cli("index", "--rebuild", "--index", fake.paths.root)
    assert result.exit_code == 0, result.stderr
    assert re.search(r"\b0 chunks embedded", result.stdout)
    rebuilt = fake.saved_meta()
    assert rebuilt["kind"] == "ivf" and rebuilt["count"] == 3_000
    assert {k: rebuilt[k] for k in ("nlist", "nprobe")} == {k: meta[k] for k in ("nlist", "nprobe")}
    _, after = vectors.load(fake.store).search(queries, 10)
    assert np.array_equal(before, after)  # the same vectors give the same index


@pytest.mark.parametrize("count", [1_200, 3_000], ids=["flat", "ivf"])
def test_memory_mapped_open_gives_the_same_hits_as_a_normal_read(low_limit, fake, monkeypatch, count):
    monkeypatch.setattr(vectors, "MAP_MIN", 1_000)
    fake.add_files(clustered_vectors(count, seed=11))
    vectors.save_and_prune(fake.store)
    queries = clustered_vectors(100, seed=12)
    mapped = vectors.load(fake.store)
    read = vectors.load(fake.store, mmap=False)
    assert mapped.mapped and not read.mapped
    assert mapped.layout == read.layout and mapped.layout.kind == ("ivf" if count > LIMIT else "flat")
    for k in (1, 10, 200):
        assert all(np.array_equal(a, b) for a, b in zip(mapped.search(queries, k), read.search(queries, k)))

    fake.delete_files(["/nowhere/f1.txt"])  # the file is now behind the database: read it, never map it
    behind = vectors.load(fake.store)
    assert not behind.mapped and behind.size == count - PER_FILE


def test_wide_searches_probe_more_lists_and_all_of_them_at_full_depth():
    layout = ann.Layout("ivf", nlist=64, nprobe=4, trained_for=6_400)
    assert ann.search_params(layout, 10, 6_400).nprobe == 4
    assert ann.search_params(layout, 400, 6_400).nprobe == 16
    assert ann.search_params(layout, 6_400, 6_400).nprobe == 64
    assert ann.search_params(ann.FLAT, 10, 6_400) is None


def test_vector_file_from_before_approximate_search_reads_as_exact():
    assert ann.Layout.from_json({"generation": 3, "count": 10, "dim": 384}) == ann.FLAT
    with pytest.raises(ValueError):
        ann.Layout.from_json({"kind": "hnsw"})


def test_ivf_index_gives_back_stored_vectors_by_id_mapped_or_read_and_check_passes(low_limit, fake, monkeypatch, cli):
    monkeypatch.setattr(vectors, "MAP_MIN", 1_000)
    fake.add_files(clustered_vectors(3_000, seed=13))
    vectors.save_and_prune(fake.store)
    some = np.array(sorted(fake.vectors)[::97], dtype=np.int64)
    for mmap in (True, False):
        vi = vectors.load(fake.store, mmap=mmap)
        assert vi.layout.kind == "ivf" and vi.mapped == mmap
        held = vi.reconstruct_batch(some)  # hybrid ranking scores keyword hits by their vector this way
        assert np.array_equal(held, np.vstack([fake.vectors[int(i)] for i in some]))
        assert np.array_equal(vi.reconstruct(int(some[0])), fake.vectors[int(some[0])])
        with pytest.raises(RuntimeError):
            vi.reconstruct(max(fake.vectors) + 1)  # a chunk it does not hold
        _, found = vi.search(held[:5], 1)
        assert found[:, 0].tolist() == some[:5].tolist()

    # the writer saves an index whose lookup map was built: the file does not keep the map
    fake.delete_files(["/nowhere/f2.txt"])
    vi = vectors.load(fake.store, writer=True)
    vi.reconstruct(int(some[0]))
    vectors.save(vi, fake.paths)
    saved = faiss.read_index(str(fake.paths.faiss_file(vi.generation)))
    assert saved.direct_map.type == faiss.DirectMap.NoMap and saved.ntotal == 3_000 - PER_FILE

    report = json.loads(cli("check", "--json", "--index", fake.paths.root).stdout)
    assert report["consistent"], report["problems"]
    assert report["vectors"] == report["chunks"] == 3_000 - PER_FILE


def test_copies_of_the_same_text_do_not_make_the_ivf_index_search_too_few_lists():
    """Folders copied several times hold each vector several times. Calibration counts distinct vectors:
    otherwise a vector's copies and its neighbours' copies fill its top 10 from its own list, too few lists
    get searched, and real queries (which match no stored vector exactly) lose recall."""
    rng = np.random.default_rng(3)
    # families of 4 close vectors (the versions of one passage), the families spread like embeddings
    base = np.repeat(clustered_vectors(1_000, seed=21), 4, axis=0)
    once = base + rng.standard_normal(base.shape).astype(np.float32) * (0.3 / np.sqrt(DIM))
    once = (once / np.linalg.norm(once, axis=1, keepdims=True)).astype(np.float32)
    copies = np.concatenate([once] * 8)
    _, single = ann.build_ivf(np.arange(len(once), dtype=np.int64), once, DIM, 64)
    index, copied = ann.build_ivf(np.arange(len(copies), dtype=np.int64), copies, DIM, 64)
    assert copied.nprobe >= single.nprobe / 2 and copied.recall >= ann.TARGET_RECALL

    queries = clustered_vectors(300, seed=22)  # fresh points: no stored vector equals them
    exact = faiss.knn(queries, once, 10, metric=faiss.METRIC_INNER_PRODUCT)[1]
    _, found = index.search(queries, 80, params=faiss.SearchParametersIVF(nprobe=copied.nprobe))
    distinct = np.array([list(dict.fromkeys(int(i) % len(once) for i in row if i >= 0))[:10] for row in found])
    assert recall_at_10(distinct, exact) >= 0.95
