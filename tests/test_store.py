"""The store stays consistent across interruptions, and the vector file always follows the database."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from semsearch.index.indexer import Indexer, IndexOptions
from semsearch.storage import vectors
from semsearch.storage.layout import IndexPaths
from semsearch.storage.store import Store


def chunk_ids(store: Store) -> set[int]:
    return {r[0] for r in store.conn.execute("SELECT id FROM chunks")}


def assert_consistent(index_dir) -> None:
    store = Store.open(IndexPaths(index_dir))
    try:
        vi = vectors.load(store)
        assert set(vi.ids().tolist()) == chunk_ids(store)
        missing = store.conn.execute(
            "SELECT COUNT(*) FROM chunks c LEFT JOIN embeddings e ON e.text_hash = c.text_hash WHERE e.text_hash IS NULL"
        ).fetchone()[0]
        assert missing == 0
    finally:
        store.close()


def test_interrupted_run_keeps_embedded_work_and_next_run_finishes(corpus, isolated_home, monkeypatch, cli):
    import semsearch.index.indexer as indexer_module

    calls = {"n": 0}
    real_flush = indexer_module.Indexer._flush

    def flush_then_interrupt(self, *args, **kwargs):
        calls["n"] += 1
        real_flush(self, *args, **kwargs)
        raise KeyboardInterrupt  # as if Ctrl-C arrived right after the first batch was stored

    monkeypatch.setattr(indexer_module, "EMBED_BATCH", 2)
    monkeypatch.setattr(indexer_module.Indexer, "_flush", flush_then_interrupt)
    report = Indexer(isolated_home).run(IndexOptions(paths=[corpus]))
    assert report.interrupted and 0 < report.added < 6
    first_embedded = report.chunks_embedded
    assert_consistent(isolated_home)

    monkeypatch.setattr(indexer_module.Indexer, "_flush", real_flush)
    report = Indexer(isolated_home).run(IndexOptions(paths=[corpus]))
    assert not report.interrupted and report.added == 6 - (6 - report.added)  # the rest is added now
    status = json.loads(cli("status", "--json").stdout)
    assert status["files"] == 6
    # nothing embedded in the first run was embedded again
    total = status["chunks"]
    assert report.chunks_embedded + first_embedded >= total - 1
    assert_consistent(isolated_home)


def test_stale_vector_file_is_caught_up_from_the_database(corpus, isolated_home, cli):
    cli("index", corpus)
    paths = IndexPaths(isolated_home)
    saved = json.loads(paths.faiss_meta.read_text())
    # a crash after a database commit but before the vector file is saved: change the DB behind its back
    (corpus / "music/guitar.txt").unlink()
    (corpus / "new.md").write_text("# Bees\n\nThe hive swarmed in June and settled in the apple tree.")
    import semsearch.storage.vectors as vectors_module

    real_save = vectors_module.save
    vectors_module.save = lambda vi, paths: None  # the vector file is never written: the "crash"
    try:
        cli("index", corpus)
    finally:
        vectors_module.save = real_save
    assert json.loads(paths.faiss_meta.read_text())["generation"] == saved["generation"]
    assert_consistent(isolated_home)
    hits = cli("query", "honey bees swarming", "-l", "-k", "1").stdout
    assert hits.strip().endswith("new.md")
    assert "guitar" not in cli("query", "guitar practice", "-l", "-k", "10").stdout


def test_damaged_vector_file_is_rebuilt_without_reembedding(corpus, isolated_home, cli):
    cli("index", corpus)
    paths = IndexPaths(isolated_home)
    gen = json.loads(paths.faiss_meta.read_text())["generation"]
    data = paths.faiss_file(gen).read_bytes()
    paths.faiss_file(gen).write_bytes(data[: len(data) // 2])
    result = cli("query", "baking bread", "-l", "-k", "1")
    assert result.exit_code == 0 and result.stdout.strip().endswith("sourdough.txt")
    assert "rebuilt in memory" in result.stderr and "--rebuild" in result.stderr
    result = cli("index", "--rebuild")
    assert re.search(r"\b0 chunks embedded", result.stdout)
    assert "rebuilt the vector file" in result.stderr
    assert_consistent(isolated_home)


def test_vectors_are_normalized_and_ids_are_chunk_ids(corpus, isolated_home, cli):
    cli("index", corpus)
    store = Store.open(IndexPaths(isolated_home))
    try:
        vi = vectors.load(store)
        n = vi.size
        recon = np.vstack([vi.index.reconstruct(int(i)) for i in vi.ids()])
        assert recon.shape == (n, 384)
        assert np.allclose(np.linalg.norm(recon, axis=1), 1.0, atol=1e-4)
    finally:
        store.close()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_database_is_reported_not_recreated(corpus, isolated_home, cli, damage):
    cli("index", corpus)
    db = IndexPaths(isolated_home).db
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    data = db.read_bytes()
    db.write_bytes(data[:100] if damage == "truncate" else b"not a database" * 100)
    result = cli("query", "bread")
    assert result.exit_code == 2 and "damaged" in result.stderr
    assert db.read_bytes()[:14] == (data[:14] if damage == "truncate" else b"not a database")
