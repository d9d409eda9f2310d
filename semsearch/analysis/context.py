"""The text around a hit, read again from the file with the extractor that indexed it (indexed files only)."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from semsearch.analysis.corpus import absolute
from semsearch.errors import ExtractError, PathNotFound, UsageError
from semsearch.storage.access import open_store
from semsearch.storage.interface import FileRow

MAX_CONTEXT = 200  # lines either side
MAX_LINE_CHARS = 4000  # of one line returned (a minified file's one line can be megabytes)
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


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
        roots = store.roots()
    finally:
        store.close()
    if wanted not in known:
        raise PathNotFound(f"{wanted} is not in the index; only indexed files can be read.")
    data = read_indexed(wanted, known[wanted], roots)
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
    lines = [(n, _bounded(numbered[n])) for n in sorted(numbered) if low <= n <= high]
    if not lines:
        raise UsageError(f"Lines {start_line}-{end_line} are past the end of {wanted} (it has {max(numbered)} lines).")
    return Passage(wanted, lines[0][0], lines[-1][0], page, cell, lines)


def read_indexed(wanted: Path, row: FileRow, roots: list[Path]) -> bytes:
    """The bytes of the indexed file ``wanted``, only when it still is what was indexed: a regular file (never a
    FIFO, device or socket, opened without blocking), inside an indexed root once every link is resolved, no
    larger than the size cap; a symbolic link swapped in since indexing is followed only to the very content
    that was indexed (its SHA-256 as recorded)."""
    from semsearch.index.crawl import size_cap, within

    gone = f"Cannot read {wanted}"
    try:
        fd = os.open(wanted, _OPEN_FLAGS)
        swapped = False
    except OSError as e:
        if not os.path.islink(wanted):
            raise PathNotFound(f"{gone} ({e.strerror or e}); it may have moved since it was indexed.") from None
        try:  # a link now: indexed through a link inside the roots, or swapped in since (then checked below)
            fd = os.open(os.path.realpath(wanted), _OPEN_FLAGS)
        except OSError as e2:
            raise PathNotFound(f"{gone} ({e2.strerror or e2}); it may have moved since it was indexed.") from None
        swapped = True
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PathNotFound(f"{gone}: it is no longer a regular file (a FIFO, device or socket); index again.")
        real = _real_path(fd, wanted)
        if not within(real, [os.path.realpath(root) for root in roots]):
            raise PathNotFound(f"{gone}: it now leads outside the indexed folders; only indexed files can be read.")
        cap = max(size_cap(wanted), row.size)
        if st.st_size > cap:
            raise PathNotFound(f"{gone}: it grew past the size cap since it was indexed; index it again.")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:
        raise PathNotFound(f"{gone}: it grew past the size cap since it was indexed; index it again.")
    if swapped and hashlib.sha256(data).hexdigest() != row.sha256:
        raise PathNotFound(f"{gone}: it was replaced by a link to other content since it was indexed; index again.")
    return data


def _bounded(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " [...]"


def _real_path(fd: int, fallback: Path) -> str:
    """Where the open file really is (every link resolved), as the kernel knows it."""
    if sys.platform.startswith("linux"):
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return os.path.realpath(fallback)
