"""The watcher as real processes: `watch --background`, `status`, `watch stop`, one watcher per index, a killed
watcher's stale socket, and a clean stop on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import psutil
import pytest
from conftest import REPO, installed_command
from test_watch import WAIT, eventually, files_found

from semsearch.search.hits import QueryOptions
from semsearch.storage.layout import IndexPaths
from semsearch.watcher.client import ask_watcher
from semsearch.watcher.state import is_running


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def home_paths(isolated_home):
    """The default index's files; any watcher a test leaves behind is killed."""
    paths = IndexPaths(isolated_home)
    yield paths
    from semsearch.watcher.state import read_state

    state = read_state(paths)
    if state and state.pid != os.getpid() and not gone(state.pid):
        os.kill(state.pid, signal.SIGKILL)


def watcher_info(cli) -> dict:
    return json.loads(cli("status", "--json").stdout)["watcher"]


def serving(cli):
    info = watcher_info(cli)
    return info if info.get("serving") and info.get("phase") == "watching" else None


def test_background_watcher_starts_answers_follows_and_stops(cli, corpus, semsearch_cmd, home_paths):
    cli("index", corpus)
    started = semsearch_cmd("watch", "--background", "--debounce", "0.2")
    assert started.returncode == 0, started.stderr
    pid = int(re.search(r"pid (\d+)", started.stdout).group(1))
    assert "semsearch watch stop" in started.stdout
    info = eventually(lambda: serving(cli), "the background watcher to answer queries")
    assert info["pid"] == pid and info["running"] and info["roots"] == [str(corpus)]
    assert info["uptime_seconds"] >= 0 and info["last_sync"] > 0
    assert f"running (pid {pid}" in cli("status").stdout

    for second in (["watch"], ["watch", "--background"], ["watch", str(corpus)]):
        refused = semsearch_cmd(*second)
        assert refused.returncode == 2, second
        assert "already running" in refused.stderr and f"pid {pid}" in refused.stderr
        assert "Traceback" not in refused.stderr

    assert ask_watcher(home_paths.root, QueryOptions("baking bread")) is not None  # the watcher answers
    query = semsearch_cmd("query", "baking bread at home", "--json", "-k", "1")
    assert query.returncode == 0 and json.loads(query.stdout)["path"].endswith("sourdough.txt")

    (corpus / "kitchen/sourdough.txt").write_text("Brewing coffee: grind the beans coarse for a French press.")

    def edit_is_served():
        hits = ask_watcher(home_paths.root, QueryOptions("making coffee", k=1, show_all=True))
        return hits and "coffee" in hits[0].text

    eventually(edit_is_served, "the background watcher to index an edit")

    stopped = semsearch_cmd("watch", "stop")
    assert stopped.returncode == 0 and f"Stopped the watcher (pid {pid})" in stopped.stdout
    assert not is_running(home_paths) and gone(pid)
    assert not home_paths.query_socket.exists() and not home_paths.watch_state.exists()
    status = json.loads(cli("status", "--json").stdout)
    assert status["watcher"] == {"running": False} and status["vectors_current"]
    log = home_paths.log.read_text()
    assert f"watcher started (pid {pid})" in log and f"watcher stopped (pid {pid})" in log
    assert "Traceback" not in log


def test_a_killed_watcher_leaves_a_stale_socket_that_is_ignored(cli, corpus, semsearch_cmd, home_paths):
    cli("index", corpus)
    started = semsearch_cmd("watch", "--background")
    assert started.returncode == 0, started.stderr
    pid = eventually(lambda: serving(cli), "the watcher to serve")["pid"]
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: not is_running(home_paths), "the killed watcher's lock to be released")
    assert home_paths.query_socket.exists()  # stale: nobody listens on it
    assert watcher_info(cli) == {"running": False}
    query = semsearch_cmd("query", "baking bread at home", "-l")  # answered in-process
    assert query.returncode == 0 and query.stdout.splitlines()[0].endswith("sourdough.txt")
    stop = semsearch_cmd("watch", "stop")
    assert stop.returncode == 0 and "No watcher is running" in stop.stdout
    assert not home_paths.query_socket.exists() and not home_paths.watch_state.exists()


def test_ctrl_c_stops_a_foreground_watcher_cleanly_and_the_index_stays_whole(cli, corpus, home_paths):
    cli("index", corpus)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [*installed_command(), "watch", "--debounce", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: serving(cli) or proc.poll() is not None, "the foreground watcher to serve")
        assert proc.poll() is None
        burst = corpus / "burst"
        burst.mkdir()
        for i in range(120):
            (burst / f"n{i}.txt").write_text(f"Item {i}: a crate of {i} oranges shipped on day {i % 7}.")
        proc.send_signal(signal.SIGINT)  # Ctrl-C, with the burst pending or being indexed
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped watching" in err and "watching 1 root" in err and "Traceback" not in err
    assert not home_paths.query_socket.exists() and not home_paths.watch_state.exists()
    # the index is whole: the next index run completes what the watcher did not get to
    assert cli("index").exit_code == 0
    assert len(files_found(cli)) == 126
    assert json.loads(cli("status", "--json").stdout)["vectors_current"]


def test_status_stays_light(corpus, cli, isolated_home):
    """`semsearch status` reports the watcher without loading a model or FAISS."""
    cli("index", corpus)
    code = (
        "import sys; from semsearch.cli import main; sys.argv=['semsearch','status']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'faiss', 'sentence_transformers', 'watchdog') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
    ).stdout
    assert "HEAVY []" in out and "watcher" in out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_watcher_killed_mid_update_leaves_a_consistent_index_that_the_next_watcher_completes(
    cli, tmp_path, home_paths
):
    """SIGKILL a foreground watcher at seeded random moments while it indexes a change (files added, edited,
    touched, renamed, deleted): each time the index passes check and answers; the next watcher's catch-up
    then leaves it equal to a clean build of the final folder."""
    import random
    import time

    from crashkit import (
        DEFAULT_TRIALS,
        QUERIES,
        TOPICS,
        Watched,
        _document,
        clean_build,
        content_differences,
        corpus_plan,
        hit_keys,
        hits_differences,
        index_content,
        inspect_after_kill,
        write_version,
    )

    from semsearch.index.indexer import Indexer, IndexOptions

    rng = random.Random(5)
    plan = corpus_plan(DEFAULT_TRIALS)
    corpus, index_dir = tmp_path / "corpus", home_paths.root
    write_version(corpus, plan[0])
    Indexer(index_dir).run(IndexOptions(paths=[corpus]))
    args = ["watch", "--debounce", "0.1", "-q"]
    for version in plan[1:5]:
        watcher = Watched(args)
        try:
            eventually(lambda: serving(cli), "the watcher to serve")
            write_version(corpus, version)  # (it also deletes the last trial's extra files)
            for n in range(30):  # enough new text that the watcher works for a few seconds
                (corpus / "extra").mkdir(exist_ok=True)
                (corpus / "extra" / f"x{n}.md").write_text(_document(rng, rng.choice(sorted(TOPICS)), ".md"))
            time.sleep(rng.uniform(0.1, 4.0))  # waiting for the change to settle, embedding, or storing it
        finally:
            killed = watcher.kill()
        assert killed, "".join(watcher.stderr)
        problems, phase = inspect_after_kill(index_dir)
        assert problems == [], (phase, problems)
        indexed = {h[0] for h in index_content(index_dir, corpus)}
        caught_up = indexed == set(version.files) | {f"extra/x{n}.md" for n in range(30)}
        print(f"watcher killed; the index: {phase}, {'change complete' if caught_up else 'change partly indexed'}")

    write_version(corpus, plan[DEFAULT_TRIALS])
    watcher = Watched(args)
    try:
        eventually(lambda: serving(cli), "the next watcher to catch up and serve")
    finally:
        watcher.proc.send_signal(signal.SIGTERM)
        assert watcher.wait() == 0, "".join(watcher.stderr)
    clean = clean_build(tmp_path / "clean")
    assert content_differences(index_content(index_dir, corpus), clean.content) == []
    for query in QUERIES:
        assert hits_differences(hit_keys(index_dir, corpus, query), clean.hits[query]) == [], query
    assert "Traceback" not in home_paths.log.read_text()
