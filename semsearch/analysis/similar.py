"""More like this: the passages and files nearest to a file, or to one passage of it, from the stored vectors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch.analysis.corpus import Corpus, absolute, load_corpus, normalize
from semsearch.errors import PathNotFound, UsageError
from semsearch.search.hits import MAX_HIT_CHARS, Hit
from semsearch.storage.access import open_store

# What `semsearch query` prints: path:12, path:12-20, paper.pdf:p3:12, nb.ipynb:cell4:2
_LOCATION = re.compile(r"^(?P<path>.+?):(?:(?:p(?P<page>\d+)|cell(?P<cell>\d+)):)?(?P<line>\d+)(?:-\d+)?$")


@dataclass(frozen=True)
class Target:
    path: Path
    line: int | None = None
    page: int | None = None
    cell: int | None = None


@dataclass(frozen=True)
class FileMatch:
    path: Path
    score: float  # cosine of the two files' whole-file vectors (the normalized mean of their passages)
    chunks: int


@dataclass
class SimilarResult:
    source: Path
    source_lines: tuple[int, int] | None  # the passage compared, when a line was given
    source_text: str
    files: list[FileMatch]
    passages: list[Hit]


def parse_target(text: str, known: set[Path]) -> Target:
    """``PATH``, ``PATH:LINE`` or any location `semsearch query` prints (``paper.pdf:p3:12``, ``nb.ipynb:cell4:2``)."""
    path = _in_index(text, known)
    if path is not None:
        return Target(path)
    match = _LOCATION.match(text)
    if match and (path := _in_index(match["path"], known)) is not None:
        page, cell = match["page"], match["cell"]
        return Target(path, int(match["line"]), int(page) if page else None, int(cell) if cell else None)
    shown = absolute(match["path"] if match and not Path(text).exists() else text)
    raise PathNotFound(f"{shown} is not in the index; index it first with: semsearch index {shown}")


def _in_index(text: str, known: set[Path]) -> Path | None:
    """The indexed path ``text`` names: as written, else the same file reached through other links."""
    path = absolute(text)
    if path in known:
        return path
    if not path.is_file():
        return None
    real = path.resolve()
    return next((p for p in sorted(known) if p.resolve() == real), None)


def _pick_chunk(corpus: Corpus, rows: np.ndarray, target: Target) -> int:
    """The passage of the file at ``target``'s line (the nearest one when the line falls between passages)."""
    if target.page is not None:
        rows = np.array([r for r in rows if corpus.pages[r] == target.page], dtype=np.int64)
    if target.cell is not None:
        rows = np.array([r for r in rows if corpus.cells[r] == target.cell], dtype=np.int64)
    where = (
        f"{'page ' + str(target.page) if target.page is not None else 'cell ' + str(target.cell)} of "
        if (target.page is not None or target.cell is not None)
        else ""
    )
    if len(rows) == 0:
        raise UsageError(f"The index has no passage in {where}{target.path}; check the location.")
    starts, ends = corpus.start_lines[rows], corpus.end_lines[rows]
    line = target.line
    if line < starts.min() or line > ends.max():
        raise UsageError(
            f"Line {line} is outside the indexed text of {where}{target.path} (lines {starts.min()}-{ends.max()})."
        )
    distance = np.where(line < starts, starts - line, np.where(line > ends, line - ends, 0))
    return int(rows[int(np.argmin(distance))])  # argmin takes the first: the earlier passage on a tie


def similar(index_dir: Path, target: str, k: int = 10) -> SimilarResult:
    """The ``k`` passages and ``k`` files most like ``target`` (a file, or a file's line), never from that file."""
    store = open_store(index_dir)
    try:
        corpus = load_corpus(store)
        chosen = parse_target(target, set(corpus.files))
        file_index = corpus.files.index(chosen.path)
        rows = corpus.rows_of_file(file_index)
        if len(rows) == 0:
            raise UsageError(f"{chosen.path} has no indexed text to compare (it may be empty or unreadable).")
        if chosen.line is None:
            source = normalize(corpus.vectors[rows].mean(axis=0))
            source_lines = None
        else:
            row = _pick_chunk(corpus, rows, chosen)
            source = corpus.vectors[row]
            source_lines = (int(corpus.start_lines[row]), int(corpus.end_lines[row]))
        scores = corpus.vectors @ source
        scores[rows] = -np.inf  # never the file itself
        top = np.argsort(-scores, kind="stable")[: min(k, corpus.size - len(rows))]
        keep = [(float(scores[r]), int(corpus.ids[r])) for r in top]
        source_rows = [row] if chosen.line is not None else list(rows)
        with store.snapshot():
            chunk_rows = store.chunk_rows([i for _, i in keep])
            source_chunks = store.chunk_rows([int(corpus.ids[r]) for r in source_rows])
        source_text = "\n".join(c.text for c in source_chunks.values())
    finally:
        store.close()
    passages = [
        Hit(c.path, c.start_line, c.end_line, score, c.text[:MAX_HIT_CHARS], c.page, c.heading, c.cell, c.id)
        for score, cid in keep
        if (c := chunk_rows.get(cid)) is not None
    ]
    file_scores = corpus.file_vectors() @ source
    file_scores[file_index] = -np.inf
    counts = np.bincount(corpus.file_of, minlength=len(corpus.files))
    order = np.argsort(-file_scores, kind="stable")[: min(k, len(corpus.files) - 1)]
    files = [FileMatch(corpus.files[i], float(file_scores[i]), int(counts[i])) for i in order]
    return SimilarResult(chosen.path, source_lines, source_text, files, passages)
