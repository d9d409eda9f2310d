"""Run a watcher: in the foreground until a signal stops it, or detached in the background, started and
checked here until it reports ready."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from semsearch.storage.layout import IndexPaths

READY_TIMEOUT = 120.0  # a background watcher reports within this (it loads no model before it does)


def run_until_stopped(watcher) -> None:
    """Run ``watcher`` until SIGTERM, SIGINT or SIGHUP (a closed terminal) stops it cleanly."""
    import signal

    def on_signal(signum, frame):
        watcher.stop()
        if watcher.busy:  # stop the index pass at its next safe point (it keeps what it finished)
            raise KeyboardInterrupt

    signals = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    try:
        watcher.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def start_background(
    root: Path, options, max_size: float, include: list[str], exclude: list[str], root_name: str | None = None
) -> tuple[int, int]:
    """Start a detached watcher of ``root`` and wait until it reports ready; its pid and number of roots."""
    import subprocess

    from semsearch.errors import WatchFailed
    from semsearch.storage.layout import require_writable
    from semsearch.system import make_private, private_opener
    from semsearch.watcher.daemon import resolve_roots
    from semsearch.watcher.state import check_not_running, read_state

    paths = IndexPaths(root)
    roots = resolve_roots(root, options.paths)  # refuse at once what the watcher would refuse
    check_not_running(paths)
    require_writable(paths, "a watcher")
    root.mkdir(parents=True, exist_ok=True)
    make_private(root)
    args = [sys.executable, "-m", "semsearch", "watch", *[os.fspath(p) for p in roots if options.paths]]
    args += ["--index", os.fspath(root), "--detached", "--debounce", str(options.debounce), "--max-size", str(max_size)]
    if options.crawl.follow:
        args.append("--follow")
    for glob in include:
        args += ["--include", glob]
    for glob in exclude:  # as given: the watcher reads the configuration's own excludes itself
        args += ["--exclude", glob]
    if root_name:
        args += ["--root-name", root_name]
    offset = paths.log.stat().st_size if paths.log.exists() else 0
    from semsearch.storespec import for_child

    env = {**os.environ, **for_child(root)}  # a shared (PostgreSQL) index: the folder names it (store.json)
    with open(paths.log, "ab", opener=private_opener) as log:
        child = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True, env=env
        )
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        code = child.poll()
        if code is not None:
            raise WatchFailed(_child_error(paths.log, offset) or f"The watcher exited at once; see {paths.log}")
        state = read_state(paths)
        if state and state.pid == child.pid and state.phase in ("catching up", "watching"):
            break
        if time.monotonic() > deadline:
            raise WatchFailed(
                f"The watcher (pid {child.pid}) did not report ready within {READY_TIMEOUT:.0f} s; see {paths.log}"
            )
        time.sleep(0.1)
    return child.pid, len(roots)


def _child_error(log: Path, offset: int) -> str:
    """The one-sentence error a watcher that failed to start printed into its log."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    errors = [ln.removeprefix("semsearch: ") for ln in lines if ln.startswith("semsearch: ")]
    return errors[-1] if errors else ""
