"""PDF files: the text layer of each page, read with pypdf, within a time limit, one block per page.

Blocks: one per page that has text, ``page`` = the 1-based page number, ``start_line`` = the
1-based line within that page's extracted text where the block starts (leading blank lines
are dropped), kind "prose". Document.title is the PDF's /Title metadata, if any.

pypdf's log messages about damaged files are kept out of the console: while a file is read
they are collected (deduplicated, at most ``MAX_WARNINGS``) into Document.warnings.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path

from semsearch.documents import Block, Document
from semsearch.errors import ExtractError

MAX_SECONDS = 30.0  # the most time spent on one file before it is skipped
MAX_WARNINGS = 10

ENCRYPTED = "it is encrypted"
NO_TEXT = "it has no text layer (a scan?)"
CORRUPT = "it is truncated or corrupt"
TOO_DEEP = "its structure is too deeply nested or cyclic"
TOO_BIG = "it is too large or complex to read"


class _TookTooLong(BaseException):
    """Raised from inside pypdf when the deadline passes.

    A BaseException, so that pypdf's own ``except Exception`` (which turns some failures
    into log messages and carries on) does not swallow it.
    """


class _Collector(logging.Handler):
    """Routes pypdf's log records to the file being read on this thread, or drops them."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        sink: list[str] | None = getattr(self.local, "sink", None)
        if sink is None:
            return
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not break extraction
            return
        if message not in sink and len(sink) < MAX_WARNINGS:
            sink.append(message)


_collector = _Collector()
_pypdf_logger = logging.getLogger("pypdf")
_pypdf_logger.addHandler(_collector)
_pypdf_logger.propagate = False


def extract_pdf(path: Path, data: bytes) -> Document:
    warnings: list[str] = []
    _collector.local.sink = warnings
    deadline = time.monotonic() + MAX_SECONDS
    try:
        doc = _read(data, deadline)
    except _TookTooLong:
        raise ExtractError(f"it took too long to read (more than {MAX_SECONDS:g} s)") from None
    finally:
        _collector.local.sink = None
    doc.warnings[:0] = warnings
    return doc


def _reason(e: BaseException) -> str:
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    if isinstance(e, RecursionError) or "cyclic" in str(e).lower():
        return TOO_DEEP
    if isinstance(e, (MemoryError, LimitReachedError)):
        return TOO_BIG
    if isinstance(e, FileNotDecryptedError):
        return ENCRYPTED
    return CORRUPT


def _read(data: bytes, deadline: float) -> Document:
    from pypdf import PasswordType, PdfReader

    def check(*_args: object) -> None:
        if time.monotonic() > deadline:
            raise _TookTooLong

    # Any exception from pypdf on a bad file (PdfReadError, but also KeyError, TypeError,
    # AttributeError, RecursionError... on damaged object graphs) means the file is unreadable.
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                decrypted = reader.decrypt("")
            except Exception:  # unsupported security handler, or damaged /Encrypt dictionary
                raise ExtractError(ENCRYPTED) from None
            if decrypted == PasswordType.NOT_DECRYPTED:
                raise ExtractError(ENCRYPTED)
        pages = reader.pages
        count = len(pages)
    except ExtractError:
        raise
    except Exception as e:
        raise ExtractError(_reason(e)) from None
    check()
    if count == 0:
        raise ExtractError("it has no pages")

    doc = Document(title=_title(reader))
    failures: list[BaseException] = []
    for number in range(1, count + 1):
        check()
        try:
            text = pages[number - 1].extract_text(visitor_operand_before=check)
        except Exception as e:
            failures.append(e)
            if len(failures) <= MAX_WARNINGS:
                doc.warnings.append(f"page {number}: its text could not be read ({_reason(e)})")
            continue
        block = _page_block(text, number)
        if block is not None:
            doc.blocks.append(block)
    if len(failures) > MAX_WARNINGS:
        doc.warnings.append(f"the text of {len(failures) - MAX_WARNINGS} more pages could not be read")
    if not doc.blocks:
        if failures:
            raise ExtractError(_reason(failures[0]))
        raise ExtractError(NO_TEXT)
    return doc


def _title(reader) -> str:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:
        return ""
    return " ".join(str(title).split()) if title else ""


def _page_block(text: str, number: int) -> Block | None:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").split("\n")
    lines = [line.rstrip() for line in lines]
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None
    last = max(i for i, line in enumerate(lines) if line.strip())
    return Block("\n".join(lines[first : last + 1]), start_line=first + 1, page=number, kind="prose")
