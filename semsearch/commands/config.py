"""`semsearch config`: print the effective settings and where each came from."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from semsearch.commands.common import command
from semsearch.output.terminal import stdout_console


@command()
def config(
    json_output: Annotated[bool, typer.Option("--json", help="Print the settings as one JSON object.")] = False,
):
    """Show the effective settings (model, index, exclude, chunk_size, mode, top_k) and the source of each.

    Precedence: command-line flags > environment (SEMSEARCH_*) > .semsearch.toml found from the current folder
    upward > the user config file > defaults.

    Example:  semsearch config --json
    """
    from semsearch.config import resolve

    settings = resolve()
    if json_output:
        from semsearch.output.hits import print_json_lines

        print_json_lines(sys.stdout, [settings.to_json()])
    else:
        from semsearch.output.reports import print_settings

        print_settings(stdout_console(), settings)
