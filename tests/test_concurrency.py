"""Two processes on one index: a second writer waits and says so, never interleaves; readers never see an error.

Real processes: `semsearch index` runs as a subprocess while this process queries, checks and starts
another writer.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import write_corpus
from crashkit import Watched, corpus_plan
from polling import eventually


def big_corpus(root: Path, n: int = 24, seed: int = 5) -> Path:
    return write_corpus(root, corpus_plan(0, seed=seed, start_files=n)[0].files)


def chunk_generations(db: Path, root: Path) -> list[int]:
    """The write generations that added the chunks of the files under ``root``."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        prefix = bytes(root) + b"/"
        rows = conn.execute("SELECT c.gen, f.path FROM chunks c JOIN files f ON f.id = c.file_id").fetchall()
        return sorted(gen for gen, path in rows if path.startswith(prefix))
    finally:
        conn.close()


def test_second_writer_waits_with_a_message_and_never_interleaves(cli, corpus, tmp_path, isolated_home):
    cli("index", corpus)
    first_corpus, second_corpus = big_corpus(tmp_path / "first"), write_corpus(tmp_path / "second")
    db = isolated_home / "index.sqlite3"
    first = Watched(["index", str(first_corpus)])
    second = None
    try:
        eventually(lambda: first.saw("indexing") or first.proc.poll() is not None, "the first writer to start")
        assert first.proc.poll() is None, "".join(first.stderr)
        second = Watched(["index", str(second_corpus), "--quiet"])
        eventually(lambda: second.saw("waiting for it to finish") or second.proc.poll() is not None, "the message", 120)
        assert first.wait() == 0, "".join(first.stderr)
        assert second.wait() == 0, "".join(second.stderr)
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
    assert "Another semsearch process is writing to" in "".join(second.stderr)
    # never interleaved: every write of the second run came after every write of the first
    first_gens, second_gens = chunk_generations(db, first_corpus), chunk_generations(db, second_corpus)
    assert first_gens and second_gens and first_gens[-1] < second_gens[0], (first_gens, second_gens)
    report = json.loads(cli("check", "--json").stdout)
    assert report["consistent"], report["problems"]
    status = json.loads(cli("status", "--json").stdout)
    assert set(status["roots"]) == {str(corpus), str(first_corpus), str(second_corpus)}


def test_remove_waits_for_the_writer_with_a_message_then_removes(cli, corpus, isolated_home):
    from filelock import FileLock

    from semsearch.storage.layout import IndexPaths

    cli("index", corpus)
    before = json.loads(cli("status", "--json").stdout)
    lock = FileLock(str(IndexPaths(isolated_home).write_lock))
    with lock:  # what a writer holds while it works
        removal = Watched(["remove", str(corpus / "music")])
        try:
            eventually(
                lambda: removal.saw("waiting for it to finish") or removal.proc.poll() is not None, "the message"
            )
            assert removal.proc.poll() is None, "".join(removal.stderr)
            assert json.loads(cli("status", "--json").stdout)["generation"] == before["generation"]
        except BaseException:
            removal.kill()
            raise
    assert removal.wait() == 0, "".join(removal.stderr)
    assert "Removed 1 files" in removal.stdout
    assert json.loads(cli("status", "--json").stdout)["files"] == before["files"] - 1


@pytest.mark.slow
def test_queries_status_and_check_during_indexing_see_a_consistent_index_and_never_fail(
    cli, corpus, tmp_path, isolated_home
):
    cli("index", corpus)
    more = big_corpus(tmp_path / "more", n=24, seed=6)
    writer = Watched(["index", str(more)])
    during = 0
    try:
        while writer.proc.poll() is None:
            result = cli("query", "sailing a boat in the wind", "--json", "-k", "5")
            assert result.exit_code == 0, result.stderr
            for hit in map(json.loads, result.stdout.splitlines()):
                lines = Path(hit["abspath"]).read_text().split("\n")
                # the chunk is the file's text at the lines it names: never half of a batch, never stale rows
                assert hit["text"].split("\n")[0] == lines[hit["start_line"] - 1]
                assert hit["text"].split("\n")[-1] == lines[hit["end_line"] - 1]
            status = cli("status", "--json")
            assert status.exit_code == 0, status.stderr
            check = cli("check", "--json")
            assert check.exit_code == 0, check.stdout + check.stderr
            if writer.proc.poll() is None:
                during += 1
        assert writer.wait() == 0, "".join(writer.stderr)
    finally:
        writer.kill()
    assert during >= 3  # the loop really ran while the other process was writing
    final = json.loads(cli("status", "--json").stdout)
    assert final["files"] == 6 + 24 and final["vectors_current"]
