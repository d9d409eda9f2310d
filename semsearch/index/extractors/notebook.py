"""Jupyter notebooks (.ipynb): the source of the markdown and code cells, without their outputs.

Blocks carry ``cell`` = the 1-based index of the cell in the notebook (counting every cell,
empty or not) and ``start_line`` = the 1-based line within that cell's source. A code cell is
one block, kind "code". A markdown cell is one block per section of it: it is cut at its
headings, like a Markdown file, kind "prose". ``heading`` is the Markdown heading path, carried
from cell to cell (a code cell has the path of the headings above it). Raw cells are kept as
kind "text". Both nbformat 4 and the older nbformat 3 (worksheets, "heading" cells) are read.
Document.title is the first heading.
"""

from __future__ import annotations

import json
from pathlib import Path

from semsearch.documents import Block, Document
from semsearch.errors import ExtractError
from semsearch.index.extractors.text import markdown_headings

NOT_A_NOTEBOOK = "it is not a Jupyter notebook"


def extract_notebook(path: Path, data: bytes) -> Document:
    try:
        notebook = json.loads(data)  # bytes: json detects UTF-8 (with or without BOM), UTF-16 and UTF-32
    except RecursionError:
        raise ExtractError("its JSON is too deeply nested") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise ExtractError("it is not valid JSON") from None
    cells = _cells(notebook)
    if cells is None:
        raise ExtractError(NOT_A_NOTEBOOK)

    doc = Document()
    path_: list[tuple[int, str]] = []  # the heading path: (level, title)
    for index, cell in enumerate(cells, 1):
        if not isinstance(cell, dict):
            continue
        kind = cell.get("cell_type")
        lines = _source(cell.get("input") if kind == "code" and "input" in cell else cell.get("source"))
        if lines is None:
            continue
        heading = " > ".join(t for _, t in path_)
        if kind == "markdown":
            path_ = _markdown_cell(doc, lines, index, path_)
        elif kind == "code":
            _add(doc, lines, 0, len(lines), index, heading, "code")
        elif kind == "heading":  # nbformat 3: a cell that is a heading of some level
            title = " ".join(" ".join(lines).split()).lstrip("#").strip()
            level = cell.get("level") if isinstance(cell.get("level"), int) else 1
            if title:
                path_ = _push(path_, level, title, doc)
            _add(doc, lines, 0, len(lines), index, " > ".join(t for _, t in path_), "prose")
        elif kind == "raw":
            _add(doc, lines, 0, len(lines), index, heading, "text")
    return doc


def _cells(notebook: object) -> list | None:
    if not isinstance(notebook, dict):
        return None
    cells = notebook.get("cells")
    if isinstance(cells, list):
        return cells
    worksheets = notebook.get("worksheets")  # nbformat 3
    if isinstance(worksheets, list):
        found: list = []
        for sheet in worksheets:
            if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list):
                found.extend(sheet["cells"])
        return found
    return None


def _source(source: object) -> list[str] | None:
    """A cell's source (a string, or a list of strings, each ending in a newline) as lines."""
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    if not isinstance(source, str):
        return None
    return source.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").split("\n")


def _push(path: list[tuple[int, str]], level: int, title: str, doc: Document) -> list[tuple[int, str]]:
    doc.title = doc.title or title
    return [(lv, t) for lv, t in path if lv < level] + [(level, title)]


def _markdown_cell(doc: Document, lines: list[str], index: int, path: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Add the blocks of a markdown cell, cut at its headings; return the heading path after it."""
    headings = markdown_headings(lines)
    starts = sorted({0, len(lines), *(i for i, _, _ in headings)})
    heading_at = {i: (level, title) for i, level, title in headings}
    for begin, end in zip(starts, starts[1:]):
        if begin in heading_at:
            level, title = heading_at[begin]
            path = _push(path, level, title, doc)
        _add(doc, lines, begin, end, index, " > ".join(t for _, t in path), "prose")
    return path


def _add(doc: Document, lines: list[str], begin: int, end: int, cell: int, heading: str, kind: str) -> None:
    """Add lines[begin:end] of a cell as a block, without its leading and trailing blank lines."""
    while begin < end and not lines[begin].strip():
        begin += 1
    while end > begin and not lines[end - 1].strip():
        end -= 1
    if begin < end:
        doc.blocks.append(
            Block("\n".join(lines[begin:end]), start_line=begin + 1, heading=heading, cell=cell, kind=kind)
        )
