"""Hits for people and programs: grep-like lines with highlighted snippets, JSON objects, file lists."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from semsearch.pathtext import escape, json_bytes, json_text
from semsearch.search.hits import Hit, display_path

if TYPE_CHECKING:  # Rich loads where text is drawn for people in colour: JSON or a pipe never needs it
    from rich.console import Console

    from semsearch.output.terminal import PlainConsole

_STOPWORDS = frozenset(
    "the and for are but not you all any can had her was one our out has have how what when where which who why "
    "will with this that from they them their there then than into onto over under about does did do is it its of "
    "on or in to a an as at be by if my no so up we".split()
)
WORD = re.compile(r"\w+", re.UNICODE)
SNIPPET_LINES = 3


def safe(text: str) -> str:
    """Escape control characters (and undecodable bytes, as ``\\xNN``) so a file name cannot disturb the terminal."""
    return escape(text)


def query_terms(query: str) -> set[str]:
    return {w.lower() for w in WORD.findall(query) if len(w) >= 3 and w.lower() not in _STOPWORDS}


def _matches(line: str, terms: set[str]) -> int:
    words = {w.lower() for w in WORD.findall(line)}
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


Pieces = list[tuple[str, str]]  # a line as (text, Rich style) pieces; "" is no style


def highlight_pieces(line: str, terms: set[str]) -> Pieces:
    """The line (escaped) with the words that match the query in bold red."""
    shown = safe(line)
    pieces: Pieces = []
    done = 0
    for match in WORD.finditer(shown):
        word = match.group().lower()
        if any(word.startswith(t[: max(4, len(t) - 2)]) for t in terms):
            pieces += [(shown[done : match.start()], ""), (match.group(), "bold red")]
            done = match.end()
    pieces.append((shown[done:], ""))
    return [p for p in pieces if p[0]]


def location(hit: Hit) -> str:
    """``path:line`` (grep style); PDFs name the page, notebooks the cell."""
    path = display_path(hit.path)
    if hit.page is not None:
        return f"{path}:p{hit.page}:{hit.start_line}"
    if hit.cell is not None:
        return f"{path}:cell{hit.cell}:{hit.start_line}"
    return f"{path}:{hit.start_line}"


def explanation(hit: Hit) -> dict:
    """Why a hit ranked where it did: its place and score in each candidate list, and the fused score."""
    return {
        "mode": hit.mode,
        "dense_rank": hit.dense_rank,
        "dense_score": _rounded(hit.dense_score),
        "keyword_rank": hit.keyword_rank,
        "keyword_score": _rounded(hit.keyword_score),
        "fused_score": _rounded(hit.fused_score),
        "exact": list(hit.exact),
        "rerank_score": _rounded(hit.rerank_score),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def explain_line(hit: Hit) -> Pieces:
    def place(rank: int | None, score: float | None, fmt: str) -> str:
        where = f"#{rank}" if rank is not None else "-"
        return f"{where} ({score:{fmt}})" if score is not None else where

    parts = []
    if hit.mode != "keyword":
        parts.append(f"dense {place(hit.dense_rank, hit.dense_score, '.3f')}")
    if hit.mode != "semantic":
        parts.append(f"keyword {place(hit.keyword_rank, hit.keyword_score, '.2f')}")
    if hit.fused_score is not None:
        parts.append(f"fused {hit.fused_score:.4f}")
    if hit.exact:
        parts.append("exact " + ", ".join(hit.exact))
    if hit.rerank_score is not None:
        parts.append(f"rerank {hit.rerank_score:.4f}")
    return [("        " + safe("  ".join(parts)), "yellow")]


PASSAGES_PER_FILE = 2  # passages of one file shown in full under it; the rest are listed on one line


def by_file(hits: list[Hit]) -> list[list[Hit]]:
    """The hits of each file together, the files in the order of their best hit."""
    groups: dict = {}
    for hit in hits:
        groups.setdefault(hit.path, []).append(hit)
    return list(groups.values())


def _lines(hit: Hit) -> str:
    return f"{hit.start_line}-{hit.end_line}" if hit.end_line != hit.start_line else f"{hit.start_line}"


def print_hits(
    console: Console | PlainConsole, hits: list[Hit], query: str, explain: bool = False, group: bool = True
) -> None:
    """Each hit as ``path:lines  score  heading`` and its best lines. ``group``: the passages of one file under
    its best one (its location without the path again), at most PASSAGES_PER_FILE in full, the rest on one
    ``+N more in this file`` line."""
    from semsearch.output.terminal import path_style, print_pieces

    terms = query_terms(query)

    def show(hit: Hit, head: Pieces) -> None:
        head.append((f"  {hit.score:.2f}", "dim"))
        if hit.heading:
            head.append((f"  {safe(hit.heading)}", "cyan"))
        print_pieces(console, head)
        if explain:
            print_pieces(console, explain_line(hit))
        for number, line in snippet(hit, terms):
            print_pieces(console, [(f"{number:>6}  ", "green"), *highlight_pieces(line.rstrip(), terms)])

    groups = by_file(hits) if group else [[hit] for hit in hits]
    for i, passages in enumerate(groups):
        if i:
            print_pieces(console, [])
        first = passages[0]
        head = [(safe(location(first)), path_style(console, first.path))]
        if first.end_line != first.start_line:
            head.append((f"-{first.end_line}", "magenta"))
        show(first, head)
        for hit in passages[1:PASSAGES_PER_FILE]:
            where = safe(location(hit)[len(display_path(hit.path)) :])  # ":12", ":p3:12", ":cell2:4"
            head = [("  " + where, "magenta")]
            if hit.end_line != hit.start_line:
                head.append((f"-{hit.end_line}", "magenta"))
            show(hit, head)
        rest = passages[PASSAGES_PER_FILE:]
        if rest:
            places = ", ".join(
                f"{safe(location(h)[len(display_path(h.path)) + 1 :])}"
                + (f"-{h.end_line}" if h.end_line != h.start_line else "")
                + f" ({h.score:.2f})"
                for h in rest
            )
            print_pieces(console, [(f"  +{len(rest)} more in this file: {places}", "dim")])


def hit_json(hit: Hit, files_only: bool = False, explain: bool = False) -> dict:
    """A hit for programs. ``path_bytes`` (base64 of the absolute path) only when the name is not UTF-8."""
    data = {"path": json_text(display_path(hit.path)), "abspath": json_text(hit.path)}
    if not files_only:
        data |= {
            "start_line": hit.start_line,
            "end_line": hit.end_line,
            "page": hit.page,
            "cell": hit.cell,
            "heading": hit.heading,
        }
    data["score"] = round(hit.score, 6)
    if not files_only:
        data["text"] = hit.text
    raw = json_bytes(hit.path)
    if raw is not None:
        data["path_bytes"] = raw
    if explain:
        data["explain"] = explanation(hit)
    return data


def print_json_lines(stream, objects) -> None:
    for obj in objects:
        stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
    stream.flush()


def print_files(console: Console | PlainConsole, hits: list[Hit], explain: bool = False) -> None:
    from semsearch.output.terminal import path_style, print_pieces

    for hit in hits:
        print_pieces(console, [(safe(display_path(hit.path)), path_style(console, hit.path))])
        if explain:
            print_pieces(console, explain_line(hit))
