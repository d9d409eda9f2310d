"""A full disk or a refused write mid-index leaves the index as it was and says what happened, in one sentence.

The full disk is real: a small tmpfs mounted under the test's folder (root only; skipped elsewhere).
Permission denied is real too: the index folder is made read-only and, when the tests run as root,
semsearch runs with the capabilities that let root ignore file modes dropped (setpriv).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


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
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield Disk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_write_failing_inside_a_transaction_raises_the_disk_error_and_rolls_back(small_disk):
    import sqlite3

    import numpy as np

    from semsearch.models import resolve_model
    from semsearch.paths import IndexPaths
    from semsearch.store import Store

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
    small_disk.resize(64 * 1024 * 1024)
    with store.write():  # the connection is usable again
        store.add_root(small_disk.mount)
    assert store.generation == generation + 1
    store.close()
