"""What every subcommand shares: the --index option, its error handling, and its registration on the app."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from semsearch.commands import INDEX_HELP
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

COMMANDS: list[tuple[str | None, Callable]] = []  # (name, function) in the order the modules declare them


def handle_errors(command):
    """Turn a user-facing error into one sentence on stderr and its exit status; Ctrl-C into 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        setup_logging()
        try:
            return command(*args, **kwargs)
        except SemsearchError as e:
            raise typer.Exit(report_error(e)) from None
        except KeyboardInterrupt:
            raise typer.Exit(report_interrupt()) from None
        except BrokenPipeError:
            raise typer.Exit(report_closed_pipe()) from None

    return wrapper


def command(name: str | None = None):
    """Declare a subcommand: its errors handled, registered by ``semsearch.cli.app`` under ``name``."""

    def register(function: Callable) -> Callable:
        wrapped = handle_errors(function)
        COMMANDS.append((name, wrapped))
        return wrapped

    return register
