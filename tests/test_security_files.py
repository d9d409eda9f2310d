"""The index on a shared machine and on disks it cannot write: private whatever the umask, searchable read-only."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, installed_command


def run_with_umask(umask: int, *args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed command under a given umask, as a careless shell profile would set it."""
    command = " ".join(shlex.quote(str(a)) for a in installed_command() + list(args))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        ["sh", "-c", f"umask {umask:03o} && exec {command}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
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


@pytest.fixture
def read_only_index(cli, corpus, tmp_path):
    """An index of the corpus seen through a read-only bind mount (a real read-only file system)."""
    index = tmp_path / "index"
    assert cli("index", corpus, "--index", index).exit_code == 0
    mounted = tmp_path / "read-only"
    mounted.mkdir()
    bind = subprocess.run(["mount", "--bind", index, mounted], capture_output=True, text=True)
    if bind.returncode != 0:
        if os.environ.get("CI") == "true" and os.geteuid() == 0:
            pytest.fail(f"mount --bind failed as root: {bind.stderr}")
        pytest.skip(f"mounting is not permitted here: {bind.stderr.strip()}")
    try:
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", mounted], capture_output=True, text=True)
        assert remount.returncode == 0, remount.stderr
        with pytest.raises(OSError):
            (mounted / "probe").write_text("x")
        yield mounted
    finally:
        subprocess.run(["umount", mounted], check=False)


def test_a_read_only_index_is_searched_and_commands_that_write_say_so(read_only_index, semsearch_cmd, corpus):
    ro = ["--index", read_only_index]
    off = {"SEMSEARCH_NO_WATCHER": "1"}
    query = semsearch_cmd("query", "baking bread at home", "-l", *ro, env=off)
    assert query.returncode == 0, query.stderr
    assert query.stdout.splitlines()[0].endswith("sourdough.txt")
    keyword = semsearch_cmd("query", "metronome", "--mode", "keyword", "-l", *ro, env=off)
    assert keyword.returncode == 0 and "guitar.txt" in keyword.stdout
    status = semsearch_cmd("status", "--json", *ro)
    assert status.returncode == 0 and '"files": 6' in status.stdout
    assert semsearch_cmd("check", *ro).returncode == 0
    similar = semsearch_cmd("similar", corpus / "music" / "guitar.txt", *ro)
    assert similar.returncode == 0, similar.stderr
    for args in (["dupes", "--threshold", "0.1"], ["topics", "-n", "2"]):
        result = semsearch_cmd(*args, *ro)
        assert result.returncode == 0, (args, result.stderr)
    for args in (["index"], ["remove", corpus / "music"], ["watch", "--background"], ["watch"]):
        result = semsearch_cmd(*args, *ro)
        assert result.returncode == 2, (args, result.stderr)
        assert "read-only" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_the_mcp_server_searches_a_read_only_index(read_only_index, corpus, tmp_path):
    import anyio
    from test_security_mcp import _concurrent_session

    calls = {
        "search": ("search", {"query": "baking a loaf of bread at home", "k": 1}),
        "status": ("status", {}),
        "read": ("read", {"path": str(corpus / "music" / "guitar.txt"), "start_line": 1, "context": 0}),
    }
    with open(tmp_path / "server-stderr.txt", "w") as errlog:
        results = anyio.run(_concurrent_session, read_only_index, corpus, errlog, calls)
    assert not any(r.is_error for r in results.values()), {k: r.content for k, r in results.items()}
    assert results["search"].structured_content["hits"][0]["abspath"].endswith("sourdough.txt")
    assert results["status"].structured_content["files"] == 6
