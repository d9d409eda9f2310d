"""The full command line: the Typer app with every subcommand registered on it."""

from __future__ import annotations

import typer

from semsearch.commands import check, config, dupes, index, mcp, query, remove, similar, status, topics, watch  # noqa: F401 (each registers itself)
from semsearch.commands.common import COMMANDS

app = typer.Typer(
    name="semsearch",
    help="Search your files by meaning, offline. Index a folder, then ask it questions.\n\n"
    'Example:  semsearch index ./docs && semsearch query "how do I rotate the api keys"',
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

app.command("query")(query.typer_command())
for _name, _function in COMMANDS:
    app.command(_name)(_function)
