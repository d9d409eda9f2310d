"""The command line: the Typer app, and the light entry that answers a plain query without it."""

from __future__ import annotations

import sys


def main() -> None:
    """``semsearch ARGS``: a plain query goes through the light entry (no Typer); anything else, or a query
    it cannot read (help, a value to complain about), through the full command line."""
    if sys.argv[1:2] == ["query"]:
        from semsearch.cli.light import run_light_query

        status = run_light_query(sys.argv[2:])
        if status is not None:
            sys.exit(status)
    from semsearch.cli.app import app

    app()
