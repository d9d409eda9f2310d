"""Every command against a PostgreSQL store (a real server), beside the embedded store; writers at once; faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import installed_command, write_corpus

QUERIES = ["how do I rotate the api keys", "bread dough overnight", "retry with exponential backoff", "tomato"]


@pytest.fixture
def pg_store(pg_url, monkeypatch) -> str:
    """The PostgreSQL store selected through SEMSEARCH_STORE for the test's commands."""
    monkeypatch.setenv("SEMSEARCH_STORE", pg_url)
    return pg_url


def _hits(cli, *args) -> list[dict]:
    result = cli("query", *args, "--json")
    assert result.exit_code in (0, 1), result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_index_and_query_like_the_embedded_store(cli, corpus, pg_url, tmp_path, monkeypatch):
    """The same hits, in the same order, from both stores, in every mode (scores agree to float precision)."""
    embedded = tmp_path / "embedded"
    assert cli("index", str(corpus), "--index", str(embedded)).exit_code == 0
    result = cli("index", str(corpus), "--store", pg_url)
    assert result.exit_code == 0, result.output
    assert "6 added" in result.stdout
    for mode in ("hybrid", "semantic", "keyword"):
        for q in QUERIES:
            ours = _hits(cli, q, "--mode", mode, "--store", pg_url, "-k", "4")
            theirs = _hits(cli, q, "--mode", mode, "--index", str(embedded), "-k", "4")
            assert [(h["path"], h["start_line"]) for h in ours] == [(h["path"], h["start_line"]) for h in theirs], (
                mode,
                q,
            )
            assert [h["score"] for h in ours] == pytest.approx([h["score"] for h in theirs], abs=1e-4), (mode, q)
    # --explain, other formats and --queries go through the same store
    explained = cli("query", "rotate api keys", "--explain", "--store", pg_url, "-k", "1")
    assert explained.exit_code == 0 and "dense #1" in explained.stdout and "keyword #1" in explained.stdout
    queries = tmp_path / "queries.txt"
    queries.write_text("sourdough starter\nguitar chords\n")
    batch = cli("query", "--queries", str(queries), "--store", pg_url, "-k", "1", "--json")
    assert batch.exit_code == 0, batch.output
    paths = [json.loads(line)["path"] for line in batch.stdout.splitlines() if line.strip()]
    assert any("sourdough" in p for p in paths) and any("guitar" in p for p in paths)
    assert cli("query", "zzzqqqxxy", "--mode", "keyword", "--store", pg_url).exit_code == 1


def test_status_check_remove_and_reindex(cli, corpus, pg_store):
    (corpus / "kitchen" / "copy.txt").write_text((corpus / "kitchen" / "sourdough.txt").read_text())
    assert cli("index", str(corpus)).exit_code == 0
    status = json.loads(cli("status", "--json").stdout)
    assert status["files"] == 7 and status["chunks"] >= 6 and status["roots"] == [str(corpus)]
    assert "postgresql://" in status["index_dir"]
    assert cli("check").exit_code == 0
    (corpus / "music" / "guitar.txt").write_text("Practising the ukulele instead: four strings, easy chords.\n")
    (corpus / "travel" / "checklist.rst").unlink()
    result = cli("index")
    assert "1 updated" in result.stdout and "1 removed" in result.stdout, result.output
    assert _hits(cli, "ukulele strings", "-k", "1")[0]["path"].endswith("guitar.txt")
    removed = cli("remove", str(corpus / "garden"))
    assert removed.exit_code == 0 and "1 files" in removed.stdout
    assert json.loads(cli("status", "--json").stdout)["files"] == 5
    assert all("garden" not in h["path"] for h in _hits(cli, "tomato seedlings", "-k", "5"))
    assert cli("check").exit_code == 0
    assert cli("similar", str(corpus / "kitchen" / "sourdough.txt"), "-k", "2").exit_code == 0
    dupes = cli("dupes")
    assert dupes.exit_code == 0 and "copy.txt" in dupes.stdout and "sourdough.txt" in dupes.stdout
    assert cli("topics", "-n", "2").exit_code == 0


def test_config_file_selects_the_store_and_passwords_never_show(semsearch_cmd, corpus, pg_url, tmp_path):
    """``store =`` in a project file; a password in the URL (trust auth ignores it) is masked in every output."""
    url = pg_url.replace("postgres@", "postgres:Sup3rSecret@")
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".semsearch.toml").write_text(f'store = "{url}"\n')
    outputs = []
    for args in (["index", str(corpus)], ["status"], ["status", "--json"], ["config"], ["config", "--json"],
                 ["query", "api keys", "-k", "1"], ["check"]):  # fmt: skip
        done = semsearch_cmd(*args, cwd=project)
        assert done.returncode == 0, (args, done.stderr)
        outputs.append(done.stdout + done.stderr)
    text = "\n".join(outputs)
    assert "Sup3rSecret" not in text and "****" in text
    assert "credentials.md" in outputs[5]
    bad = semsearch_cmd("status", cwd=project, env={"SEMSEARCH_STORE": url.replace("?host=", "x?host=/nowhere")})
    assert bad.returncode == 2 and "Sup3rSecret" not in bad.stderr


# -- faults: one sentence on stderr, exit 2, nothing changed ------------------------------------------------------


def _one_sentence(result) -> str:
    err = result.stderr.strip()
    assert err.startswith("semsearch: ") and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_faults(cli, corpus, pg_server, pg_url, tmp_path):
    unreachable = f"postgresql://nobody:pw@/db?host={tmp_path}/nowhere"
    result = cli("status", "--store", unreachable)
    assert result.exit_code == 2 and "Cannot connect" in _one_sentence(result) and "pw@" not in result.stderr
    result = cli("index", str(corpus), "--store", "postgresql://me@/db?colour=red")
    assert result.exit_code == 2 and "not a valid PostgreSQL URL" in _one_sentence(result)
    result = cli("index", str(corpus), "--store", "mysql://me@host/db")
    assert result.exit_code == 2 and "postgresql://" in _one_sentence(result)

    plain = pg_server.create_database("plain_db", vector=False)
    result = cli("index", str(corpus), "--store", plain)
    assert result.exit_code == 2 and "CREATE EXTENSION vector" in _one_sentence(result)
    assert (
        pg_server.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'semsearch'", database="plain_db").strip()
        == "0"
    )

    assert cli("query", "keys", "--store", pg_url).exit_code == 2  # no index there yet
    assert "No index 'semsearch'" in cli("status", "--store", pg_url).stderr

    assert cli("index", str(corpus), "--store", pg_url).exit_code == 0
    db = pg_url.split("/")[3].split("?")[0]
    pg_server.psql("CREATE ROLE cli_reader LOGIN")
    pg_server.psql("GRANT USAGE ON SCHEMA semsearch TO cli_reader; GRANT SELECT ON ALL TABLES IN SCHEMA semsearch TO cli_reader",
                   database=db)  # fmt: skip
    cli_reader = pg_url.replace("postgres@", "cli_reader@")
    assert _hits(cli, "api keys", "--store", cli_reader, "-k", "1")[0]["path"].endswith("credentials.md")  # reads
    (corpus / "new.md").write_text("A new note about compost heaps.\n")
    before = pg_server.psql("SELECT count(*) FROM semsearch.files", database=db)
    result = cli("index", str(corpus), "--store", cli_reader)
    assert result.exit_code == 2 and "ermission denied" in _one_sentence(result)
    assert pg_server.psql("SELECT count(*) FROM semsearch.files", database=db) == before
    pg_server.psql("REVOKE USAGE ON SCHEMA semsearch FROM cli_reader", database=db)
    result = cli("status", "--store", cli_reader)
    assert result.exit_code == 2 and "GRANT USAGE ON SCHEMA semsearch TO cli_reader" in _one_sentence(result)

    other_model = tmp_path / "other-model"
    result = cli("index", str(corpus), "--store", pg_url, "--model", str(other_model))
    assert result.exit_code == 2
    pg_server.psql("UPDATE semsearch.meta SET value = 'someone-else' WHERE key = 'model_fingerprint'", database=db)
    result = cli("query", "api keys", "--store", pg_url)
    assert result.exit_code == 2 and "was built with the model" in _one_sentence(result)
    pg_server.psql("UPDATE semsearch.meta SET value = '99' WHERE key = 'format_version'", database=db)
    result = cli("index", str(corpus), "--store", pg_url)
    assert result.exit_code == 2 and "newer semsearch" in _one_sentence(result)
    assert pg_server.psql("SELECT count(*) FROM semsearch.files", database=db) == before


# -- several writers, interrupted writers ----------------------------------------------------------------------


def _spawn(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        installed_command() + [str(a) for a in args],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _many_files(root: Path, n: int, words: str) -> Path:
    files = {
        f"part{i // 50}/note{i}.md": f"# Note {i}\n\n{words} number {i}. " + "Filler sentence. " * 40 for i in range(n)
    }
    return write_corpus(root, files)


def _count(pg_server, db: str, sql: str) -> int:
    return int(pg_server.psql(sql, database=db).strip() or 0)


def test_two_writers_at_once_different_and_same_roots(cli, pg_server, pg_url, tmp_path):
    a = _many_files(tmp_path / "a", 60, "Apples and pears")
    b = _many_files(tmp_path / "b", 60, "Boats and harbours")
    assert cli("index", str(a), "--store", pg_url).exit_code == 0  # made once; then writers race
    shutil_touch = [p for p in a.rglob("*.md")][:20]
    for p in shutil_touch:
        p.write_text(p.read_text() + "\nEdited.\n")
    procs = [
        _spawn(["index", str(b), "--store", pg_url, "-q"]),
        _spawn(["index", str(a), "--store", pg_url, "-q"]),
        _spawn(["index", str(a), "--store", pg_url, "-q"]),  # the same root from a second process
        _spawn(["index", str(b), "--store", pg_url, "-q", "--root-name", "fileserver"]),  # another "machine"
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    db = pg_url.split("/")[3].split("?")[0]
    assert _count(pg_server, db, "SELECT count(*) FROM semsearch.files") == 60 + 60 + 60
    assert _count(pg_server, db, "SELECT count(*) FROM semsearch.files WHERE origin = 'fileserver'") == 60
    # every edited file holds exactly its new chunks, once
    assert _count(pg_server, db, "SELECT count(*) FROM semsearch.chunks WHERE text LIKE '%Edited.%'") == 20
    check = cli("check", "--json", "--store", pg_url)
    assert check.exit_code == 0, check.stdout
    hits = _hits(cli, "boats harbours number 7", "--store", pg_url, "-k", "3", "--mode", "keyword")
    assert any(h["path"].startswith("fileserver:") for h in hits)


def _wait_for(predicate, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_kill_9_of_a_writer_leaves_it_consistent_and_the_next_run_completes(cli, pg_server, pg_url, tmp_path):
    root = _many_files(tmp_path / "big", 400, "Crash test")
    db = pg_url.split("/")[3].split("?")[0]
    assert cli("index", str(root / "part0"), "--store", pg_url).exit_code == 0  # the schema exists before
    proc = _spawn(["index", str(root), "--store", pg_url, "-q"])
    _wait_for(lambda: _count(pg_server, db, "SELECT count(*) FROM semsearch.files") >= 80 or proc.poll() is not None)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the writer finished before it could be killed"
    kept = _count(pg_server, db, "SELECT count(*) FROM semsearch.files")
    assert 50 <= kept < 400
    assert cli("check", "--store", pg_url).exit_code == 0  # no half file, statistics in step
    result = cli("index", str(root), "--store", pg_url)
    assert result.exit_code == 0 and f"{400 - kept} added" in result.stdout, result.stdout
    assert cli("check", "--store", pg_url).exit_code == 0


def test_a_lost_connection_is_retried_and_the_run_completes(cli, pg_server, pg_url, tmp_path):
    root = _many_files(tmp_path / "big", 400, "Lost connection")
    db = pg_url.split("/")[3].split("?")[0]
    assert cli("index", str(root / "part0"), "--store", pg_url).exit_code == 0
    proc = _spawn(["index", str(root), "--store", pg_url, "-q"])
    _wait_for(lambda: _count(pg_server, db, "SELECT count(*) FROM semsearch.files") >= 80 or proc.poll() is not None)
    ended = _count(pg_server, db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                   " WHERE application_name = 'semsearch' AND pid <> pg_backend_pid()")  # fmt: skip
    out, err = proc.communicate(timeout=300)
    # (the writer may hold a second connection at that moment, e.g. while it opens the store: both are ended)
    assert ended >= 1, "the writer finished before its connection could be ended"
    assert proc.returncode == 0, (out, err)
    assert "trying again" in err and "Traceback" not in err, err  # it noticed, reconnected and went on
    assert _count(pg_server, db, "SELECT count(*) FROM semsearch.files") == 400
    check = cli("check", "--json", "--store", pg_url)
    assert check.exit_code == 0, check.stdout
    result = cli("index", str(root), "--store", pg_url)
    assert result.exit_code == 0 and "0 added" in result.stdout, result.stdout


def test_a_connection_that_stays_lost_is_one_sentence_and_loses_nothing_committed(cli, pg_server, pg_url, tmp_path):
    root = _many_files(tmp_path / "big", 400, "Lost for good")
    db = pg_url.split("/")[3].split("?")[0]
    pg_server.psql("CREATE ROLE lost_writer LOGIN SUPERUSER")
    url = pg_url.replace("postgres@", "lost_writer@")
    assert cli("index", str(root / "part0"), "--store", url).exit_code == 0
    proc = _spawn(["index", str(root), "--store", url, "-q"])
    _wait_for(lambda: _count(pg_server, db, "SELECT count(*) FROM semsearch.files") >= 80 or proc.poll() is not None)
    pg_server.psql("ALTER ROLE lost_writer NOLOGIN")  # it cannot come back
    ended = _count(pg_server, db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                   " WHERE usename = 'lost_writer'")  # fmt: skip
    out, err = proc.communicate(timeout=300)
    # (the writer may hold a second connection at that moment, e.g. while it opens the store: both are ended)
    assert ended >= 1, "the writer finished before its connection could be ended"
    assert proc.returncode == 2, (out, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("semsearch: Lost the connection") and "after 5 attempts" in last, err
    assert "not permitted to log in" in last and "Traceback" not in err, err
    kept = _count(pg_server, db, "SELECT count(*) FROM semsearch.files")
    pg_server.psql("ALTER ROLE lost_writer LOGIN")
    assert cli("check", "--store", url).exit_code == 0
    result = cli("index", str(root), "--store", url)
    assert result.exit_code == 0 and f"{400 - kept} added" in result.stdout, result.stdout


# -- the watcher and the MCP server over a PostgreSQL store --------------------------------------------------------


def test_background_watcher_and_warm_queries_on_a_postgresql_store(cli, corpus, semsearch_cmd, pg_store):
    import re

    from test_watch import eventually

    from semsearch.config import resolve
    from semsearch.search.hits import QueryOptions
    from semsearch.watcher.client import ask_watcher

    assert cli("index", str(corpus)).exit_code == 0
    folder = resolve().index  # this machine's folder of the PostgreSQL index (socket, log)
    started = semsearch_cmd("watch", "--background", "--debounce", "0.2")
    assert started.returncode == 0, started.stderr
    pid = int(re.search(r"pid (\d+)", started.stdout).group(1))
    try:
        eventually(
            lambda: ask_watcher(folder, QueryOptions("baking bread", show_all=True)), "the watcher to answer queries"
        )
        query = semsearch_cmd("query", "baking bread at home", "--json", "-k", "1")
        assert query.returncode == 0 and json.loads(query.stdout)["path"].endswith("sourdough.txt")
        (corpus / "kitchen" / "sourdough.txt").write_text("Brewing coffee: grind the beans coarse for a French press.")

        def edit_is_served():
            hits = ask_watcher(folder, QueryOptions("making coffee", k=1, show_all=True))
            return hits and "coffee" in hits[0].text

        eventually(edit_is_served, "the watcher to index an edit into PostgreSQL")
        # and the edit is in the database itself, for every other machine
        hits = _hits(cli, "making coffee", "-k", "1", "--mode", "keyword")
        assert hits[0]["path"].endswith("sourdough.txt")
    finally:
        stopped = semsearch_cmd("watch", "stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    assert cli("check").exit_code == 0


def test_a_watcher_under_a_root_name_follows_that_names_roots(cli, corpus, semsearch_cmd, pg_store):
    import re

    from test_watch import eventually

    assert cli("index", str(corpus), "--root-name", "fileserver").exit_code == 0
    bad = semsearch_cmd("watch", "--background", "--root-name", "file:server")
    assert bad.returncode == 2 and "--root-name 'file:server' must be" in bad.stderr
    # no path given: the roots recorded under the name (this machine's host has none)
    started = semsearch_cmd("watch", "--background", "--debounce", "0.2", "--root-name", "fileserver")
    assert started.returncode == 0 and "Watching 1 root" in started.stdout, started.stderr + started.stdout
    pid = int(re.search(r"pid (\d+)", started.stdout).group(1))
    try:
        (corpus / "kitchen" / "sourdough.txt").write_text("Brewing coffee: grind the beans coarse for a French press.")

        def edit_is_stored():
            hits = _hits(cli, "grind coffee beans", "-k", "1", "--mode", "keyword")
            return hits and "coffee" in hits[0]["text"]

        eventually(edit_is_stored, "the watcher to index an edit under its root name")
        # the watcher answers warm queries asked under its name; asked as this machine, it leaves the query to
        # the asker's process, which shows the file as another origin's
        from semsearch.config import resolve
        from semsearch.search.hits import QueryOptions
        from semsearch.storespec import set_root_name
        from semsearch.watcher.client import ask_watcher

        folder, options = resolve().index, QueryOptions("grind coffee beans", k=1, show_all=True)
        set_root_name("fileserver")
        try:
            eventually(lambda: ask_watcher(folder, options), "the watcher to answer under its root name")
            assert str(ask_watcher(folder, options)[0].path) == str(corpus / "kitchen" / "sourdough.txt")
        finally:
            set_root_name(None)
        assert ask_watcher(folder, options) is None
        hits = _hits(cli, "grind coffee beans", "-k", "1", "--mode", "keyword")
        assert hits[0]["path"] == f"fileserver:{corpus / 'kitchen' / 'sourdough.txt'}"
    finally:
        stopped = semsearch_cmd("watch", "stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    status = json.loads(cli("status", "--json").stdout)
    assert status["roots"] == [f"fileserver:{corpus}"]  # nothing recorded under this machine's name
    assert cli("check").exit_code == 0


def test_mcp_answers_from_a_postgresql_store(cli, corpus, pg_url, tmp_path):
    import anyio
    from test_mcp import _session

    assert cli("index", str(corpus), "--store", pg_url).exit_code == 0
    os.environ["SEMSEARCH_STORE"] = pg_url  # _session passes only a few variables: the store comes as --index
    from semsearch.config import resolve

    folder = resolve().index
    del os.environ["SEMSEARCH_STORE"]
    calls = {"search": ("search", {"query": "baking a loaf of bread at home", "k": 1}), "status": ("status", {})}
    with open(tmp_path / "server-stderr.txt", "w") as errlog:
        results = anyio.run(_session, folder, corpus, errlog, calls)
    hits = results["search"].structured_content["hits"]
    assert hits[0]["abspath"] == str(corpus / "kitchen" / "sourdough.txt")
    assert "postgresql://" in results["status"].structured_content["index_dir"]


def test_a_root_name_records_and_removes_its_own_files(cli, corpus, pg_store):
    assert cli("index", str(corpus), "--root-name", "fileserver").exit_code == 0
    hits = _hits(cli, "sourdough starter", "-k", "1")
    assert hits[0]["path"] == f"fileserver:{corpus / 'kitchen' / 'sourdough.txt'}"  # not taken for a local file
    status = json.loads(cli("status", "--json").stdout)
    assert status["roots"] == [f"fileserver:{corpus}"]
    assert cli("remove", str(corpus / "kitchen")).exit_code == 2  # this machine has no such files
    removed = cli("remove", str(corpus / "kitchen"), "--root-name", "fileserver")
    assert removed.exit_code == 0 and "1 files" in removed.stdout
    assert json.loads(cli("status", "--json").stdout)["files"] == 5


def test_check_notes_a_graph_an_older_version_built(cli, corpus, pg_server, pg_store):
    """A vector graph built with older parameters (ef_construction 64 until 2026-12-02) is not an inconsistency:
    ``check`` says so in a note (exit 0) with what to run, and ``index --rebuild`` makes the note go."""
    assert cli("index", str(corpus)).exit_code == 0
    fresh = cli("check")
    assert fresh.exit_code == 0 and "note:" not in fresh.stdout, fresh.stdout
    db = pg_store.split("/")[3].split("?")[0]
    pg_server.psql(
        "DROP INDEX semsearch.chunks_vector; CREATE INDEX chunks_vector ON semsearch.chunks"
        " USING hnsw (vector vector_ip_ops)",  # pgvector's own defaults: m 16, ef_construction 64
        database=db,
    )
    old = cli("check")
    assert old.exit_code == 0 and "OK: the index is consistent." in old.stdout
    assert "note: The vector graph was built with m=16 and ef_construction=64" in old.stdout
    assert "semsearch index --rebuild" in old.stdout
    assert any("ef_construction=64" in n for n in json.loads(cli("check", "--json").stdout)["notes"])
    assert cli("index", "--rebuild").exit_code == 0
    assert "note:" not in cli("check").stdout
