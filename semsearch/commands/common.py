"""What every subcommand shares: the --index option, its error handling, and its registration on the app."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from semsearch.commands import INDEX_HELP, STORE_HELP
from semsearch.errors import SemsearchError
from semsearch.output.messages import report_closed_pipe, report_error, report_interrupt, setup_logging

IndexDir = Annotated[
    Optional[Path],
    typer.Option(
        "--index",
        help=INDEX_HELP,
        show_default=False,
    ),
]

StoreUrl = Annotated[Optional[str], typer.Option("--store", help=STORE_HELP, show_default=False)]

# What to read under the roots: the options ``index`` and ``watch`` share (``crawl_options`` turns them into a crawl).
MaxSize = Annotated[
    float, typer.Option("--max-size", min=0, max=1_000_000, help="Skip files larger than this many MB.")
]
Follow = Annotated[
    bool,
    typer.Option(
        "--follow",
        "-L",
        help="Follow every symbolic link, as rg -L (default: only links that stay inside the indexed folders; "
        "setting: follow).",
    ),
]
Include = Annotated[
    Optional[list[str]], typer.Option("--include", help="Only index files matching this glob (repeatable).")
]
Exclude = Annotated[
    Optional[list[str]], typer.Option("--exclude", help="Skip files and folders matching this glob (repeatable).")
]


def crawl_options(settings, max_size: float, include: list[str] | None):
    """The crawl those options ask for (``settings``: resolved with their exclude globs and follow)."""
    from semsearch.errors import check_range
    from semsearch.index.crawl import CrawlOptions

    max_size = check_range("--max-size", max_size, 0.0, 1_000_000.0)
    return CrawlOptions(
        max_bytes=int(max_size * 1024 * 1024), include=include or [], exclude=settings.exclude, follow=settings.follow
    )


def root_name_option(doing: str) -> object:
    """The ``--root-name`` option of a command that writes a shared index (``doing``: what it does with it)."""
    return typer.Option(
        "--root-name",
        help=f"With a shared (--store) index: {doing} under this name instead of this machine's host name "
        "(paths from other machines show as NAME:/path).",
        show_default=False,
    )


def use_root_name(name: str | None) -> None:
    """Record this command's roots and files under ``name`` (None: the host name); a bad name is a usage error."""
    from semsearch.errors import UsageError
    from semsearch.storespec import set_root_name

    if name is not None and (not name.strip() or ":" in name or "/" in name):
        raise UsageError(f"--root-name {name!r} must be a non-empty name without ':' or '/'.")
    set_root_name(name.strip() if name else None)


COMMANDS: list[tuple[str | None, Callable]] = []  # (name, function) in the order the modules declare them


def handle_errors(command):
    """Turn a user-facing error into one sentence on stderr and its exit status; Ctrl-C into 130.

    Every command also takes ``--store URL`` here, unless it declares it itself: the store setting as a flag
    (see config.py), which the command's own settings then resolve.
    """
    import inspect

    from semsearch.config import set_flag
    from semsearch.storespec import set_root_name

    signature = inspect.signature(command, eval_str=True)
    own_store = "store" in signature.parameters

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        setup_logging()
        set_flag("store", None if own_store else kwargs.pop("store", None))
        try:
            return command(*args, **kwargs)
        except SemsearchError as e:
            raise typer.Exit(report_error(e)) from None
        except KeyboardInterrupt:
            raise typer.Exit(report_interrupt()) from None
        except BrokenPipeError:
            raise typer.Exit(report_closed_pipe()) from None
        finally:
            set_flag("store", None)  # for this command only (tests run many in one process)
            set_root_name(None)

    if not own_store:
        store = inspect.Parameter("store", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=StoreUrl)
        wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), store])
        wrapper.__annotations__ = {**{p.name: p.annotation for p in signature.parameters.values()}, "store": StoreUrl}
    return wrapper


def command(name: str | None = None):
    """Declare a subcommand: its errors handled, registered by ``semsearch.cli.app`` under ``name``."""

    def register(function: Callable) -> Callable:
        wrapped = handle_errors(function)
        COMMANDS.append((name, wrapped))
        return wrapped

    return register
