"""`semsearch check`: verify that the index is consistent, and say what is wrong if it is not."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from semsearch.commands.common import IndexDir, command
from semsearch.config import resolve
from semsearch.errors import ExitCode
from semsearch.output.terminal import stdout_console


@command()
def check(
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    index_dir: IndexDir = None,
):
    """Check the index: every chunk has its vector and the reverse, counts agree, the database is sound.

    Changes nothing, and is safe while another semsearch process indexes. Exit status: 0 when the
    index is consistent, 1 when problems were found, 2 when it cannot be opened.

    Example:  semsearch check
    """
    from semsearch.storage.check import check_index

    report = check_index(resolve({"index": index_dir}).index)
    if json_output:
        from semsearch.output.hits import print_json_lines

        print_json_lines(sys.stdout, [report.to_json()])
    else:
        from semsearch.output.reports import print_check

        print_check(stdout_console(), report)
    if not report.consistent:
        raise typer.Exit(int(ExitCode.NO_MATCH))
