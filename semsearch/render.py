"""Show results to people and to programs: grep-like text, JSON lines, file lists, status tables."""

from __future__ import annotations

import json
import os
import re
import time

from rich.console import Console
from rich.text import Text

from .search import Hit, display_path

_STOPWORDS = frozenset(
    "the and for are but not you all any can had her was one our out has have how what when where which who why "
    "will with this that from they them their there then than into onto over under about does did do is it its of "
    "on or in to a an as at be by if my no so up we".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
SNIPPET_LINES = 3


def safe(text: str) -> str:
    """Escape control characters (and undecodable bytes) so a file name cannot disturb the terminal."""
    return "".join(
        ch if ch.isprintable() or ch == "\t" else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        for ch in text
    )


def query_terms(query: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(query) if len(w) >= 3 and w.lower() not in _STOPWORDS}


def _matches(line: str, terms: set[str]) -> int:
    words = {w.lower() for w in _WORD.findall(line)}
    return sum(1 for t in terms if any(w.startswith(t[: max(4, len(t) - 2)]) for w in words))


def snippet(hit: Hit, terms: set[str], lines: int = SNIPPET_LINES) -> list[tuple[int, str]]:
    """The few lines of a hit that share most words with the query (else its first lines)."""
    numbered = [(hit.start_line + i, line) for i, line in enumerate(hit.text.split("\n"))]
    numbered = [(n, line) for n, line in numbered if line.strip()] or numbered
    if len(numbered) <= lines:
        return numbered
    best, best_score = 0, -1
    for start in range(len(numbered) - lines + 1):
        score = sum(_matches(line, terms) for _, line in numbered[start : start + lines])
        if score > best_score:
            best, best_score = start, score
    return numbered[best : best + lines]


def highlight(line: str, terms: set[str]) -> Text:
    text = Text(safe(line))
    for match in _WORD.finditer(text.plain):
        word = match.group().lower()
        if any(word.startswith(t[: max(4, len(t) - 2)]) for t in terms):
            text.stylize("bold red", match.start(), match.end())
    return text


def location(hit: Hit) -> str:
    """``path:line`` (grep style); PDFs name the page, notebooks the cell."""
    path = display_path(hit.path)
    if hit.page is not None:
        return f"{path}:p{hit.page}:{hit.start_line}"
    if hit.cell is not None:
        return f"{path}:cell{hit.cell}:{hit.start_line}"
    return f"{path}:{hit.start_line}"


def print_hits(console: Console, hits: list[Hit], query: str) -> None:
    terms = query_terms(query)
    for i, hit in enumerate(hits):
        if i:
            console.print()
        head = Text()
        head.append(safe(location(hit)), style="magenta")
        if hit.end_line != hit.start_line:
            head.append(f"-{hit.end_line}", style="magenta")
        head.append(f"  {hit.score:.3f}", style="dim")
        if hit.heading:
            head.append(f"  {safe(hit.heading)}", style="cyan")
        console.print(head, soft_wrap=True)
        for number, line in snippet(hit, terms):
            row = Text(f"{number:>6}  ", style="green")
            row.append_text(highlight(line.rstrip(), terms))
            console.print(row, soft_wrap=True)


def hit_json(hit: Hit) -> dict:
    return {
        "path": display_path(hit.path),
        "abspath": os.fsdecode(hit.path),
        "start_line": hit.start_line,
        "end_line": hit.end_line,
        "page": hit.page,
        "cell": hit.cell,
        "heading": hit.heading,
        "score": round(hit.score, 6),
        "text": hit.text,
    }


def print_json_lines(stream, objects) -> None:
    for obj in objects:
        stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
    stream.flush()


def print_files(console: Console, hits: list[Hit]) -> None:
    for hit in hits:
        console.print(Text(safe(display_path(hit.path)), style="magenta"), soft_wrap=True)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def human_time(ts: float | None) -> str:
    if not ts:
        return "never"
    ago = time.time() - ts
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    for unit, seconds in (("d", 86400), ("h", 3600), ("min", 60)):
        if ago >= seconds:
            return f"{when} ({int(ago // seconds)} {unit} ago)"
    return f"{when} ({int(ago)} s ago)"


def print_status(console: Console, status) -> None:
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("index", safe(status.index_dir))
    table.add_row("model", f"{status.model} ({status.dim} dimensions)")
    table.add_row("roots", "\n".join(safe(r) for r in status.roots) or "none")
    skipped = f" ({status.files_skipped} skipped: unreadable or unsupported)" if status.files_skipped else ""
    table.add_row("files", f"{status.files}{skipped}")
    table.add_row("chunks", str(status.chunks))
    table.add_row("size", human_size(status.size_bytes))
    table.add_row("updated", human_time(status.updated_at))
    table.add_row("search", status.search)
    if not status.vectors_current:
        table.add_row("vectors", "behind the database (an interrupted run); the next index or query catches up")
    console.print(table)
