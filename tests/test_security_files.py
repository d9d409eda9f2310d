"""The index on a shared machine and on disks it cannot write: private whatever the umask, searchable read-only."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

from conftest import REPO, installed_command


def run_with_umask(umask: int, *args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed command under a given umask, as a careless shell profile would set it."""
    command = " ".join(shlex.quote(str(a)) for a in installed_command() + list(args))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        ["sh", "-c", f"umask {umask:03o} && exec {command}"], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def modes(folder: Path) -> dict[str, int]:
    """Every entry directly in ``folder`` (and the folder itself, as "."), with its permission bits."""
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    for entry in folder.iterdir():
        found[entry.name] = stat.S_IMODE(entry.lstat().st_mode)
    return found


def test_a_new_index_is_private_whatever_the_umask(corpus, tmp_path):
    index = tmp_path / "index"
    result = run_with_umask(0o000, "index", corpus, "--index", index, "-q")
    assert result.returncode == 0, result.stderr
    found = modes(index)
    assert found.pop(".") == 0o700
    assert "index.sqlite3" in found and any(name.startswith("vectors-") for name in found)
    for name, mode in found.items():
        assert mode == (0o700 if (index / name).is_dir() else 0o600), (name, oct(mode))


def test_an_index_made_world_readable_is_fixed_on_the_next_write(corpus, tmp_path):
    index = tmp_path / "index"
    assert run_with_umask(0o022, "index", corpus, "--index", index, "-q").returncode == 0
    index.chmod(0o755)
    for entry in index.iterdir():
        entry.chmod(0o755 if entry.is_dir() else 0o644)  # as an earlier version left it
    assert run_with_umask(0o000, "status", "--index", index).returncode == 0  # reading changes nothing
    assert modes(index)["index.sqlite3"] == 0o644
    (corpus / "new.md").write_text("A new note about the harbour at dawn.\n")
    assert run_with_umask(0o000, "index", "--index", index, "-q").returncode == 0
    found = modes(index)
    assert found.pop(".") == 0o700
    for name, mode in found.items():
        assert mode == (0o700 if (index / name).is_dir() else 0o600), (name, oct(mode))


def test_the_watchers_log_lock_state_and_socket_are_private(corpus, tmp_path, cli):
    from test_watch import eventually
    from test_watch_process import serving

    index = tmp_path / "index"
    assert cli("index", corpus, "--index", index).exit_code == 0
    started = run_with_umask(0o000, "watch", "--background", "--index", index)
    assert started.returncode == 0, started.stderr
    try:
        eventually(lambda: serving(lambda *a: cli(*a, "--index", index)), "the watcher to serve")
        found = modes(index)
        for name in ("semsearch.log", "watch.lock", "watch.json", "query.sock"):
            assert found[name] == 0o600, (name, oct(found[name]))
    finally:
        assert run_with_umask(0o022, "watch", "stop", "--index", index).returncode == 0
