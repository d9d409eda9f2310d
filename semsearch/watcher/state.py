"""A watcher's record in its index folder: the lock that makes it the only one, its state file, and stopping it.

Light on purpose: ``semsearch status`` and ``semsearch watch stop`` read it without loading a model.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields

from filelock import FileLock, Timeout

from semsearch.errors import WatcherRunning, WatchFailed
from semsearch.storage.layout import IndexPaths
from semsearch.system import PRIVATE_FILE, alive, make_private

STOP_TIMEOUT = 60.0


@dataclass
class WatcherState:
    pid: int
    started_at: float
    roots: list[str] = field(default_factory=list)
    phase: str = "starting"  # starting, catching up, watching, stopping
    serving: bool = False  # answering queries over the socket
    last_sync: float | None = None  # when the index last caught up with the folders
    last_change: str = ""  # what the last batch did
    pending: int = 0  # changes seen, waiting to settle
    indexing: int = 0  # files being indexed now (0 when idle)
    indexed: int = 0  # of which done
    errors: int = 0  # files that could not be indexed since the start
    log: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def read_state(paths: IndexPaths) -> WatcherState | None:
    try:
        data = json.loads(paths.watch_state.read_text())
        names = {f.name for f in fields(WatcherState)}
        return WatcherState(**{k: v for k, v in data.items() if k in names})
    except (OSError, ValueError, TypeError):
        return None


def write_state(paths: IndexPaths, state: WatcherState) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".watch-", suffix=".tmp", dir=paths.root)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(state.to_json(), f)
        os.replace(tmp, paths.watch_state)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _lock(paths: IndexPaths) -> FileLock:
    return FileLock(str(paths.watch_lock), thread_local=False, mode=PRIVATE_FILE)


@contextmanager
def watch_lock(paths: IndexPaths, wait: float = 1.0) -> Iterator[None]:
    """Be the index's one watcher for the duration; WatcherRunning when another one is."""
    from semsearch.storage.layout import require_writable

    require_writable(paths, "a watcher")
    paths.root.mkdir(parents=True, exist_ok=True)
    make_private(paths.root)
    lock = _lock(paths)
    try:
        lock.acquire(timeout=wait)  # a short wait: `semsearch status` may be probing the lock this instant
    except Timeout:
        raise WatcherRunning(_running_message(paths)) from None
    try:
        yield
    finally:
        lock.release()


def _running_message(paths: IndexPaths) -> str:
    state = read_state(paths)
    pid = f" (pid {state.pid})" if state else ""
    return f"A watcher is already running for {paths.root}{pid}; stop it with: semsearch watch stop"


def is_running(paths: IndexPaths) -> bool:
    """Whether a watcher holds the index's watch lock (a killed one never does)."""
    if not paths.watch_lock.exists():
        return False
    lock = _lock(paths)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:  # cannot even open the lock file: nobody of ours is watching
        return False
    lock.release()
    return False


def check_not_running(paths: IndexPaths) -> None:
    if is_running(paths):
        raise WatcherRunning(_running_message(paths))


def describe(paths: IndexPaths) -> dict:
    """Whether a watcher runs, with its pid, uptime, phase and last sync: for ``semsearch status``."""
    if not is_running(paths):
        return {"running": False}
    state = read_state(paths)
    if state is None:
        return {"running": True, "phase": "starting"}
    info = {"running": True, **state.to_json()}
    info["uptime_seconds"] = round(max(0.0, time.time() - state.started_at), 1)
    return info


def clean_stale(paths: IndexPaths) -> bool:
    """Remove the state file and socket a killed watcher left; True if there were any."""
    if not paths.root.is_dir():
        return False
    lock = _lock(paths)
    try:
        lock.acquire(timeout=0)
    except (Timeout, OSError):
        return False  # a watcher is starting: its files are not stale
    try:
        found = False
        for leftover in (paths.watch_state, paths.query_socket):
            if os.path.lexists(leftover):
                leftover.unlink()
                found = True
        return found
    finally:
        lock.release()


def stop(paths: IndexPaths, timeout: float = STOP_TIMEOUT) -> int | None:
    """Ask the running watcher to stop (SIGTERM) and wait until it has; its pid, or None if none was running."""
    if not is_running(paths):
        clean_stale(paths)
        return None
    deadline = time.monotonic() + timeout
    state = read_state(paths)
    while state is None and is_running(paths) and time.monotonic() < deadline:
        time.sleep(0.1)  # it is starting and has not written its pid yet
        state = read_state(paths)
    if state is None:
        if not is_running(paths):
            return None
        raise WatchFailed(f"The watcher of {paths.root} did not record its pid; try again in a moment.")
    if not _is_semsearch(state.pid):
        raise WatchFailed(
            f"The watcher's record names pid {state.pid}, which is not a semsearch process; nothing was stopped. "
            f"Delete {paths.watch_state} if no watcher runs."
        )
    try:
        os.kill(state.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it is exiting already
    while is_running(paths) or alive(state.pid):
        if time.monotonic() > deadline:
            raise WatchFailed(
                f"The watcher (pid {state.pid}) did not stop within {timeout:.0f} s; it may be finishing a large "
                f"batch. Try again, or end it with: kill -9 {state.pid}"
            )
        time.sleep(0.1)
    return state.pid


def _is_semsearch(pid: int) -> bool:
    """Guard against a recycled pid: on Linux the process's command line must mention semsearch."""
    if pid == os.getpid():
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"semsearch" in f.read()
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # no /proc at all (macOS): trust the lock
    except OSError:
        return True
