"""`semsearch status`: describe the index."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..cli import IndexDir, app, handle_errors, stdout_console
from ..paths import resolve_index_dir


@app.command()
@handle_errors
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print the status as one JSON object.")] = False,
    index_dir: IndexDir = None,
):
    """Show where the index is, its model, roots, counts, size and last update.

    Example:  semsearch status --json
    """
    from ..status import index_status

    info = index_status(resolve_index_dir(index_dir))
    if json_output:
        from ..render import print_json_lines

        print_json_lines(sys.stdout, [info.to_json()])
    else:
        from ..render import print_status

        print_status(stdout_console(), info)
