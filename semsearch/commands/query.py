"""`semsearch query`: search the index by meaning and print the hits."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..cli import IndexDir, app, handle_errors, stdout_console
from ..errors import ExitCode


@app.command()
@handle_errors
def query(
    text: Annotated[str, typer.Argument(help="What you are looking for, in your own words.", show_default=False)],
    k: Annotated[
        Optional[int],
        typer.Option(
            "-k", "--top", min=1, help="How many hits to show (default: top_k setting, else 10).", show_default=False
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per hit (JSON Lines).")] = False,
    output_format: Annotated[
        Optional[str],
        typer.Option("--format", help="text, json, jsonl, files or vimgrep (path:line:col:text).", show_default=False),
    ] = None,
    files_only: Annotated[
        bool, typer.Option("-l", "--files-only", help="Print each matching file once, best first.")
    ] = False,
    path: Annotated[
        Optional[str], typer.Option("--path", help="Only hits whose path matches this glob, e.g. '*.md' or 'docs/*'.")
    ] = None,
    min_score: Annotated[
        Optional[float], typer.Option("--min-score", help="Drop hits scoring below this (cosine, -1..1).")
    ] = None,
    index_dir: IndexDir = None,
):
    """Search the index by meaning. Exit status: 0 with hits, 1 with none, 2 on error.

    Example:  semsearch query "how do I rotate the api keys" -k 5 --path '*.md'
    """
    from .. import render_formats
    from ..config import resolve
    from ..search import QueryOptions, search

    settings = resolve({"index": index_dir, "top_k": k})
    fmt = render_formats.output_format(output_format, json_output, files_only)
    files_only = files_only or fmt == "files"
    hits = search(
        settings.index,
        QueryOptions(text=text, k=settings.top_k, path_glob=path, min_score=min_score, files_only=files_only),
    )
    render_formats.show_hits(stdout_console(), sys.stdout, fmt, hits, text, files_only)
    if not hits:
        raise typer.Exit(int(ExitCode.NO_MATCH))
