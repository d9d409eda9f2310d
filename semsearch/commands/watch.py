"""`semsearch watch`: keep the index following its folders (foreground or background), and `watch stop`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from semsearch.commands.common import (
    Exclude,
    Follow,
    Include,
    IndexDir,
    MaxSize,
    command,
    crawl_options,
    root_name_option,
    use_root_name,
)
from semsearch.output.terminal import stderr_console, stdout_console
from semsearch.storage.layout import IndexPaths


@command()
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
    max_size: MaxSize = 10,
    follow: Follow = False,
    include: Include = None,
    exclude: Exclude = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No status line or progress; warnings only.")] = False,
    root_name: Annotated[Optional[str], root_name_option("watch the roots and record the files")] = None,
    detached: Annotated[bool, typer.Option("--detached", hidden=True)] = False,
):
    """Keep the index up to date as files change, and answer queries fast while it runs.

    It first catches up with what changed since the last run, then indexes each change a moment after it settles. Ctrl-C stops it; --background detaches it (stop it with: semsearch watch stop). One watcher per index; semsearch status shows it. Its log is semsearch.log in the index folder.

    Example:  semsearch watch ~/notes ./docs --background
    """
    from semsearch.config import resolve

    # the same settings as `semsearch index` and `query`: the index folder, exclude globs and chunk size
    settings = resolve({"index": index_dir, "exclude": exclude, "follow": follow or None})
    root = settings.index
    if paths == ["stop"]:
        return _stop(root)
    use_root_name(root_name)
    targets = [Path(p) for p in paths or []]
    from semsearch.watcher.daemon import WatchOptions

    options = WatchOptions(
        paths=targets,
        crawl=crawl_options(settings, max_size, include),
        debounce=debounce,
        chunk_tokens=settings.chunk_size,
    )
    if background:
        return _start_background(root, options, max_size, include or [], exclude or [], root_name)
    _run_foreground(root, options, quiet, detached)


def _stop(root: Path) -> None:
    from semsearch.watcher.state import stop

    pid = stop(IndexPaths(root))
    if pid is None:
        stdout_console().print(f"No watcher is running for {root}.", markup=False, highlight=False)
    else:
        stdout_console().print(f"Stopped the watcher (pid {pid}).", markup=False, highlight=False)


def _run_foreground(root: Path, options, quiet: bool, detached: bool) -> None:
    import warnings

    # watchdog warns when a folder moved back in is watched again; that is expected, not the user's business
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"watchdog\\.")

    from semsearch.output.progress import progress_for
    from semsearch.output.watching import ConsoleLog, StatusLine
    from semsearch.watcher.control import run_until_stopped
    from semsearch.watcher.daemon import Watcher

    err = stderr_console()
    terminal = err.is_terminal and not detached and not quiet
    line = StatusLine(err) if terminal else None
    handlers: list[logging.Handler] = []
    if not detached:
        handler = ConsoleLog(err)
        handler.setLevel(logging.WARNING if quiet else logging.INFO)
        handlers.append(handler)
    progress = progress_for(err, quiet or detached)
    watcher = Watcher(root, options, progress, handlers, on_state=line.update if line else None)
    try:
        run_until_stopped(watcher)
    finally:
        if line:
            line.stop()
    if not detached and not quiet:
        err.print("semsearch: stopped watching", markup=False, highlight=False)


def _start_background(
    root: Path, options, max_size: float, include: list[str], exclude: list[str], root_name: str | None
) -> None:
    from semsearch.watcher.control import start_background

    pid, roots = start_background(root, options, max_size, include, exclude, root_name)
    what = f"{roots} {'root' if roots == 1 else 'roots'}"
    stdout_console().print(
        f"Watching {what} in the background (pid {pid}); log: {IndexPaths(root).log}. Stop it with: semsearch watch stop",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
