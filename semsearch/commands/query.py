"""`semsearch query`: search the index by meaning and by keyword, and print the hits."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..cli import IndexDir, app, handle_errors, stdout_console
from ..errors import ExitCode, UsageError


@app.command()
@handle_errors
def query(
    text: Annotated[
        Optional[str], typer.Argument(help="What you are looking for, in your own words.", show_default=False)
    ] = None,
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
        Optional[float],
        typer.Option(
            "--min-score", help="Drop hits whose cosine similarity is below this (-1..1; BM25 in keyword mode)."
        ),
    ] = None,
    mode: Annotated[
        Optional[str],
        typer.Option(
            "--mode",
            help="hybrid: meaning and keywords fused; semantic: meaning only; keyword: BM25 only (no model loaded). "
            "Default: the mode setting, else hybrid.",
            show_default=False,
        ),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show each hit's dense and keyword rank and score, and the fused score.")
    ] = False,
    rerank: Annotated[
        Optional[str],
        typer.Option("--rerank", help="Folder of a sentence-transformers CrossEncoder that re-scores the top hits."),
    ] = None,
    rerank_depth: Annotated[
        int, typer.Option("--rerank-depth", min=1, help="How many top hits --rerank re-scores.")
    ] = 30,
    queries: Annotated[
        Optional[str],
        typer.Option(
            "--queries",
            help="Run every query of this file (one per line, or JSON Lines with id and text; - for stdin) "
            "and print JSON Lines tagged with query_id.",
        ),
    ] = None,
    index_dir: IndexDir = None,
):
    """Search the index by meaning and keywords. Exit status: 0 with hits, 1 with none, 2 on error.

    Quoted phrases ("connection pool") and identifiers (ERR_SSL_PROTOCOL) rank exact matches first.

    Example:  semsearch query "how do I rotate the api keys" -k 5 --path '*.md'
    """
    from .. import render, render_formats
    from ..config import resolve
    from ..search import QueryOptions, search_many

    if (text is None) == (queries is None):
        raise UsageError("Give either a query or --queries FILE (not both); see semsearch query --help.")
    if text is not None and not text.strip():
        raise UsageError("The query is empty; say what you are looking for.")
    settings = resolve({"index": index_dir, "top_k": k, "mode": mode})
    fmt = render_formats.output_format(output_format, json_output, files_only)
    files_only = files_only or fmt == "files"
    options = dict(
        k=settings.top_k,
        path_glob=path,
        min_score=min_score,
        files_only=files_only,
        mode=settings.mode,
        rerank=rerank,
        rerank_depth=rerank_depth,
    )
    if queries is not None:
        from ..batch import read_queries

        batch = read_queries(queries)
        results = search_many(settings.index, [QueryOptions(text=q.text, **options) for q in batch])
        render.print_json_lines(
            sys.stdout,
            (
                {"query_id": q.id, "rank": rank, **render.hit_json(h, files_only=files_only, explain=explain)}
                for q, hits in zip(batch, results, strict=True)
                for rank, h in enumerate(hits, 1)
            ),
        )
        if not any(results):
            raise typer.Exit(int(ExitCode.NO_MATCH))
        return

    hits = search_many(settings.index, [QueryOptions(text=text, **options)])[0]
    render_formats.show_hits(stdout_console(), sys.stdout, fmt, hits, text, files_only, explain=explain)
    if not hits:
        raise typer.Exit(int(ExitCode.NO_MATCH))
