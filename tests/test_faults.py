"""A full disk or a refused write mid-index leaves the index as it was and says what happened, in one sentence.

The full disk is real: a small tmpfs mounted under the test's folder (root only; skipped elsewhere).
Permission denied is real too: the index folder is made read-only and, when the tests run as root,
semsearch runs with the capabilities that let root ignore file modes dropped (setpriv).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import write_corpus
from crashkit import Watched, corpus_plan, semsearch_command, semsearch_env

ROOMY = 512 * 1024 * 1024  # a tmpfs uses memory only for what it holds; the ONNX export of the model is ~90 MB


class Disk:
    """A tmpfs of a chosen size: a real disk that fills up."""

    def __init__(self, mount: Path):
        self.mount = mount

    def resize(self, size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.mount)], check=True, capture_output=True)

    def used(self) -> int:
        st = os.statvfs(self.mount)
        return (st.f_blocks - st.f_bfree) * st.f_frsize


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={ROOMY}", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield Disk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def more_documents(root: Path, n: int = 60) -> Path:
    return write_corpus(root, corpus_plan(0, seed=99, start_files=n)[0].files)


def check(cli, index_dir: Path) -> dict:
    result = cli("check", "--json", "--index", index_dir)
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["consistent"], report["problems"]
    return report


def assert_one_sentence(stderr: str, *needles: str, notes_before: bool = False) -> None:
    """The error is one ``semsearch:`` line, the last; ``notes_before``: notices may come before it."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("semsearch:")]
    assert lines and lines[-1] == stderr.rstrip("\n").splitlines()[-1], stderr
    assert len(lines) == 1 or notes_before, stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]


@pytest.mark.slow
def test_disk_full_mid_index_keeps_the_index_and_says_so(cli, corpus, small_disk, tmp_path):
    index_dir = small_disk.mount / "index"
    assert cli("index", corpus, "--index", index_dir).exit_code == 0
    before = check(cli, index_dir)
    small_disk.resize(small_disk.used() + 96 * 1024)  # room for a batch or two of vectors, not for 60 files
    more = more_documents(tmp_path / "more")

    result = cli("index", more, "--index", index_dir)
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, str(index_dir), "No space left on device", "free some space")
    assert not list(index_dir.glob(".*.tmp"))

    small_disk.resize(ROOMY)
    after = check(cli, index_dir)
    assert after["files"] >= before["files"]
    top = json.loads(cli("query", "baking a loaf of bread", "--json", "-k", "1", "--index", index_dir).stdout)
    assert top["path"].endswith("kitchen/sourdough.txt")
    # with space again, the same command finishes the work
    result = cli("index", more, "--index", index_dir)
    assert result.exit_code == 0, result.stderr
    final = check(cli, index_dir)
    assert final["files"] == before["files"] + len(list(more.rglob("*.*")))


def test_disk_full_on_the_first_index_leaves_no_half_made_index(cli, corpus, small_disk):
    index_dir = small_disk.mount / "index"
    small_disk.resize(small_disk.used() + 16 * 1024)
    result = cli("index", corpus, "--index", index_dir)
    assert result.exit_code == 2
    # (the ONNX export, tried first, fails on the full disk too and says it falls back to the full model)
    assert_one_sentence(result.stderr, "No space left on device", notes_before=True)
    assert not [p.name for p in index_dir.rglob("*") if p.name.startswith("index.sqlite3")]
    assert not list(index_dir.glob("vectors*"))
    small_disk.resize(ROOMY)
    assert cli("index", corpus, "--index", index_dir).exit_code == 0
    check(cli, index_dir)


def test_vector_file_write_failing_keeps_the_previous_vector_file(cli, corpus, isolated_home, monkeypatch):
    from semsearch.storage import vectors

    cli("index", corpus)
    meta = (isolated_home / "vectors.json").read_bytes()
    saved = {p.name: p.read_bytes() for p in isolated_home.glob("vectors-*.faiss")}
    (corpus / "owls.txt").write_text("Owls hunt at night over the meadow behind the barn.")

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(vectors.os, "fsync", no_space)  # where delayed allocation reports a full disk
        result = cli("index", corpus)
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, "No space left on device")
    assert (isolated_home / "vectors.json").read_bytes() == meta
    assert {p.name: p.read_bytes() for p in isolated_home.glob("vectors-*.faiss")} == saved
    assert not list(isolated_home.glob(".*.tmp"))
    report = check(cli, isolated_home)
    assert any("behind the database" in n for n in report["notes"])  # the owls are in SQLite, not yet in the file
    hits = json.loads(cli("query", "birds hunting in the dark", "--json", "-k", "1").stdout)
    assert hits["path"].endswith("owls.txt")
    assert cli("index", corpus).exit_code == 0
    assert check(cli, isolated_home)["saved_generation"] == check(cli, isolated_home)["generation"]


# -- permission denied -----------------------------------------------------------------------------


def unprivileged(args: list[str]) -> list[str]:
    """``args`` run so that file modes apply (as root: without the capabilities that bypass them)."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make file modes apply")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *args]


def make_read_only(folder: Path, files_too: bool) -> None:
    if files_too:
        for p in folder.iterdir():
            p.chmod(0o444)
    folder.chmod(0o555)


def make_writable(folder: Path) -> None:
    folder.chmod(0o755)
    for p in folder.iterdir():
        p.chmod(0o644)


def test_read_only_index_is_refused_in_one_sentence_and_left_unchanged(cli, corpus, tmp_path, isolated_home):
    cli("index", corpus)
    before = check(cli, isolated_home)
    more = more_documents(tmp_path / "more", 3)
    make_read_only(isolated_home, files_too=True)
    try:
        result = subprocess.run(
            unprivileged(semsearch_command() + ["index", str(more)]),
            env=semsearch_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        make_writable(isolated_home)
    assert result.returncode == 2, result.stderr
    assert_one_sentence(result.stderr, str(isolated_home), "Permission denied")
    after = check(cli, isolated_home)
    assert after["generation"] == before["generation"] and after["files"] == before["files"]


def test_index_folder_made_read_only_mid_run_keeps_the_index_and_says_so(cli, corpus, tmp_path, isolated_home):
    cli("index", corpus)
    before = check(cli, isolated_home)
    more = more_documents(tmp_path / "more", 12)
    proc = Watched(["index", str(more)], env=semsearch_env(), prefix=unprivileged([]))
    try:
        deadline = time.monotonic() + 600
        while not proc.saw("indexing") and proc.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.saw("indexing"), "".join(proc.stderr)
        make_read_only(isolated_home, files_too=False)  # open files stay writable; no new file can be made
        code = proc.wait(timeout=600)
    finally:
        make_writable(isolated_home)
    stderr = "".join(proc.stderr)
    assert code == 2, stderr
    assert_one_sentence(stderr, str(isolated_home), "Permission denied")
    after = check(cli, isolated_home)  # the database took the new files; the vector file is the old one
    assert after["files"] == before["files"] + 12
    assert any("behind the database" in n for n in after["notes"])
    hits = cli("query", "anything", "-l", "-k", "100").stdout
    assert str(more) in hits or "more/" in hits
    assert cli("index").exit_code == 0
    assert check(cli, isolated_home)["saved_generation"] == check(cli, isolated_home)["generation"]


def test_a_write_failing_inside_a_transaction_raises_the_disk_error_and_rolls_back(small_disk):
    import sqlite3

    import numpy as np

    from semsearch.model.spec import resolve_model
    from semsearch.storage.layout import IndexPaths
    from semsearch.storage.store import Store

    store = Store.create(IndexPaths(small_disk.mount / "index"), resolve_model(None), 384)
    store.conn.execute("PRAGMA cache_size=2")  # spill pages to the WAL mid-statement, not only at COMMIT
    store.put_embeddings(["a"], np.ones((1, 384), np.float32))
    generation = store.generation
    small_disk.resize(small_disk.used() + 64 * 1024)
    with pytest.raises(sqlite3.OperationalError) as raised:
        with store.write():
            rows = [(f"h{i}", np.random.default_rng(i).random(384, dtype=np.float32).tobytes()) for i in range(400)]
            store.conn.executemany("INSERT INTO embeddings VALUES (?, ?)", rows)
    assert raised.value.sqlite_errorname == "SQLITE_FULL", raised.value
    assert not store.conn.in_transaction
    assert store.generation == generation and store.known_hashes(["a", "h1"]) == {"a"}
    small_disk.resize(ROOMY)
    with store.write():  # the connection is usable again
        store.add_root(small_disk.mount)
    assert store.generation == generation + 1
    store.close()
