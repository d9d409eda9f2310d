"""What a query asks for and what it finds (QueryOptions, Hit), and how a hit's path is shown.

Light on purpose: a query that a running watcher answers needs these, and nothing of the search itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from semsearch.config import MAX_TOP_K

CANDIDATE_DEPTH = 100  # chunks taken from each list, at least (more for larger k and filters)
RERANK_DEPTH = 30
MAX_DEPTH = 100_000  # candidates taken from each list, at most
# A hit's text as printed and sent: chunks are cut far below this (index/chunk.py); an index made before that
# may hold a chunk of megabytes (one long line), and no hit carries more than this of it.
MAX_HIT_CHARS = 8192


@dataclass
class QueryOptions:
    text: str
    k: int = 10
    path_glob: str | None = None
    min_score: float | None = None  # a floor on the hits' relevance (0..1); None: the calibrated default cut-off
    files_only: bool = False
    mode: str = "hybrid"  # one of MODES
    rerank: str | None = None  # folder of a sentence-transformers CrossEncoder that re-scores the top hits
    rerank_depth: int = RERANK_DEPTH
    fusion: str = "convex"  # "convex" (the default, measured best) or "rrf"
    depth: int = CANDIDATE_DEPTH
    show_all: bool = False  # the best k whatever their relevance (``--all``): no default cut-off

    def __post_init__(self) -> None:
        """Every number bounded, whoever built the options (the command line, a config file, MCP, the wire)."""
        from semsearch.errors import check_range

        self.k = check_range("The number of hits (-k, top_k)", self.k, 1, MAX_TOP_K)
        self.rerank_depth = check_range("--rerank-depth", self.rerank_depth, 1, MAX_TOP_K)
        self.depth = check_range("The candidate depth", self.depth, 1, MAX_DEPTH)
        if self.min_score is not None:
            self.min_score = check_range("--min-score", self.min_score, -1000.0, 1000.0)


@dataclass(frozen=True)
class Hit:
    path: Path
    start_line: int
    end_line: int
    score: float  # relevance, 0..1: the estimated probability that the passage is relevant (search/calibration.py)
    text: str
    page: int | None = None
    heading: str = ""
    cell: int | None = None
    chunk_id: int = 0
    mode: str = "semantic"
    dense_rank: int | None = None  # place in the dense candidate list (None: outside it)
    dense_score: float | None = None  # cosine similarity to the query
    keyword_rank: int | None = None  # place in the BM25 candidate list (None: outside it or no word matched)
    keyword_score: float | None = None  # BM25 score (0: no query word in the chunk)
    fused_score: float | None = None
    exact: tuple[str, ...] = ()  # quoted phrases and identifiers of the query found in the chunk
    rerank_score: float | None = None


def display_path(path: Path, cwd: Path | None = None) -> str:
    """Relative to the current folder when under it, else absolute."""
    cwd = cwd or Path.cwd()
    try:
        return os.fsdecode(path.relative_to(cwd))
    except ValueError:
        return os.fsdecode(path)
