"""`semsearch watch` with a real watchdog observer on folders under tmp_path: the index follows every change.

Watchers run in a thread of the test process (the model stays loaded); each expected change is polled for
with a bounded wait, never a fixed sleep. A change that must NOT reach the index is checked after a later
"barrier" file did reach it and the watcher is idle.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import write_corpus
from polling import WAIT, eventually

from semsearch.cli.light import run_light_query as run_fast
from semsearch.search.engine import search as search_in_process
from semsearch.search.hits import QueryOptions
from semsearch.storage.layout import IndexPaths
from semsearch.watcher.client import ask_watcher
from semsearch.watcher.daemon import Watcher, WatchOptions


@pytest.fixture
def start_watcher(isolated_home):
    """Start an in-process watcher (a thread) on the default index; stopped at the end of the test."""
    running: list[tuple[Watcher, threading.Thread]] = []

    def start(*paths: Path, debounce: float = 0.2, **options) -> Watcher:
        watcher = Watcher(isolated_home, WatchOptions(paths=list(paths), debounce=debounce, **options))
        failures: list[BaseException] = []

        def run():
            try:
                watcher.run()
            except BaseException as e:  # noqa: BLE001 - reported by the test
                failures.append(e)

        thread = threading.Thread(target=run, name="test-watcher", daemon=True)
        thread.start()
        running.append((watcher, thread))
        assert watcher.wait_ready(120) and not failures, failures
        watcher.thread = thread
        return watcher

    yield start
    for watcher, thread in running:
        watcher.stop()
        thread.join(60)
        assert not thread.is_alive(), "the watcher did not stop"


def files_found(cli) -> set[str]:
    """Every file the index can return (through the query command, files-only)."""
    result = cli("query", "anything at all", "-l", "--json", "-k", "1000")
    return {json.loads(line)["abspath"] for line in result.stdout.splitlines() if line.strip()}


def top_hit(cli, text: str) -> dict | None:
    lines = cli("query", text, "--json", "-k", "1").stdout.splitlines()
    return json.loads(lines[0]) if lines else None


def idle(watcher: Watcher) -> bool:
    return len(watcher.changes) == 0 and not watcher.busy


def through_barrier(cli, watcher: Watcher, folder: Path) -> None:
    """Write a file, wait until the index has it and the watcher is idle: earlier changes have been handled."""
    barrier = folder / f"barrier-{time.monotonic_ns()}.txt"
    barrier.write_text("A lighthouse keeper climbs the spiral stairs to light the lamp at dusk.")
    eventually(lambda: str(barrier) in files_found(cli) and idle(watcher), "the barrier file to be indexed")


def test_created_edited_and_deleted_files_are_followed(cli, corpus, start_watcher):
    cli("index", corpus)
    start_watcher(corpus)
    zebra = corpus / "animals/zebra.txt"
    zebra.parent.mkdir()
    zebra.write_text("The zebra grazes on the savanna; its black and white stripes confuse the lions.")
    eventually(lambda: (top_hit(cli, "striped horse-like animal in Africa") or {}).get("abspath") == str(zebra), "new")

    zebra.write_text("The volcano erupted at night and rivers of glowing lava ran down to the sea.")
    eventually(lambda: "volcano" in (top_hit(cli, "lava from an eruption") or {}).get("text", ""), "edit")
    assert all("stripes" not in h for h in cli("query", "stripes", "--json", "-k", "50").stdout.splitlines())

    zebra.unlink()
    eventually(lambda: str(zebra) not in files_found(cli), "the deleted file to leave the index")


def test_a_renamed_file_is_found_under_its_new_name_only(cli, corpus, start_watcher):
    cli("index", corpus)
    start_watcher(corpus)
    old, new = corpus / "music/guitar.txt", corpus / "music/instrument-practice.txt"
    old.rename(new)
    eventually(lambda: {str(new)} <= files_found(cli) and str(old) not in files_found(cli), "the rename")
    assert top_hit(cli, "learning to play chords")["abspath"] == str(new)


def test_a_folder_moved_out_leaves_and_moved_back_in_returns(cli, corpus, tmp_path, start_watcher):
    cli("index", corpus)
    start_watcher(corpus)
    outside = tmp_path / "elsewhere"
    (corpus / "garden").rename(outside)
    eventually(lambda: not any("/garden/" in f for f in files_found(cli)), "the folder moved out to leave")
    (outside).rename(corpus / "allotment")
    moved_in = str(corpus / "allotment/tomatoes.md")
    eventually(lambda: moved_in in files_found(cli), "the folder moved in to be indexed")
    assert top_hit(cli, "growing tomatoes in summer")["abspath"] == moved_in


def test_a_new_folder_tree_copied_in_is_indexed(cli, corpus, tmp_path, start_watcher):
    cli("index", corpus)
    start_watcher(corpus)
    source = write_corpus(
        tmp_path / "incoming",
        {"a/b/deep.md": "# Deep\n\nSubmarines dive below the thermocline to hide from sonar.", "top.txt": "Kites."},
    )
    shutil.copytree(source, corpus / "incoming")
    eventually(lambda: str(corpus / "incoming/a/b/deep.md") in files_found(cli), "a nested copied file")


def test_editor_saves_through_temporary_files_leave_only_the_real_file(cli, corpus, start_watcher):
    notes = corpus / "notes.md"
    notes.write_text("# Notes\n\nThe meeting moved to Thursday.")
    cli("index", corpus)
    watcher = start_watcher(corpus)
    before = files_found(cli)

    # vim: a probe file, a swap file, the original renamed to a backup, the new text written, the backup removed
    (corpus / "4913").write_text("")
    (corpus / "4913").unlink()
    (corpus / ".notes.md.swp").write_bytes(b"b0VIM swap \x00" * 50)
    notes.rename(corpus / "notes.md~")
    notes.write_text("# Notes\n\nThe orchestra rehearses the symphony on Thursday evening.")
    (corpus / "notes.md~").unlink()
    # an atomic save (many editors, git, sed -i): a temporary file in the same folder renamed over the original
    temp = corpus / "notes.md.tmp.8812"
    temp.write_text("# Notes\n\nThe orchestra rehearses the symphony on Friday morning instead.")
    os.replace(temp, notes)
    # an atomic save whose temporary file has the real file's suffix
    temp2 = corpus / ".~tmp-notes-2.md"
    temp2.write_text("# Notes\n\nThe orchestra rehearses the symphony on Saturday, final answer.")
    os.replace(temp2, notes)
    (corpus / ".notes.md.swp").unlink()

    eventually(lambda: "Saturday" in (top_hit(cli, "when is the orchestra rehearsal") or {}).get("text", ""), "save")
    through_barrier(cli, watcher, corpus)
    found = files_found(cli)
    assert {f for f in found if "barrier" not in f} == before  # the same files: no temporary ones
    assert not any(f.endswith(("~", ".swp", ".tmp.8812", "4913", ".md.md")) or "/." in f for f in found)


def test_a_burst_of_200_files_is_indexed(cli, corpus, start_watcher):
    cli("index", corpus)
    start_watcher(corpus)
    burst = corpus / "burst"
    burst.mkdir()
    for i in range(200):
        (burst / f"note-{i:03}.txt").write_text(f"Note number {i}: the item with serial {i * 7919} is in aisle {i}.")
    expected = {str(burst / f"note-{i:03}.txt") for i in range(200)}
    eventually(lambda: expected <= files_found(cli), "all 200 files to be indexed", timeout=180)
    assert len(files_found(cli)) == 206


def test_ignored_hidden_and_unsupported_changes_stay_out(cli, corpus, start_watcher):
    (corpus / ".gitignore").write_text("secret.md\n")
    cli("index", corpus)
    watcher = start_watcher(corpus)
    write_corpus(
        corpus,
        {
            "secret.md": "ignored by .gitignore: the safe combination",
            "node_modules/pkg/readme.md": "a dependency's readme",
            ".hidden/diary.md": "a hidden folder",
            "build/out.md": "build output",
            "venv-like/pyvenv.cfg": "home = /usr",
            "venv-like/lib/site.md": "inside a virtual environment",
            "draft.tmp": "an editor's temporary file",
            "package-lock.json": "{}",
        },
    )
    through_barrier(cli, watcher, corpus)
    found = files_found(cli)
    for name in ("secret.md", "readme.md", "diary.md", "out.md", "site.md", "draft.tmp", "package-lock.json"):
        assert not any(f.endswith(name) for f in found), name


def test_editing_gitignore_takes_newly_ignored_files_out(cli, corpus, start_watcher):
    cli("index", corpus)
    start_watcher(corpus)
    guitar = str(corpus / "music/guitar.txt")
    assert guitar in files_found(cli)
    (corpus / ".gitignore").write_text("music/\n")
    eventually(lambda: guitar not in files_found(cli), "the newly ignored file to leave the index")
    (corpus / ".gitignore").unlink()
    eventually(lambda: guitar in files_found(cli), "the file to come back once no longer ignored")


def test_a_file_that_fails_is_logged_and_the_watcher_carries_on(cli, corpus, start_watcher, monkeypatch):
    import semsearch.index.indexer
    from semsearch.storage.store import Store

    real_extract, real_replace = semsearch.index.indexer.extract, Store.replace_file

    def extract(path, data):  # a bug in an extractor, for one file
        if path.name == "poison.txt":
            raise RuntimeError("extractor bug")
        return real_extract(path, data)

    def replace_file(self, gen, path, *args, **kwargs):  # a write that fails for one file (the batch raises)
        if path.name == "unwritable.txt":
            raise OSError(5, "Input/output error")
        return real_replace(self, gen, path, *args, **kwargs)

    monkeypatch.setattr(semsearch.index.indexer, "extract", extract)
    monkeypatch.setattr(Store, "replace_file", replace_file)
    cli("index", corpus)
    watcher = start_watcher(corpus)
    (corpus / "poison.txt").write_text("This file trips the extractor.")
    (corpus / "unwritable.txt").write_text("This file cannot be recorded.")
    (corpus / "fine.txt").write_text("Penguins huddle together to survive the Antarctic winter.")
    eventually(lambda: str(corpus / "fine.txt") in files_found(cli), "the good file next to the bad ones")
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02 not text" * 100)
    through_barrier(cli, watcher, corpus)
    log = IndexPaths(watcher.paths.root).log.read_text()
    assert f"skipped {corpus / 'poison.txt'}: could not be read (RuntimeError: extractor bug)" in log
    assert f"could not index {corpus / 'unwritable.txt'}" in log and "Input/output error" in log
    assert f"skipped {corpus / 'binary.txt'}: binary file" in log
    assert watcher.thread.is_alive() and watcher.state.errors >= 3
    found = files_found(cli)
    assert str(corpus / "poison.txt") not in found and str(corpus / "unwritable.txt") not in found


def test_changes_made_while_nobody_watched_are_caught_up_at_start(cli, corpus, start_watcher):
    cli("index", corpus)
    (corpus / "music/guitar.txt").unlink()
    (corpus / "kitchen/sourdough.txt").write_text("Brewing coffee: grind the beans coarse for a French press.")
    (corpus / "new.md").write_text("# Astronomy\n\nJupiter has dozens of moons, the largest is Ganymede.")
    start_watcher(corpus)  # ready means caught up
    found = files_found(cli)
    assert str(corpus / "music/guitar.txt") not in found and str(corpus / "new.md") in found
    assert top_hit(cli, "making coffee")["abspath"] == str(corpus / "kitchen/sourdough.txt")


def test_a_watched_root_deleted_and_recreated_is_followed_again(cli, tmp_path, start_watcher):
    root = write_corpus(tmp_path / "notes", {"a.txt": "Owls hunt at night and sleep during the day."})
    cli("index", root)
    start_watcher(root)
    shutil.rmtree(root)
    eventually(lambda: not files_found(cli), "the files of the deleted root to leave")
    write_corpus(root, {"b.txt": "Bees dance to tell the hive where the flowers are."})
    eventually(lambda: str(root / "b.txt") in files_found(cli), "the recreated root to be watched again")


def test_a_model_switched_under_the_watcher_stops_it_and_queries_go_in_process(cli, corpus, tmp_path, start_watcher):
    from semsearch.errors import ModelMismatch
    from semsearch.model.spec import default_model_path

    cli("index", corpus)
    watcher = start_watcher(corpus)
    other = tmp_path / "other-model"
    shutil.copytree(default_model_path(), other)
    (other / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    assert cli("index", corpus, "--model", other, "--change-model").exit_code == 0
    assert ask_watcher(watcher.paths.root, QueryOptions("bread")) is None  # its encoder is the old model's
    (corpus / "new.txt").write_text("Something changes after the switch.")
    watcher.thread.join(WAIT)
    assert not watcher.thread.is_alive() and isinstance(watcher.failure, ModelMismatch)
    result = cli("query", "baking bread at home", "-l")
    assert result.exit_code == 0 and result.stdout.splitlines()[0].endswith("sourdough.txt")


def test_a_watcher_of_the_index_roots_follows_roots_added_and_removed(cli, corpus, tmp_path, start_watcher):
    cli("index", corpus)
    watcher = start_watcher()  # no paths: the index's roots, whatever they become
    extra = write_corpus(tmp_path / "extra", {"a.txt": "Glaciers carve deep valleys over thousands of years."})
    assert cli("index", extra).exit_code == 0
    eventually(lambda: str(extra) in watcher.state.roots, "the new root to be watched")
    (extra / "b.txt").write_text("Octopuses can change colour to match the rocks around them.")
    eventually(lambda: str(extra / "b.txt") in files_found(cli), "a file added under the new root")
    assert cli("remove", corpus).exit_code == 0
    eventually(lambda: watcher.state.roots == [str(extra)], "the removed root to be dropped")
    (corpus / "after.txt").write_text("Written under a folder that is no longer in the index.")
    through_barrier(cli, watcher, extra)
    assert not any(f.startswith(str(corpus)) for f in files_found(cli))


def test_query_through_the_watcher_equals_query_in_process(cli, corpus, start_watcher, monkeypatch, capsys):
    monkeypatch.chdir(corpus)
    cli("index", corpus)
    watcher = start_watcher(corpus)
    cases = [
        QueryOptions("rotate the api keys"),
        QueryOptions("network failures", k=3),
        QueryOptions("anything", k=50, files_only=True),
        QueryOptions("keys", path_glob="*.md", min_score=0.05),
    ]
    for options in cases:
        served = ask_watcher(watcher.paths.root, options)
        assert served is not None, "the watcher did not answer"
        local = search_in_process(watcher.paths.root, options)
        assert [(h.path, h.start_line, h.chunk_id) for h in served] == [
            (h.path, h.start_line, h.chunk_id) for h in local
        ]
        assert [h.score for h in served] == pytest.approx([h.score for h in local], abs=1e-5)
    assert watcher.server.served >= len(cases)
    # and the command prints the same, whether the watcher answers (fast path) or the process does
    for argv in (["rotate the api keys"], ["network failures", "-k", "3", "--json"], ["anything", "-l"]):
        capsys.readouterr()
        assert run_fast(argv) == 0
        fast = capsys.readouterr().out
        monkeypatch.setenv("SEMSEARCH_NO_WATCHER", "1")
        slow = cli("query", *argv).stdout
        monkeypatch.delenv("SEMSEARCH_NO_WATCHER")
        assert fast == slow and fast


def test_the_fast_path_builds_the_same_options_as_the_command(cli, corpus, monkeypatch, tmp_path):
    """The Typer-free reading of `semsearch query` and the command agree on every option both read,
    settings (the configuration's mode and top_k) included."""
    import semsearch.watcher.client

    (tmp_path / "config.toml").write_text('mode = "semantic"\ntop_k = 4\n')
    monkeypatch.setenv("SEMSEARCH_CONFIG", str(tmp_path / "config.toml"))
    seen: list[QueryOptions] = []
    monkeypatch.setattr(semsearch.watcher.client, "search", lambda index_dir, options, **kw: seen.append(options) or [])
    for argv in (
        ["bread"],
        ["bread", "-k", "3", "--json"],
        ["bread", "--top=7", "-l", "--path", "*.md", "--min-score", "0.25", "--mode", "keyword"],
        ["bread", "--explain", "--format", "json"],
        ["--", "-bread"],
    ):
        seen.clear()
        cli("query", *argv)
        by_command = seen[0]  # (with no hits, a second search asks whether --all would show anything)
        seen.clear()
        assert run_fast(argv) == 1  # no hits: exit status 1, as the command
        by_fast_path = seen[0]
        assert by_fast_path == by_command
        if argv == ["bread"]:
            assert by_command.mode == "semantic" and by_command.k == 4


def test_a_plain_query_resolves_its_settings_once_and_asks_the_watcher_once(cli, corpus, monkeypatch):
    """One query path: the light entry and the command read the settings once and probe the socket once,
    then search in-process when no watcher answers."""
    import semsearch.config
    import semsearch.watcher.client

    cli("index", corpus)
    resolved, probed = [], []
    real_resolve, real_request = semsearch.config.resolve, semsearch.watcher.client.request
    monkeypatch.setattr(semsearch.config, "resolve", lambda *a, **kw: resolved.append(a) or real_resolve(*a, **kw))
    monkeypatch.setattr(
        semsearch.watcher.client, "request", lambda *a, **kw: probed.append(a) or real_request(*a, **kw)
    )
    assert run_fast(["baking bread at home", "-k", "2"]) == 0
    assert len(resolved) == 1 and len(probed) == 1
    resolved.clear(), probed.clear()
    assert cli("query", "baking bread at home", "-k", "2").exit_code == 0
    assert len(resolved) == 1 and len(probed) == 1


def test_a_stale_socket_is_ignored(cli, corpus, isolated_home):
    cli("index", corpus)
    sock_path = IndexPaths(isolated_home).query_socket
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))  # what a killed watcher leaves: a socket file nobody listens on
    dead.close()
    assert sock_path.exists()
    assert ask_watcher(isolated_home, QueryOptions("bread")) is None
    result = cli("query", "baking bread at home", "-l")
    assert result.exit_code == 0 and result.stdout.splitlines()[0].endswith("sourdough.txt")
    sock_path.unlink()
    sock_path.write_text("not a socket")
    assert cli("query", "baking bread at home", "-l").exit_code == 0


def test_a_new_watcher_replaces_a_stale_socket_and_answers(cli, corpus, isolated_home, start_watcher):
    cli("index", corpus)
    sock_path = IndexPaths(isolated_home).query_socket
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()
    start_watcher()
    assert ask_watcher(isolated_home, QueryOptions("bread")) is not None
    assert (sock_path.stat().st_mode & 0o777) == 0o600


def test_a_second_watcher_is_refused(cli, corpus, start_watcher):
    cli("index", corpus)
    watcher = start_watcher(corpus)
    result = cli("watch", corpus)
    assert result.exit_code == 2
    assert "already running" in result.stderr and str(os.getpid()) in result.stderr
    assert "semsearch watch stop" in result.stderr
    assert watcher.thread.is_alive()


def test_status_shows_the_running_watcher(cli, corpus, start_watcher):
    cli("index", corpus)
    start_watcher(corpus)
    info = json.loads(cli("status", "--json").stdout)["watcher"]
    assert info["running"] and info["pid"] == os.getpid() and info["phase"] == "watching"
    assert info["serving"] and info["uptime_seconds"] >= 0 and info["last_sync"] > 0
    assert info["roots"] == [str(corpus)]
    text = cli("status").stdout
    assert f"running (pid {os.getpid()}" in text and "last sync" in text


def test_watch_without_an_index_says_how_to_start(cli, isolated_home):
    for args in (["watch"], ["watch", "--background"]):
        result = cli(*args)
        assert result.exit_code == 2 and "No index" in result.stderr and "semsearch index" in result.stderr
        assert "Traceback" not in result.stderr
    assert not isolated_home.exists()


def test_watch_a_missing_folder_is_a_clear_error(cli, corpus, isolated_home):
    result = cli("watch", corpus / "nope")
    assert result.exit_code == 2 and "No such file or folder" in result.stderr
    assert not isolated_home.exists()


def test_watch_stop_without_a_watcher_says_so(cli, corpus, isolated_home):
    cli("index", corpus)
    result = cli("watch", "stop")
    assert result.exit_code == 0 and "No watcher is running" in result.stdout
    assert json.loads(cli("status", "--json").stdout)["watcher"] == {"running": False}


def index_contents(index_dir: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """What an index holds, comparable across indexes: path -> (content hash, chunk texts)."""
    from semsearch.storage.store import Store

    store = Store.open(IndexPaths(index_dir))
    try:
        rows = store.conn.execute(
            "SELECT f.path, f.sha256, c.text FROM files f LEFT JOIN chunks c ON c.file_id = f.id ORDER BY f.path, c.ord"
        ).fetchall()
    finally:
        store.close()
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for path, sha, text in rows:
        key = os.fsdecode(path)
        old = out.get(key, (sha, ()))
        out[key] = (sha, old[1] + ((text,) if text is not None else ()))
    return out


def test_a_pass_over_just_the_changed_paths_leaves_the_index_as_a_fresh_index_would(corpus, tmp_path):
    """The watcher's batch (IndexOptions.only, with the targets it would pick) against a fresh `index`."""
    from semsearch.index.indexer import Indexer, IndexOptions

    watched = tmp_path / "watched-index"
    Indexer(watched).run(IndexOptions(paths=[corpus]))
    write_corpus(corpus, {"new/deep/a.md": "# New\n\nA freshly written note about kayaks."})
    (corpus / "music/guitar.txt").write_text("Bass lines in funk sit on the one.")
    (corpus / "ops").rename(corpus / "operations")
    (corpus / "travel/checklist.rst").unlink()
    (corpus / "code/.semsearchignore").write_text("retry.py\n")  # new rules for that folder
    targets = [
        corpus / "new",  # a folder created (its files come with it)
        corpus / "music/guitar.txt",
        corpus / "ops",  # both ends of a move
        corpus / "operations",
        corpus / "travel/checklist.rst",
        corpus / "code",  # the folder of an edited ignore file
    ]
    report = Indexer(watched).run(IndexOptions(only=targets, save_vectors=False))
    assert report.unchanged == 0  # nothing outside the targets was even looked at
    (corpus / "garden/tomatoes.md").write_text("# Garden log\n\nPeppers did well this year.")  # its own batch
    Indexer(watched).run(IndexOptions(only=[corpus / "garden/tomatoes.md"], save_vectors=False))
    fresh = tmp_path / "fresh-index"
    Indexer(fresh).run(IndexOptions(paths=[corpus]))
    assert index_contents(watched) == index_contents(fresh)
    found = index_contents(watched)
    assert str(corpus / "operations/credentials.md") in found and str(corpus / "new/deep/a.md") in found
    assert not any("/ops/" in p or "retry.py" in p or "checklist" in p for p in found)


def test_vectors_kept_in_memory_follow_the_store_like_a_fresh_load(cli, corpus, isolated_home):
    from semsearch.index.indexer import Indexer, IndexOptions
    from semsearch.storage import vectors
    from semsearch.storage.store import Store

    cli("index", corpus)
    store = Store.open(IndexPaths(isolated_home))
    try:
        kept = vectors.load(store)
        # batches that leave the vector file behind (as the watcher's do): the delta is applied in place
        (corpus / "music/guitar.txt").write_text("Drums keep the time for the whole band.")
        (corpus / "kitchen/sourdough.txt").unlink()
        Indexer(isolated_home).run(IndexOptions(only=[corpus / "music", corpus / "kitchen"], save_vectors=False))
        kept = vectors.refresh(kept, store)
        assert sorted(kept.ids()) == sorted(vectors.load(store).ids())
        # another writer saves the file and drops the tombstones the delta would need: refresh reloads
        (corpus / "garden/tomatoes.md").unlink()
        cli("index", corpus)
        kept = vectors.refresh(kept, store)
        assert sorted(kept.ids()) == sorted(vectors.load(store).ids()) and kept.generation == store.generation
    finally:
        store.close()
