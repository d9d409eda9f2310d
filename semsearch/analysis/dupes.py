"""Near-duplicate passages and files: every pair of stored vectors at or above a cosine threshold (FAISS range search)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch.analysis.corpus import Corpus, load_corpus, require_chunks
from semsearch.errors import UsageError
from semsearch.storage.access import open_store

DEFAULT_THRESHOLD = 0.95
FILE_SHARE = 0.5  # files are near-duplicates when at least this share of each one's passages has a twin in the other
MAX_PAIRS = 2_000_000  # beyond this the threshold is too low to be useful (and memory would run out)
_BATCH = 1024


@dataclass(frozen=True)
class Place:
    path: Path
    start_line: int
    end_line: int
    page: int | None
    cell: int | None
    chunk_id: int


@dataclass(frozen=True)
class PassagePair:
    a: Place
    b: Place
    score: float


@dataclass(frozen=True)
class FilePair:
    a: Path
    b: Path
    score: float  # mean best cosine of the passages that have a twin in the other file
    a_matched: int  # passages of a with a twin in b
    a_total: int
    b_matched: int
    b_total: int


@dataclass
class DupesReport:
    threshold: float
    passages_compared: int
    files: list[FilePair]
    passages: list[PassagePair]  # every pair, best first (including pairs inside the files above)


def _place(corpus: Corpus, row: int) -> Place:
    return Place(
        corpus.files[corpus.file_of[row]],
        int(corpus.start_lines[row]),
        int(corpus.end_lines[row]),
        corpus.pages[row],
        corpus.cells[row],
        int(corpus.ids[row]),
    )


def near_pairs(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (i, j), i < j, whose cosine is at least ``threshold``, with the cosine: FAISS range search in batches."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    radius = threshold - 1e-6  # range_search keeps results strictly above the radius
    left, right, scores = [], [], []
    total = 0
    for start in range(0, len(vectors), _BATCH):
        lims, dist, found = index.range_search(vectors[start : start + _BATCH], radius)
        rows = np.repeat(np.arange(start, start + len(lims) - 1), np.diff(lims).astype(np.int64))
        keep = (found > rows) & (dist >= threshold)
        left.append(rows[keep])
        right.append(found[keep])
        scores.append(dist[keep])
        total += int(keep.sum())
        if total > MAX_PAIRS:
            raise UsageError(
                f"More than {MAX_PAIRS:,} pairs of passages score at least {threshold}; raise --threshold."
            )
    if not left:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(left), np.concatenate(right).astype(np.int64), np.concatenate(scores)


def find_dupes(index_dir: Path, threshold: float = DEFAULT_THRESHOLD, file_share: float = FILE_SHARE) -> DupesReport:
    if not -1.0 < threshold <= 1.0:
        raise UsageError(f"--threshold is a cosine similarity: give a number above -1 and at most 1, not {threshold}.")
    store = open_store(index_dir)
    try:
        corpus = load_corpus(store)
    finally:
        store.close()
    require_chunks(corpus, index_dir)
    left, right, scores = near_pairs(corpus.vectors, threshold)
    order = np.lexsort((right, left, -scores))
    passages = [
        PassagePair(_place(corpus, int(left[i])), _place(corpus, int(right[i])), float(scores[i])) for i in order
    ]

    # For each pair of files, the best twin score of each passage that has one in the other file.
    best: dict[tuple[int, int], tuple[dict[int, float], dict[int, float]]] = defaultdict(lambda: ({}, {}))
    for i, j, s in zip(left.tolist(), right.tolist(), scores.tolist()):
        fa, fb = int(corpus.file_of[i]), int(corpus.file_of[j])
        if fa == fb:
            continue
        if fa > fb:
            fa, fb, i, j = fb, fa, j, i
        mine, theirs = best[(fa, fb)]
        mine[i] = max(mine.get(i, -1.0), s)
        theirs[j] = max(theirs.get(j, -1.0), s)
    totals = np.bincount(corpus.file_of, minlength=len(corpus.files))
    files = []
    for (fa, fb), (mine, theirs) in best.items():
        if len(mine) / totals[fa] >= file_share and len(theirs) / totals[fb] >= file_share:
            twins = list(mine.values()) + list(theirs.values())
            files.append(
                FilePair(
                    corpus.files[fa],
                    corpus.files[fb],
                    float(np.mean(twins)),
                    len(mine),
                    int(totals[fa]),
                    len(theirs),
                    int(totals[fb]),
                )
            )
    files.sort(key=lambda p: (-p.score, str(p.a), str(p.b)))
    return DupesReport(threshold, corpus.size, files, passages)
