"""`semsearch status`: describe the index."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from semsearch.commands.common import IndexDir, command
from semsearch.config import resolve
from semsearch.output.terminal import stdout_console


@command()
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print the status as one JSON object.")] = False,
    index_dir: IndexDir = None,
):
    """Show where the index is, its model, roots, counts, size and last update.

    Example:  semsearch status --json
    """
    from semsearch.analysis.status import index_status

    info = index_status(resolve({"index": index_dir}).index)
    if json_output:
        from semsearch.output.hits import print_json_lines

        print_json_lines(sys.stdout, [info.to_json()])
    else:
        from semsearch.output.reports import print_status

        print_status(stdout_console(), info)
