"""`semsearch query`: search the index by meaning and print the hits."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..cli import IndexDir, app, handle_errors, stdout_console
from ..errors import ExitCode
from ..paths import resolve_index_dir


@app.command()
@handle_errors
def query(
    text: Annotated[str, typer.Argument(help="What you are looking for, in your own words.", show_default=False)],
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many hits to show.")] = 10,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per hit (JSON Lines).")] = False,
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
    from ..search import QueryOptions, search

    hits = search(
        resolve_index_dir(index_dir),
        QueryOptions(text=text, k=k, path_glob=path, min_score=min_score, files_only=files_only),
    )
    from .. import render

    if json_output:
        render.print_json_lines(
            sys.stdout,
            (
                {k: v for k, v in render.hit_json(h).items() if k in ("path", "abspath", "path_bytes", "score")}
                for h in hits
            )
            if files_only
            else (render.hit_json(h) for h in hits),
        )
    elif files_only:
        render.print_files(stdout_console(), hits)
    else:
        render.print_hits(stdout_console(), hits, text)
    if not hits:
        raise typer.Exit(int(ExitCode.NO_MATCH))
