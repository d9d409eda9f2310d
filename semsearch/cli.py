"""The command line: parse arguments, call one service function, render its result.

Typer is loaded on the first use of ``app`` (or ``IndexDir``): a ``semsearch query`` with plain arguments
never loads it (``client.run_fast`` reads them), which is most of what makes a query a watcher answers
instant, and saves a cold one about 60 ms.
"""

from __future__ import annotations

import functools
import sys

from .errors import ExitCode, SemsearchError


def _build() -> None:
    """Create the Typer app and register the subcommands on it (each imports ``app`` from here)."""
    from pathlib import Path
    from typing import Annotated, Optional

    import typer

    app = typer.Typer(
        name="semsearch",
        help="Search your files by meaning, offline. Index a folder, then ask it questions.\n\n"
        'Example:  semsearch index ./docs && semsearch query "how do I rotate the api keys"',
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
    )
    index_dir = Annotated[
        Optional[Path],
        typer.Option(
            "--index",
            help="Index folder (default: $SEMSEARCH_HOME, else the user data folder).",
            show_default=False,
        ),
    ]
    globals().update(app=app, IndexDir=index_dir)  # from now on found without __getattr__
    from . import commands  # noqa: F401  (registers the subcommands on ``app``)


def __getattr__(name: str):
    if name in ("app", "IndexDir"):
        if "app" not in globals():
            _build()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def setup_logging() -> None:
    """Library warnings reach the user as one line on stderr each (``semsearch: ...``). Logging is imported
    here, not at the top: a query a watcher answers never needs it."""
    import logging

    class NoticeHandler(logging.Handler):
        semsearch_notices = True

        def emit(self, record: logging.LogRecord) -> None:
            message = f"semsearch: {record.getMessage()}"
            stderr_console().print(message, markup=False, highlight=False, soft_wrap=True)

    logger = logging.getLogger("semsearch")
    if not any(getattr(h, "semsearch_notices", False) for h in logger.handlers):
        logger.addHandler(NoticeHandler(logging.WARNING))
        logger.propagate = False


def report_error(error: SemsearchError) -> int:
    """Say what went wrong in one sentence on stderr; the exit status for it."""
    from .pathtext import escape  # a file name in the message must not break the line or the terminal

    stderr_console().print(f"semsearch: {escape(str(error))}", markup=False, highlight=False, soft_wrap=True)
    return int(error.exit_code)


def report_interrupt() -> int:
    stderr_console().print("semsearch: interrupted", markup=False)
    return int(ExitCode.INTERRUPTED)


def report_closed_pipe() -> int:
    """The reader went away (| head): stop quietly, as grep does."""
    from .errors import quiet_stdout

    quiet_stdout()
    return int(ExitCode.CLOSED_PIPE)


def _store_option():
    from typing import Annotated, Optional

    import typer

    return Annotated[
        Optional[str],
        typer.Option(
            "--store",
            help="A PostgreSQL database to keep the index in (a shared index): postgresql://USER@HOST/DATABASE, "
            "with ?index=NAME to pick one of several (default: $SEMSEARCH_STORE or 'store' in a config file).",
            show_default=False,
        ),
    ]


def handle_errors(command):
    """Turn a user-facing error into one sentence on stderr and its exit status; Ctrl-C into 130.

    Every command also gets ``--store URL`` here (the store setting, as a flag: see config.py).
    """
    import inspect

    import typer

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        setup_logging()
        from .config import set_flag

        set_flag("store", kwargs.pop("store", None))
        try:
            return command(*args, **kwargs)
        except SemsearchError as e:
            raise typer.Exit(report_error(e)) from None
        except KeyboardInterrupt:
            raise typer.Exit(report_interrupt()) from None
        except BrokenPipeError:
            raise typer.Exit(report_closed_pipe()) from None

    signature = inspect.signature(command, eval_str=True)
    option = _store_option()
    store = inspect.Parameter("store", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=option)
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), store])
    wrapper.__annotations__ = {**{p.name: p.annotation for p in signature.parameters.values()}, "store": option}
    return wrapper


def main() -> None:
    if sys.argv[1:2] == ["query"]:
        from .client import run_fast

        status = run_fast(sys.argv[2:])
        if status is not None:
            sys.exit(status)
    __getattr__("app")()
