"""--format: hits as text, one JSON array, JSON lines, a list of files, or vimgrep lines for editors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Rich loads where text is drawn for people: JSON output never needs it
    from rich.console import Console

    from semsearch.output.terminal import PlainConsole

from semsearch.output.hits import WORD, hit_json, print_files, print_hits, print_json_lines, query_terms, safe, snippet
from semsearch.search.hits import Hit, display_path

FORMATS = ("text", "json", "jsonl", "files", "vimgrep")


def output_format(name: str | None, json_lines: bool = False, files_only: bool = False) -> str:
    """The format to print in: ``--format`` when given, ``--json`` as jsonl, ``-l`` as files, else text."""
    from semsearch.errors import UsageError

    if name is not None and name not in FORMATS:
        raise UsageError(f"Unknown --format {name!r}; choose one of: {', '.join(FORMATS)}.")
    if name is not None and json_lines and name != "jsonl":
        raise UsageError(f"--json means --format jsonl; drop one of --json and --format {name}.")
    return name or ("jsonl" if json_lines else "files" if files_only else "text")


def show_hits(
    console: Console | PlainConsole | None,
    stream,
    fmt: str,
    hits: list[Hit],
    query: str,
    files_only: bool = False,
    explain: bool = False,
) -> None:
    """Print hits in one of FORMATS (``files_only``: one hit per file, shown without its passage;
    ``explain``: with each hit's dense and keyword ranks and scores)."""
    if fmt in ("json", "jsonl"):
        objects = [hit_json(h, files_only=files_only, explain=explain) for h in hits]
        if fmt == "json":
            stream.write(json.dumps(objects, ensure_ascii=False, indent=2) + "\n")
            stream.flush()
        else:
            print_json_lines(stream, objects)
    elif fmt == "vimgrep":
        print_vimgrep(stream, hits, query)
    elif fmt == "files" or files_only:
        print_files(console, hits, explain=explain)
    else:
        print_hits(console, hits, query, explain=explain)
    stream.flush()  # a closed pipe shows here, where the caller handles it, not at exit


def vimgrep_line(hit: Hit, terms: set[str]) -> str:
    """``path:line:col:text`` for an editor's quickfix list: the hit's line that best matches the query.

    PDF pages and notebook cells have no line in the file itself: they point at line 1, and the text
    starts with the page or cell (``[p12:3]``).
    """
    number, line = (snippet(hit, terms, 1) or [(hit.start_line, "")])[0]
    column = 1
    for match in WORD.finditer(line):
        word = match.group().lower()
        if any(word.startswith(t[: max(4, len(t) - 2)]) for t in terms):
            column = match.start() + 1
            break
    text = safe(line)
    if hit.page is not None or hit.cell is not None:
        where = f"p{hit.page}" if hit.page is not None else f"cell{hit.cell}"
        number, column, text = 1, 1, f"[{where}:{number}] {text}"
    return f"{safe(display_path(hit.path))}:{number}:{column}:{text}"


def print_vimgrep(stream, hits: list[Hit], query: str) -> None:
    terms = query_terms(query)
    for hit in hits:
        stream.write(vimgrep_line(hit, terms) + "\n")
    stream.flush()
