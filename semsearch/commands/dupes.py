"""`semsearch dupes`: near-duplicate passages and files in the index."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from semsearch.commands.common import IndexDir, command
from semsearch.errors import ExitCode
from semsearch.output.terminal import stdout_console


@command()
def dupes(
    threshold: Annotated[
        float, typer.Option("--threshold", "-t", help="Report pairs whose cosine similarity is at least this.")
    ] = 0.95,
    limit: Annotated[
        Optional[int], typer.Option("--limit", "-n", min=1, help="Show at most this many passage pairs (default: all).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    index_dir: IndexDir = None,
):
    """Report near-duplicate passages, and files most of whose passages are near-duplicates of each other.

    Compares the vectors already in the index (FAISS range search): no model is loaded.
    Exit status: 0 when duplicates are found, 1 when none, 2 on error.

    Example:  semsearch dupes --threshold 0.9 --limit 20
    """
    from semsearch.analysis.dupes import find_dupes
    from semsearch.config import resolve
    from semsearch.output.reports import show_dupes

    report = find_dupes(resolve({"index": index_dir}).index, threshold)
    show_dupes(stdout_console(), sys.stdout, json_output, report, limit)
    if not report.passages:
        raise typer.Exit(int(ExitCode.NO_MATCH))
