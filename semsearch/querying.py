"""What `semsearch query` does once its arguments are read: settings, search (a running watcher answers when
there is one), output. Free of the command-line framework, so a query a watcher answers never loads it."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import ExitCode, UsageError


def run_query(
    *,
    text: str | None,
    k: int | None = None,
    json_output: bool = False,
    output_format: str | None = None,
    files_only: bool = False,
    path: str | None = None,
    min_score: float | None = None,
    mode: str | None = None,
    explain: bool = False,
    rerank: str | None = None,
    rerank_depth: int = 30,
    queries: str | None = None,
    index_dir: Path | None = None,
    watcher_only: bool = False,
) -> int | None:
    """Search and print; the exit status (0 hits, 1 none). With ``watcher_only``, None (and nothing printed)
    when no watcher answers: the caller then runs the full command, which searches in-process."""
    from . import client, render, render_formats
    from .config import resolve
    from .hits import QueryOptions
    from .term import text_console

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
        if watcher_only:
            return None
        from .batch import read_queries

        batch = read_queries(queries)
        results = client.search_many(settings.index, [QueryOptions(text=q.text, **options) for q in batch])
        render.print_json_lines(
            sys.stdout,
            (
                {"query_id": q.id, "rank": rank, **render.hit_json(h, files_only=files_only, explain=explain)}
                for q, hits in zip(batch, results, strict=True)
                for rank, h in enumerate(hits, 1)
            ),
        )
        return int(ExitCode.OK if any(results) else ExitCode.NO_MATCH)

    query = QueryOptions(text=text, **options)
    if watcher_only:
        hits = client.ask_watcher(settings.index, query)
        if hits is None:
            return None
    else:
        hits = client.search(settings.index, query)
    console = None if fmt in ("json", "jsonl", "vimgrep") else text_console(sys.stdout)  # Rich only for styles
    render_formats.show_hits(console, sys.stdout, fmt, hits, text, files_only, explain=explain)
    return int(ExitCode.OK if hits else ExitCode.NO_MATCH)
