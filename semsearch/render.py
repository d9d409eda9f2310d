"""Show results to people and to programs: grep-like text, JSON lines, file lists, status tables."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

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
        head.append(safe(location(hit)), style=path_style(console, hit.path))
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
        console.print(Text(safe(display_path(hit.path)), style=path_style(console, hit.path)), soft_wrap=True)


# -- output formats (--format) and terminal hyperlinks ---------------------------------------------

FORMATS = ("text", "json", "jsonl", "files", "vimgrep")


def output_format(name: str | None, json_lines: bool = False, files_only: bool = False) -> str:
    """The format to print in: ``--format`` when given, ``--json`` as jsonl, ``-l`` as files, else text."""
    from .errors import UsageError

    if name is not None and name not in FORMATS:
        raise UsageError(f"Unknown --format {name!r}; choose one of: {', '.join(FORMATS)}.")
    if name is not None and json_lines and name != "jsonl":
        raise UsageError(f"--json means --format jsonl; drop one of --json and --format {name}.")
    return name or ("jsonl" if json_lines else "files" if files_only else "text")


def show_hits(console: Console, stream, fmt: str, hits: list[Hit], query: str, files_only: bool = False) -> None:
    """Print hits in one of FORMATS (``files_only``: one hit per file, shown without its passage)."""
    if fmt in ("json", "jsonl"):
        objects = [file_json(h) if files_only else hit_json(h) for h in hits]
        if fmt == "json":
            stream.write(json.dumps(objects, ensure_ascii=False, indent=2) + "\n")
            stream.flush()
        else:
            print_json_lines(stream, objects)
    elif fmt == "vimgrep":
        print_vimgrep(stream, hits, query)
    elif fmt == "files" or files_only:
        print_files(console, hits)
    else:
        print_hits(console, hits, query)


def file_json(hit: Hit) -> dict:
    return {"path": display_path(hit.path), "abspath": os.fsdecode(hit.path), "score": round(hit.score, 6)}


def vimgrep_line(hit: Hit, terms: set[str]) -> str:
    """``path:line:col:text`` for an editor's quickfix list: the hit's line that best matches the query.

    PDF pages and notebook cells have no line in the file itself: they point at line 1, and the text
    starts with the page or cell (``[p12:3]``).
    """
    number, line = (snippet(hit, terms, 1) or [(hit.start_line, "")])[0]
    column = 1
    for match in _WORD.finditer(line):
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


def hyperlinks_enabled(console: Console) -> bool:
    """File paths become terminal hyperlinks (OSC 8) on a terminal that is not dumb nor the Linux console.

    ``FORCE_HYPERLINK=1`` turns them on anywhere and ``FORCE_HYPERLINK=0`` off (the convention of the
    supports-hyperlinks package); terminals without OSC 8 support ignore the sequence.
    """
    force = os.environ.get("FORCE_HYPERLINK")
    if force is not None:
        return force.strip() not in ("", "0", "false", "no")
    if not console.is_terminal or console.is_dumb_terminal:
        return False
    return os.environ.get("TERM", "") != "linux"


def path_style(console: Console, path) -> str:
    """Magenta, and a ``file://`` hyperlink to the file where the terminal shows them."""
    if not hyperlinks_enabled(console):
        return "magenta"
    try:
        uri = Path(os.path.abspath(path)).as_uri()
    except ValueError:
        return "magenta"
    return f"magenta link {uri}"


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
    if not status.vectors_current:
        table.add_row("vectors", "behind the database (an interrupted run); the next index or query catches up")
    console.print(table)


def print_settings(console: Console, settings) -> None:
    """Each setting, its value and where it came from; then the files that were read."""
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_column(style="dim")
    for name, value in settings.values.items():
        if name in settings.parts and settings.parts[name]:
            for i, part in enumerate(settings.parts[name]):
                table.add_row(name if i == 0 else "", safe(str(part.value)), safe(part.source))
            continue
        shown = "(the model's limit)" if value.value is None else str(value.value)
        if isinstance(value.value, list):
            shown = ", ".join(value.value) or "(none)"
        table.add_row(name, safe(shown), safe(value.source))
    console.print(table)
    exists = "" if settings.user_file.is_file() else "  (not present)"
    console.print(
        f"user file     {safe(str(settings.user_file))}{exists}", markup=False, highlight=False, soft_wrap=True
    )
    project = safe(str(settings.project_file)) if settings.project_file else "(none found from here upward)"
    console.print(f"project file  {project}", markup=False, highlight=False, soft_wrap=True)
