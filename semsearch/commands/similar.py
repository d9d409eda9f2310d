"""`semsearch similar`: the passages and files most like a file, or like one passage of it."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from semsearch.commands.common import IndexDir, command
from semsearch.config import MAX_TOP_K
from semsearch.errors import ExitCode
from semsearch.output.terminal import stdout_console


@command()
def similar(
    target: Annotated[
        str,
        typer.Argument(
            help="An indexed file, or PATH:LINE for the passage at that line (any location query prints works).",
            show_default=False,
        ),
    ],
    k: Annotated[
        Optional[int],
        typer.Option(
            "-k",
            "--top",
            min=1,
            max=MAX_TOP_K,
            help="How many passages and files (default: top_k setting, else 10).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per file and passage (JSON Lines).")
    ] = False,
    output_format: Annotated[
        Optional[str],
        typer.Option("--format", help="text, json, jsonl, files or vimgrep (path:line:col:text).", show_default=False),
    ] = None,
    index_dir: IndexDir = None,
):
    """List the passages and files most similar to a file or one passage of it, never from the file itself.

    Uses the vectors already in the index: no model is loaded.

    Example:  semsearch similar notes/retry.md:12 -k 5
    """
    from semsearch.analysis.similar import similar as find_similar
    from semsearch.config import resolve
    from semsearch.output.formats import output_format as choose_format
    from semsearch.output.reports import show_similar

    settings = resolve({"index": index_dir, "top_k": k})
    fmt = choose_format(output_format, json_output)
    result = find_similar(settings.index, target, settings.top_k)
    show_similar(stdout_console(), sys.stdout, fmt, result)
    if not result.files and not result.passages:
        raise typer.Exit(int(ExitCode.NO_MATCH))
