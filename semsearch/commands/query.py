"""`semsearch query`: search the index by meaning and by keyword, and print the hits.

Free of Typer: the light entry (``semsearch.cli.light``) parses a plain query with the same option table
(``OPTIONS``) and calls the same ``run``; ``typer_command`` builds the full command line's signature from it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from semsearch.commands import INDEX_HELP, STORE_HELP
from semsearch.config import MAX_TOP_K
from semsearch.errors import ExitCode, UsageError
from semsearch.search.hits import RERANK_DEPTH

TEXT_HELP = "What you are looking for, in your own words."
HELP = """Search the index by meaning and keywords. Exit status: 0 with hits, 1 with none, 2 on error.

Each hit's score is its relevance, 0 to 1 (the estimated chance that the passage is relevant). Hits unlikely
to be relevant are not shown; when none is left, the query says so and exits 1. --all shows the best hits anyway.

Quoted phrases ("connection pool") and identifiers (ERR_SSL_PROTOCOL) rank exact matches first.

Example:  semsearch query "how do I rotate the api keys" -k 5 --path '*.md'
"""


@dataclass(frozen=True)
class Option:
    """One option of ``semsearch query``, as both the Typer command and the light parser read it."""

    name: str  # the keyword ``run`` takes
    flags: tuple[str, ...]
    type: type  # bool (a flag), int, float, str or Path
    default: Any
    help: str
    minimum: int | None = None
    maximum: int | None = None


OPTIONS: tuple[Option, ...] = (
    Option("k", ("-k", "--top"), int, None, "How many hits to show (default: top_k setting, else 10).", 1, MAX_TOP_K),
    Option("json_output", ("--json",), bool, False, "One JSON object per hit (JSON Lines)."),
    Option("output_format", ("--format",), str, None, "text, json, jsonl, files or vimgrep (path:line:col:text)."),
    Option("files_only", ("-l", "--files-only"), bool, False, "Print each matching file once, best first."),
    Option("path", ("--path",), str, None, "Only hits whose path matches this glob, e.g. '*.md' or 'docs/*'."),
    Option(
        "min_score",
        ("--min-score",),
        float,
        None,
        "Show only hits whose relevance is at least this (0..1), instead of the default cut-off.",
    ),
    Option("show_all", ("--all",), bool, False, "Show the best hits whatever their relevance (no cut-off)."),
    Option(
        "mode",
        ("--mode",),
        str,
        None,
        "hybrid: meaning and keywords fused; semantic: meaning only; keyword: BM25 only (no model loaded). "
        "Default: the mode setting, else hybrid.",
    ),
    Option(
        "explain", ("--explain",), bool, False, "Show each hit's dense and keyword rank and score, and the fused score."
    ),
    Option(
        "rerank",
        ("--rerank",),
        str,
        None,
        "Folder of a sentence-transformers CrossEncoder that re-scores the top hits.",
    ),
    Option(
        "rerank_depth", ("--rerank-depth",), int, RERANK_DEPTH, "How many top hits --rerank re-scores.", 1, MAX_TOP_K
    ),
    Option(
        "queries",
        ("--queries",),
        str,
        None,
        "Run every query of this file (one per line, or JSON Lines with id and text; - for stdin) "
        "and print JSON Lines tagged with query_id.",
    ),
    Option("index_dir", ("--index",), Path, None, INDEX_HELP),
    Option("store", ("--store",), str, None, STORE_HELP),
)


def run(
    *,
    text: str | None,
    k: int | None = None,
    json_output: bool = False,
    output_format: str | None = None,
    files_only: bool = False,
    path: str | None = None,
    min_score: float | None = None,
    show_all: bool = False,
    mode: str | None = None,
    explain: bool = False,
    rerank: str | None = None,
    rerank_depth: int = RERANK_DEPTH,
    queries: str | None = None,
    index_dir: Path | None = None,
    store: str | None = None,
) -> int:
    """Search and print; the exit status (0 hits, 1 none). Settings are resolved once; the index's watcher
    is asked once, and the search runs here when it does not answer."""
    from semsearch.config import resolve
    from semsearch.output import formats
    from semsearch.output import hits as hit_output
    from semsearch.output.messages import setup_logging
    from semsearch.output.terminal import text_console
    from semsearch.search.hits import QueryOptions
    from semsearch.watcher import client

    if (text is None) == (queries is None):
        raise UsageError("Give either a query or --queries FILE (not both); see semsearch query --help.")
    if text is not None and not text.strip():
        raise UsageError("The query is empty; say what you are looking for.")
    settings = resolve({"index": index_dir, "store": store, "top_k": k, "mode": mode})
    if min_score is None:
        min_score = settings.min_score  # the min_score setting (None: the calibrated cut-off)
    fmt = formats.output_format(output_format, json_output, files_only)
    files_only = files_only or fmt == "files"
    options = dict(
        k=settings.top_k,
        path_glob=path,
        min_score=min_score,
        show_all=show_all,
        files_only=files_only,
        mode=settings.mode,
        rerank=rerank,
        rerank_depth=rerank_depth,
    )
    if queries is not None:
        from semsearch.search.batch import read_queries

        batch = read_queries(queries)
        results = client.search_many(
            settings.index, [QueryOptions(text=q.text, **options) for q in batch], before_local=setup_logging
        )
        hit_output.print_json_lines(
            sys.stdout,
            (
                {"query_id": q.id, "rank": rank, **hit_output.hit_json(h, files_only=files_only, explain=explain)}
                for q, hits in zip(batch, results, strict=True)
                for rank, h in enumerate(hits, 1)
            ),
        )
        if not any(results) and not show_all and (min_score is None or min_score > 0):
            _say_no_match(min_score, several=True)
        return int(ExitCode.OK if any(results) else ExitCode.NO_MATCH)

    query = QueryOptions(text=text, **options)
    hits = client.search(settings.index, query, before_local=setup_logging)
    console = None if fmt in ("json", "jsonl", "vimgrep") else text_console(sys.stdout)  # Rich only for styles
    formats.show_hits(console, sys.stdout, fmt, hits, text, files_only, explain=explain)
    if not hits and not show_all and (min_score is None or min_score > 0):
        # say so only when the floor left something out (an empty index, a path no file matches: grep's silence)
        closest = client.search(
            settings.index, replace(query, k=1, min_score=None, show_all=True), before_local=setup_logging
        )
        if closest:
            _say_no_match(min_score)
    return int(ExitCode.OK if hits else ExitCode.NO_MATCH)


def _say_no_match(min_score: float | None, several: bool = False) -> None:
    """One line on stderr when the cut-off left nothing (grep's silence would leave the user guessing)."""
    from semsearch.output.terminal import stderr_console

    what = "these queries" if several else "this query"
    if min_score is None:
        message = f"semsearch: no passage matches {what} well; add --all to see the closest passages anyway"
    else:
        message = (
            f"semsearch: no passage matches {what} with a relevance of {min_score:g} or more; lower --min-score, "
            "or add --all to see the closest passages anyway"
        )
    stderr_console().print(message, markup=False, highlight=False, soft_wrap=True)


def typer_command():
    """The Typer command for ``semsearch query``, its signature built from ``OPTIONS``."""
    import inspect
    from typing import Annotated, Optional

    import typer

    from semsearch.commands.common import handle_errors

    keyword = inspect.Parameter.KEYWORD_ONLY
    text = Annotated[Optional[str], typer.Argument(help=TEXT_HELP, show_default=False)]
    parameters = [inspect.Parameter("text", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=text)]
    for option in OPTIONS:
        settings: dict[str, Any] = {"help": option.help}
        if option.minimum is not None:
            settings["min"] = option.minimum
        if option.maximum is not None:
            settings["max"] = option.maximum
        if option.default is None:
            settings["show_default"] = False
        kind = option.type if option.default is not None else Optional[option.type]
        annotation = Annotated[kind, typer.Option(*option.flags, **settings)]
        parameters.append(inspect.Parameter(option.name, keyword, default=option.default, annotation=annotation))

    def query(**values):
        status = run(**values)
        if status:
            raise typer.Exit(status)

    query.__signature__ = inspect.Signature(parameters)
    query.__doc__ = HELP
    return handle_errors(query)
