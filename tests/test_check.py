"""`semsearch check` says an index is consistent when it is, and names each kind of damage when it is not."""

from __future__ import annotations

import json
import shutil
import sqlite3

import faiss
import numpy as np
import pytest


@pytest.fixture
def indexed(cli, corpus, isolated_home):
    assert cli("index", corpus).exit_code == 0
    return isolated_home


def check_json(cli) -> tuple[int, dict]:
    result = cli("check", "--json")
    return result.exit_code, json.loads(result.stdout)


def db(index_dir) -> sqlite3.Connection:
    return sqlite3.connect(index_dir / "index.sqlite3", isolation_level=None)


def test_fresh_index_is_consistent(cli, indexed):
    code, report = check_json(cli)
    assert code == 0 and report["consistent"] and report["problems"] == []
    assert report["chunks"] == report["vectors"] == report["embeddings"] > 0
    assert report["saved_generation"] == report["generation"]
    text = cli("check")
    assert text.exit_code == 0 and "OK: the index is consistent." in text.stdout


def test_chunk_without_stored_vector_is_a_problem(cli, indexed):
    with db(indexed) as conn:
        conn.execute("DELETE FROM embeddings WHERE text_hash = (SELECT text_hash FROM chunks LIMIT 1)")
    code, report = check_json(cli)
    assert code == 1 and not report["consistent"]
    assert any("1 chunk has no stored vector" in p for p in report["problems"])
    text = cli("check")
    assert text.exit_code == 1 and "problem: 1 chunk has no stored vector" in text.stdout


def test_vector_without_chunk_is_a_problem(cli, indexed):
    with db(indexed) as conn:  # a chunk deleted behind the index's back: no tombstone, so FAISS keeps its vector
        conn.execute("DELETE FROM chunks WHERE id = (SELECT MIN(id) FROM chunks)")
    code, report = check_json(cli)
    assert code == 1 and any("1 vector has no chunk" in p for p in report["problems"])


def test_chunk_missing_from_the_vector_file_is_a_problem(cli, indexed):
    meta = json.loads((indexed / "vectors.json").read_text())
    path = indexed / f"vectors-{meta['generation']}.faiss"
    index = faiss.read_index(str(path))
    dropped = int(faiss.vector_to_array(index.id_map)[0])
    index.remove_ids(faiss.IDSelectorBatch(np.array([dropped], dtype=np.int64)))
    faiss.write_index(index, str(path))
    meta["count"] -= 1
    (indexed / "vectors.json").write_text(json.dumps(meta))
    code, report = check_json(cli)
    assert code == 1
    assert any("1 chunk is missing from the vector structure" in p and str(dropped) in p for p in report["problems"])
    # the way out the sentence names works, without re-embedding
    result = cli("index", "--rebuild")
    assert result.exit_code == 0 and "0 chunks embedded" in result.stdout
    code, report = check_json(cli)
    assert code == 0 and report["consistent"], report["problems"]


def test_wrong_vector_for_a_chunk_is_a_problem(cli, indexed):
    with db(indexed) as conn:
        h = conn.execute("SELECT text_hash FROM chunks LIMIT 1").fetchone()[0]
        conn.execute("UPDATE embeddings SET vector = ? WHERE text_hash = ?", (np.zeros(384, np.float32).tobytes(), h))
    code, report = check_json(cli)
    assert code == 1 and any("differs from the one stored" in p for p in report["problems"])


def test_vector_file_behind_the_database_is_a_note_not_a_problem(cli, indexed, corpus):
    from semsearch.index.indexer import Indexer, IndexOptions

    meta_before = (indexed / "vectors.json").read_text()
    saved = {p.name: p.read_bytes() for p in indexed.glob("vectors-*.faiss")}
    (corpus / "new.txt").write_text("Owls hunt at night over the meadow behind the barn.")
    Indexer(indexed).run(IndexOptions(paths=[corpus]))
    # put the old vector file back, as if the run had been killed before saving its own
    for p in indexed.glob("vectors-*.faiss"):
        p.unlink()
    for name, data in saved.items():
        (indexed / name).write_bytes(data)
    (indexed / "vectors.json").write_text(meta_before)
    code, report = check_json(cli)
    assert code == 0 and report["consistent"], report
    assert report["saved_generation"] < report["generation"]
    assert any("behind the database" in n for n in report["notes"])


def test_check_on_a_missing_index_is_a_clear_error(cli):
    result = cli("check")
    assert result.exit_code == 2 and "No index" in result.stderr


def test_files_left_by_a_run_killed_while_saving_are_noted_then_removed_by_the_next_index(cli, indexed):
    # what SIGKILL leaves in the middle of vectors.save(): a half-written vector file and JSON, and a whole
    # vector file written under its new name that vectors.json never came to name
    generation = json.loads((indexed / "vectors.json").read_text())["generation"]
    (indexed / ".vectors-k1ll3d.tmp").write_bytes(b"IxM2" + b"\0" * 1000)
    (indexed / ".vectors.json-k1ll3d.tmp").write_text('{"generation": ')
    shutil.copy(indexed / f"vectors-{generation}.faiss", indexed / f"vectors-{generation + 1}.faiss")
    code, report = check_json(cli)
    assert code == 0 and any("3 files left by an interrupted run" in n for n in report["notes"])
    assert cli("index").exit_code == 0
    names = sorted(p.name for p in indexed.iterdir())
    assert not [n for n in names if n.endswith(".tmp")], names
    assert len([n for n in names if n.endswith(".faiss")]) == 1, names
    code, report = check_json(cli)
    assert code == 0 and report["notes"] == []
