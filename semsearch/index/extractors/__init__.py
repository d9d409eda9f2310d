"""Turn a file's bytes into a Document: picks the extractor for the file's format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from semsearch.documents import Document
from semsearch.index.extractors import docx, html, notebook, pdf, text

Extractor = Callable[[Path, bytes], Document]

# suffix (lower case, with dot) -> extractor; every other readable text file goes to text.extract
_BY_SUFFIX: dict[str, Extractor] = {
    ".md": text.extract_markdown,
    ".markdown": text.extract_markdown,
    ".rst": text.extract_rst,
    ".pdf": pdf.extract_pdf,
    ".html": html.extract_html,
    ".htm": html.extract_html,
    ".docx": docx.extract_docx,
    ".ipynb": notebook.extract_notebook,
}

# formats that are binary containers: the crawler must not sniff them for NUL bytes
BINARY_FORMATS: frozenset[str] = frozenset({".pdf", ".docx"})


def extractor_for(path: Path) -> Extractor:
    return _BY_SUFFIX.get(path.suffix.lower(), text.extract_text)


def extract(path: Path, data: bytes) -> Document:
    """Extract ``data`` (the bytes of ``path``). Raises ExtractError for files to skip."""
    return extractor_for(path)(path, data)


# Plain-text formats read by text.extract_text (besides the suffixes registered above).
TEXT_SUFFIXES: frozenset[str] = (
    frozenset(
        ".txt .text .org .adoc .asciidoc .tex .log .toml .yaml .yml .ini .cfg .conf .properties .env.example "
        ".css .scss .less .xml .csv .tsv .json .graphql".split()
    )
    | text._CODE_SUFFIXES
)

# Files without a suffix that are text by convention.
TEXT_NAMES: frozenset[str] = frozenset(
    "readme license licence copying authors contributing changelog notice todo makefile dockerfile "
    "containerfile gemfile rakefile procfile vagrantfile justfile".split()
)


def is_supported(path: Path) -> bool:
    """Whether semsearch knows how to read this file (by name; content is checked when read)."""
    suffix = path.suffix.lower()
    if suffix in _BY_SUFFIX or suffix in TEXT_SUFFIXES:
        return True
    return not suffix and path.name.lower() in TEXT_NAMES
