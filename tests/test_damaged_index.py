"""A damaged, truncated, lost or too-new index is detected on open and explained; the vector file is rebuilt."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest


@pytest.fixture
def indexed(cli, corpus, isolated_home):
    assert cli("index", corpus).exit_code == 0
    return isolated_home


def vector_file(index_dir):
    return index_dir / f"vectors-{json.loads((index_dir / 'vectors.json').read_text())['generation']}.faiss"


def embedded(output: str) -> int:
    return int(re.search(r"(\d+) chunks embedded", output).group(1))


def snapshot(index_dir) -> dict:
    """The index's files (not SQLite's shared-memory file, an empty WAL or the lock, which opening makes)."""
    return {
        p.name: p.read_bytes()
        for p in index_dir.iterdir()
        if p.is_file()
        and p.name != "write.lock"
        and not p.name.endswith("-shm")
        and not (p.name.endswith("-wal") and not p.stat().st_size)
    }


def assert_clear_error(result, *needles):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("semsearch: ") and result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_truncated_vector_file_is_rebuilt_by_a_query_and_by_index_with_a_notice(cli, indexed):
    path = vector_file(indexed)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = cli("query", "baking bread", "--json", "-k", "1")
    assert result.exit_code == 0 and json.loads(result.stdout)["path"].endswith("sourdough.txt")
    assert "rebuilt in memory" in result.stderr and "semsearch index --rebuild" in result.stderr
    check = cli("check")
    assert check.exit_code == 1 and "damaged" in check.stdout
    result = cli("index")
    assert result.exit_code == 0 and embedded(result.stdout) == 0
    assert "rebuilt the vector file from stored vectors" in result.stderr and "damaged" in result.stderr
    assert cli("check").exit_code == 0


def test_rebuild_restores_search_without_embedding_anything(cli, indexed):
    for path in indexed.glob("vectors*"):
        path.unlink()
    result = cli("index", "--rebuild")
    assert result.exit_code == 0 and embedded(result.stdout) == 0
    assert "rebuilt the vector file" in result.stderr
    assert json.loads(cli("check", "--json").stdout)["consistent"]
    hits = json.loads(cli("query", "learning to play an instrument", "--json", "-k", "1").stdout)
    assert hits["path"].endswith("guitar.txt")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_database_is_refused_with_a_clear_message_and_left_alone(cli, indexed, keep):
    db = indexed / "index.sqlite3"
    db.write_bytes(db.read_bytes()[: int(db.stat().st_size * keep) // 4096 * 4096])
    before = snapshot(indexed)
    for args in (["query", "bread"], ["status"], ["index"], ["check"], ["remove", "/nowhere"]):
        assert_clear_error(cli(*args), "damaged", str(db))
    assert snapshot(indexed) == before


def test_damaged_page_inside_the_database_is_a_clear_error(cli, indexed):
    db = indexed / "index.sqlite3"
    data = bytearray(db.read_bytes())
    page = 4096
    with sqlite3.connect(db) as conn:  # overwrite the pages of the chunks table with noise
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'chunks'").fetchone()[0]
    start = (root - 1) * page
    data[start : start + page] = bytes((i * 7 + 3) % 256 for i in range(page))
    db.write_bytes(bytes(data))
    result = cli("query", "bread")
    assert_clear_error(result, "damaged")
    check = cli("check")
    assert check.exit_code in (1, 2) and "Traceback" not in check.stderr
    assert "damaged" in (check.stdout + check.stderr)


def test_database_from_a_newer_semsearch_is_refused(cli, indexed):
    with sqlite3.connect(indexed / "index.sqlite3") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    before = snapshot(indexed)
    for args in (["query", "bread"], ["status"], ["index"], ["check"]):
        assert_clear_error(cli(*args), "newer semsearch (format 99)", "upgrade semsearch")
    assert snapshot(indexed) == before


def test_vector_file_from_a_newer_semsearch_is_rebuilt_not_misread(cli, indexed):
    meta = json.loads((indexed / "vectors.json").read_text())
    (indexed / "vectors.json").write_text(json.dumps(meta | {"format": 99}))
    result = cli("index")
    assert result.exit_code == 0 and "newer semsearch" in result.stderr and embedded(result.stdout) == 0
    assert json.loads((indexed / "vectors.json").read_text())["format"] == 1
    assert cli("check").exit_code == 0


def test_lost_database_is_reported_never_recreated_empty(cli, indexed, corpus):
    (indexed / "index.sqlite3").unlink()
    for args in (["index", corpus], ["index"], ["query", "bread"], ["status"], ["check"]):
        assert_clear_error(cli(*args), "index.sqlite3 is missing")
    assert not (indexed / "index.sqlite3").exists()


def test_lost_database_is_reported_even_when_only_a_vector_file_is_left(cli, indexed, corpus):
    # a run killed after removing vectors.json for --rebuild, then the database lost
    (indexed / "index.sqlite3").unlink()
    (indexed / "vectors.json").unlink()
    assert_clear_error(cli("index", corpus), "index.sqlite3 is missing")
    assert not (indexed / "index.sqlite3").exists()
