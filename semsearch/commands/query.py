"""`semsearch query`: search the index by meaning and by keyword, and print the hits."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..cli import IndexDir, app, handle_errors
from ..hits import MAX_TOP_K


@app.command()
@handle_errors
def query(
    text: Annotated[
        Optional[str], typer.Argument(help="What you are looking for, in your own words.", show_default=False)
    ] = None,
    k: Annotated[
        Optional[int],
        typer.Option(
            "-k", "--top", min=1, max=MAX_TOP_K, help="How many hits to show (default: top_k setting, else 10).", show_default=False
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
        int, typer.Option("--rerank-depth", min=1, max=MAX_TOP_K, help="How many top hits --rerank re-scores.")
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
    from ..querying import run_query  # the body, free of Typer: the fast path of cli.main calls it too

    status = run_query(
        text=text,
        k=k,
        json_output=json_output,
        output_format=output_format,
        files_only=files_only,
        path=path,
        min_score=min_score,
        mode=mode,
        explain=explain,
        rerank=rerank,
        rerank_depth=rerank_depth,
        queries=queries,
        index_dir=index_dir,
    )
    if status:
        raise typer.Exit(status)
