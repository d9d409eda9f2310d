"""The installed ``semsearch`` command, in real processes: what a user's shell and scripts see."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO


def test_index_query_status_through_the_installed_command(semsearch_cmd, corpus, isolated_home):
    result = semsearch_cmd("index", corpus)
    assert result.returncode == 0, result.stderr
    assert "6 added" in result.stdout
    assert "indexing 6 files" in result.stderr  # plain progress lines when not a terminal
    result = semsearch_cmd("query", "baking a loaf of bread at home", "--json", "-k", "2", cwd=corpus)
    assert result.returncode == 0, result.stderr
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert hits[0]["path"] == "kitchen/sourdough.txt" and len(hits) == 2
    result = semsearch_cmd("query", "bread", "--min-score", "0.999")
    assert (result.returncode, result.stdout) == (1, "")
    status = json.loads(semsearch_cmd("status", "--json").stdout)
    assert status["files"] == 6 and status["index_dir"] == str(isolated_home)


def test_user_errors_exit_2_with_one_sentence_and_no_traceback(semsearch_cmd, tmp_path):
    result = semsearch_cmd("query", "anything")
    assert result.returncode == 2
    assert result.stderr.startswith("semsearch: No index at") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = semsearch_cmd("index", tmp_path / "missing")
    assert result.returncode == 2 and "No such file or folder" in result.stderr and "Traceback" not in result.stderr
    result = semsearch_cmd("query")  # a usage error, as grep: status 2
    assert result.returncode == 2


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "semsearch", "--help"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0
    for command in ("index", "query", "status", "remove"):
        assert command in result.stdout


def test_every_command_help_has_an_example(semsearch_cmd):
    for command in ("index", "query", "status", "remove", "similar", "dupes", "topics", "config", "mcp"):
        result = semsearch_cmd(command, "--help")
        assert result.returncode == 0 and "Example:" in result.stdout, command


@pytest.mark.slow
def test_ctrl_c_keeps_embedded_work_and_the_next_run_finishes(tmp_path, isolated_home):
    import os
    import random
    import re
    import signal
    import sqlite3
    import time

    from conftest import installed_command

    rng = random.Random(7)
    words = "river mountain engine protein market violin harbor glacier circuit orchard theorem canyon".split()
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(120):
        text = "\n\n".join(" ".join(rng.choice(words) for _ in range(60)) for _ in range(4))
        (docs / f"doc{i}.txt").write_text(f"Document {i}\n\n{text}\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        installed_command() + ["index", str(docs)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a shell's background job (how CI may run the suite) ignores SIGINT, and so,
        # inherited, would this process
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    db = isolated_home / "index.sqlite3"
    deadline = time.monotonic() + 240
    embedded = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            # read-only: a plain connect would create an empty index.sqlite3 before the indexer does, which the
            # indexer then takes for a damaged index (exit 2 before it could be interrupted)
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                embedded = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        except sqlite3.Error:
            embedded = 0
        if embedded >= 64:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "indexing finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Run the same command again" in err and "Traceback" not in err
    kept = int(re.search(r"(\d+) chunks were kept", err).group(1))
    assert kept >= 64
    result = subprocess.run(installed_command() + ["index", str(docs)], env=env, capture_output=True, text=True)
    assert result.returncode == 0
    again = int(re.search(r"(\d+) chunks embedded", result.stdout).group(1))
    total = json.loads(
        subprocess.run(installed_command() + ["status", "--json"], env=env, capture_output=True, text=True).stdout
    )
    assert total["files"] == 120
    assert again <= total["chunks"] - kept  # nothing embedded before Ctrl-C was embedded again


def test_shell_completion_completes_commands_and_options(semsearch_cmd):
    # what bash's completion function asks the command (Typer's own completion, as --install-completion sets up)
    result = semsearch_cmd(
        env={"_SEMSEARCH_COMPLETE": "complete_bash", "COMP_WORDS": "semsearch si", "COMP_CWORD": "1"}
    )
    assert result.returncode == 0 and result.stdout.split() == ["similar"]
    words = {"_SEMSEARCH_COMPLETE": "complete_bash", "COMP_WORDS": "semsearch query x --fo", "COMP_CWORD": "3"}
    assert semsearch_cmd(env=words).stdout.split() == ["--format"]


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_a_closed_pipe_ends_a_query_quietly(cli, corpus, fmt):
    """`semsearch query ... | head -1`: the reader goes away before the output is written; the query stops
    with 141 (as a process SIGPIPE ended), never a traceback, and never 1, which would mean "no hits"."""
    import os

    from conftest import installed_command

    assert cli("index", corpus).exit_code == 0
    env = dict(os.environ, PYTHONPATH=str(REPO), SEMSEARCH_NO_WATCHER="1")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the query has printed anything
    try:
        proc = subprocess.run(
            installed_command() + ["query", "baking bread", "-k", "5", "--format", fmt],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""
