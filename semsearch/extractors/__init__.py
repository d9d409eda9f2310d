"""Turn a file's bytes into a Document: picks the extractor for the file's format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..documents import Document
from . import text

Extractor = Callable[[Path, bytes], Document]

# suffix (lower case, with dot) -> extractor; every other readable text file goes to text.extract
_BY_SUFFIX: dict[str, Extractor] = {
    ".md": text.extract_markdown,
    ".markdown": text.extract_markdown,
    ".rst": text.extract_rst,
}

# formats that are binary containers: the crawler must not sniff them for NUL bytes
BINARY_FORMATS: frozenset[str] = frozenset()


def extractor_for(path: Path) -> Extractor:
    return _BY_SUFFIX.get(path.suffix.lower(), text.extract_text)


def extract(path: Path, data: bytes) -> Document:
    """Extract ``data`` (the bytes of ``path``). Raises ExtractError for files to skip."""
    return extractor_for(path)(path, data)
