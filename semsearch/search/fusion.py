"""Merge the semantic (dense) and keyword (BM25) candidate lists into one ranking.

The chosen fusion, measured on SciFact train (README, "Hybrid search"; ``benchmarks/fusion_sweep.py``): the
mean of the two scores, each turned into a z-score over the query's candidates, where every candidate has
both scores (its cosine is computed even when it came only from the keyword list, its BM25 even when it came
only from the dense list). Equal weights, not a weight fitted to one collection. Reciprocal rank fusion is
kept for comparison (``benchmarks/beir_eval.py`` prints both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DENSE_WEIGHT = 0.5  # weight of the normalized cosine; the keyword score gets the rest
RRF_K = 60  # the constant of Cormack et al. (2009)


@dataclass
class Candidate:
    """One chunk competing for a place in the results, with what each retriever said about it."""

    chunk_id: int
    dense_rank: int | None = None  # 1-based place in the dense list, None when outside it
    dense_score: float | None = None  # cosine similarity to the query
    keyword_rank: int | None = None  # 1-based place in the BM25 list, None when outside it
    keyword_score: float | None = None  # BM25 (0 when no query word occurs in the chunk)
    exact: tuple[str, ...] = ()  # the quoted phrases and identifiers of the query that the chunk contains
    fused: float = 0.0  # the fused score (what fusion made of the two scores)
    score: float | None = None  # what ranks it, when the ranking layer added evidence to ``fused``


def _z_scores(values: list[float]) -> list[float]:
    """How many standard deviations each value is above the mean (all 0 when they are all equal)."""
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return [(v - mean) / sd if sd > 0 else 0.0 for v in values]


def convex(candidates: list[Candidate], dense_weight: float = DENSE_WEIGHT) -> None:
    """fused = w * z(cosine) + (1 - w) * z(BM25), z-scores over this query's candidates."""
    if not candidates:
        return
    low = min((c.dense_score for c in candidates if c.dense_score is not None), default=0.0)
    dense = _z_scores([c.dense_score if c.dense_score is not None else low for c in candidates])
    keyword = _z_scores([c.keyword_score or 0.0 for c in candidates])
    for c, d, k in zip(candidates, dense, keyword, strict=True):
        c.fused = dense_weight * d + (1 - dense_weight) * k


def rrf(candidates: list[Candidate], k: int = RRF_K) -> None:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the lists a candidate is in."""
    for c in candidates:
        c.fused = sum(1.0 / (k + rank) for rank in (c.dense_rank, c.keyword_rank) if rank is not None)


def quoted(c: Candidate) -> int:
    """How many of the query's quoted phrases the chunk holds (identifiers found as written count in the score,
    not here: forced first, they put any passage naming ``IL-6`` above the ones about it; see docs/ranking.md)."""
    return sum(1 for label in c.exact if label.startswith('"'))


def order(candidates: list[Candidate]) -> list[Candidate]:
    """Best first: chunks with more of the query's quoted phrases, then by score (the fused one unless the
    ranking layer set another)."""
    return sorted(candidates, key=lambda c: (-quoted(c), -(c.fused if c.score is None else c.score), c.chunk_id))
