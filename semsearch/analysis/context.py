"""The text around a hit, read again from the file with the extractor that indexed it (indexed files only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from semsearch.analysis.corpus import absolute
from semsearch.errors import ExtractError, PathNotFound, UsageError
from semsearch.storage.access import open_store

MAX_CONTEXT = 200  # lines either side


@dataclass
class Passage:
    path: Path
    start_line: int  # first line returned
    end_line: int  # last line returned
    page: int | None
    cell: int | None
    lines: list[tuple[int, str]]  # (line number, text); numbers as hits give them

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def read_context(
    index_dir: Path,
    path: str | Path,
    start_line: int,
    end_line: int | None = None,
    context: int = 10,
    page: int | None = None,
    cell: int | None = None,
) -> Passage:
    """Lines ``start_line - context`` to ``end_line + context`` of an indexed file (of its page or cell for PDFs
    and notebooks), as the extractor reads it: visible text for HTML, paragraphs for Word, a page's lines for PDFs.

    Only files in the index can be read, so a client of the MCP server cannot read anything else on the machine.
    """
    from semsearch.index.extractors import extract

    end_line = start_line if end_line is None else end_line
    if start_line < 1 or end_line < start_line:
        raise UsageError(
            f"Give a line range that starts at 1 or later and does not end before it starts, not {start_line}-{end_line}."
        )
    context = max(0, min(int(context), MAX_CONTEXT))
    wanted = absolute(path)
    store = open_store(index_dir)
    try:
        known = store.files()
    finally:
        store.close()
    if wanted not in known:
        raise PathNotFound(f"{wanted} is not in the index; only indexed files can be read.")
    try:
        data = wanted.read_bytes()
    except OSError as e:
        raise PathNotFound(
            f"Cannot read {wanted} ({e.strerror or e}); it may have moved since it was indexed."
        ) from None
    try:
        document = extract(wanted, data)
    except ExtractError as e:
        raise UsageError(f"Cannot read {wanted}: {e.reason}.") from None
    numbered: dict[int, str] = {}
    for block in document.blocks:
        if block.page != page or block.cell != cell:
            continue
        for offset, line in enumerate(block.text.split("\n")):
            numbered.setdefault(block.start_line + offset, line)
    if not numbered:
        where = f"page {page}" if page is not None else f"cell {cell}" if cell is not None else "text"
        raise UsageError(f"{wanted} has no {where} to read; check the page or cell of the hit.")
    low, high = max(1, start_line - context), end_line + context
    lines = [(n, numbered[n]) for n in sorted(numbered) if low <= n <= high]
    if not lines:
        raise UsageError(f"Lines {start_line}-{end_line} are past the end of {wanted} (it has {max(numbered)} lines).")
    return Passage(wanted, lines[0][0], lines[-1][0], page, cell, lines)
