"""`semsearch watch`: keep the index following its folders (foreground or background), and `watch stop`."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..cli import IndexDir, app, handle_errors, stderr_console, stdout_console
from ..paths import IndexPaths
from ..processes import make_private, private_opener

READY_TIMEOUT = 120.0  # a background watcher reports within this (it loads no model before it does)


@app.command()
@handle_errors
def watch(
    paths: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="Folders or files to watch (default: the index's roots), or 'stop' to stop the running watcher "
            "(write ./stop for a folder of that name).",
            metavar="[PATH...] | stop",
            show_default=False,
        ),
    ] = None,
    index_dir: IndexDir = None,
    background: Annotated[
        bool, typer.Option("--background", "-b", help="Start a detached watcher, print its pid and return.")
    ] = False,
    debounce: Annotated[
        float,
        typer.Option("--debounce", min=0.05, help="Seconds a change must rest before it is indexed."),
    ] = 1.0,
    max_size: Annotated[float, typer.Option("--max-size", help="Skip files larger than this many MB.")] = 10,
    include: Annotated[
        Optional[list[str]], typer.Option("--include", help="Only index files matching this glob (repeatable).")
    ] = None,
    exclude: Annotated[
        Optional[list[str]], typer.Option("--exclude", help="Skip files and folders matching this glob (repeatable).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No status line or progress; warnings only.")] = False,
    detached: Annotated[bool, typer.Option("--detached", hidden=True)] = False,
):
    """Keep the index up to date as files change, and answer queries fast while it runs.

    It first catches up with what changed since the last run, then indexes each change a moment after it settles. Ctrl-C stops it; --background detaches it (stop it with: semsearch watch stop). One watcher per index; semsearch status shows it. Its log is semsearch.log in the index folder.

    Example:  semsearch watch ~/notes ./docs --background
    """
    from ..config import resolve

    # the same settings as `semsearch index` and `query`: the index folder, exclude globs and chunk size
    settings = resolve({"index": index_dir, "exclude": exclude})
    root = settings.index
    if paths == ["stop"]:
        return _stop(root)
    targets = [Path(p) for p in paths or []]
    from ..crawl import CrawlOptions
    from ..watch import WatchOptions

    options = WatchOptions(
        paths=targets,
        crawl=CrawlOptions(max_bytes=int(max_size * 1024 * 1024), include=include or [], exclude=settings.exclude),
        debounce=debounce,
        chunk_tokens=settings.chunk_size,
    )
    if background:
        return _start_background(root, options, max_size, include or [], exclude or [])
    _run_foreground(root, options, quiet, detached)


def _stop(root: Path) -> None:
    from ..watchstate import stop

    pid = stop(IndexPaths(root))
    if pid is None:
        stdout_console().print(f"No watcher is running for {root}.", markup=False, highlight=False)
    else:
        stdout_console().print(f"Stopped the watcher (pid {pid}).", markup=False, highlight=False)


def _run_foreground(root: Path, options, quiet: bool, detached: bool) -> None:
    import signal
    import warnings

    # watchdog warns when a folder moved back in is watched again; that is expected, not the user's business
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"watchdog\.")

    from ..progress import PlainProgress, Progress, RichProgress
    from ..watch import Watcher

    err = stderr_console()
    terminal = err.is_terminal and not detached and not quiet
    line = _StatusLine(err) if terminal else None
    handlers: list[logging.Handler] = []
    if not detached:
        handler = _ConsoleLog(err)
        handler.setLevel(logging.WARNING if quiet else logging.INFO)
        handlers.append(handler)
    if quiet or detached:
        progress = Progress()
    else:
        progress = RichProgress(err) if terminal else PlainProgress()
    watcher = Watcher(root, options, progress, handlers, on_state=line.update if line else None)

    def on_signal(signum, frame):
        watcher.stop()
        if watcher.busy:  # stop the index pass at its next safe point (it keeps what it finished)
            raise KeyboardInterrupt

    signals = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}  # a closed terminal stops it cleanly too
    try:
        watcher.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if line:
            line.stop()
    if not detached and not quiet:
        err.print("semsearch: stopped watching", markup=False, highlight=False)


def _start_background(root: Path, options, max_size: float, include: list[str], exclude: list[str]) -> None:
    import subprocess

    from ..errors import WatchFailed
    from ..watch import resolve_roots
    from ..watchstate import check_not_running, read_state

    paths = IndexPaths(root)
    roots = resolve_roots(root, options.paths)  # refuse at once what the watcher would refuse
    check_not_running(paths)
    from ..store import require_writable

    require_writable(paths, "a watcher")
    root.mkdir(parents=True, exist_ok=True)
    make_private(root)
    args = [sys.executable, "-m", "semsearch", "watch", *[os.fspath(p) for p in roots if options.paths]]
    args += ["--index", os.fspath(root), "--detached", "--debounce", str(options.debounce), "--max-size", str(max_size)]
    for glob in include:
        args += ["--include", glob]
    for glob in exclude:  # as given: the watcher reads the configuration's own excludes itself
        args += ["--exclude", glob]
    offset = paths.log.stat().st_size if paths.log.exists() else 0
    with open(paths.log, "ab", opener=private_opener) as log:
        child = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True
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
    what = f"{len(roots)} {'root' if len(roots) == 1 else 'roots'}"
    stdout_console().print(
        f"Watching {what} in the background (pid {child.pid}); log: {paths.log}. Stop it with: semsearch watch stop",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


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


class _ConsoleLog(logging.Handler):
    """Log records on stderr (above the status line on a terminal)."""

    def __init__(self, console):
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            self.console.print(f"{stamp} {record.getMessage()}", markup=False, highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


class _StatusLine:
    """The live one-line status on a terminal: roots watched, last update, pending changes."""

    def __init__(self, console):
        self.console = console
        self.state = None
        self._live = None

    def update(self, state) -> None:
        self.state = state
        if self._live is None and state.phase == "watching":
            from rich.live import Live

            self._live = Live(get_renderable=self._render, console=self.console, transient=True, refresh_per_second=2)
            self._live.start()

    def _render(self):
        from rich.text import Text

        s = self.state
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("● ", style="green")
        text.append(f"watching {len(s.roots)} {'root' if len(s.roots) == 1 else 'roots'}")
        if s.last_sync:
            ago = int(time.time() - s.last_sync)
            ago_text = f"{ago} s" if ago < 60 else f"{ago // 60} min" if ago < 3600 else f"{ago // 3600} h"
            when = time.strftime("%H:%M:%S", time.localtime(s.last_sync))
            text.append(f" · updated {when} ({ago_text} ago)", style="dim")
            if s.last_change and s.last_change != "no change":
                text.append(f": {s.last_change}", style="dim")
        if s.indexing:
            text.append(f" · indexing {s.indexed}/{s.indexing}", style="yellow")
        text.append(f" · {s.pending} pending", style="yellow" if s.pending else "dim")
        if s.errors:
            text.append(f" · {s.errors} skipped (see log)", style="red")
        return text

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
