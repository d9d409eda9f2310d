"""A hit's relevance between 0 and 1: the estimated probability that the passage is relevant to the query.

The raw signals that rank a hit (its cosine similarity, its BM25 score, the fused score, its place) mean different
things from one query and one index to the next. A logistic regression over a few of them, fitted on judged queries
of four prose collections and 19 code repositories at once (``benchmarks/calibration_fit.py``), turns them into a
probability: of hits scored about 0.7, about 70% were judged relevant. Its coefficients are in
``calibration.json`` beside this module, with the cut-off below which a hit is not shown unless asked (``--all``).

The signals of a hit are its own evidence and how it compares with the best candidate of the query (the best
cosine among all candidates says whether anything in the index is about the query at all). The fit keeps the
score monotone in the hit's own evidence: more cosine or more BM25, other things equal, never lowers it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PARAMS = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Evidence:
    """What a query's candidates say about one hit, as the calibration reads it."""

    rank: int  # 1-based place among the query's candidates
    dense: float | None = None  # cosine similarity to the query
    keyword: float | None = None  # BM25 (0: no query word in the passage)
    fused: float | None = None  # the hybrid fusion's score
    exact: int = 0  # exact terms of the query the passage contains
    top_dense: float | None = None  # the best cosine among the query's candidates
    top_keyword: float | None = None  # the best BM25 among the query's candidates
    mean_dense: float | None = None  # the mean cosine of the query's candidates
    terms: int = 0  # the words of the query that keyword search looks for


def features(e: Evidence, names: list[str]) -> list[float]:
    """The named features of one hit (see FEATURES)."""
    return [FEATURES[name](e) for name in names]


def _ratio(value: float | None, top: float | None) -> float:
    return (value or 0.0) / top if top else 0.0


FEATURES = {
    "dense": lambda e: e.dense or 0.0,
    "dense_gap": lambda e: max(0.0, (e.top_dense or 0.0) - (e.dense or 0.0)),
    "top_dense": lambda e: e.top_dense or 0.0,
    "dense_peak": lambda e: (e.top_dense or 0.0) - (e.mean_dense or 0.0),
    "keyword_log": lambda e: math.log1p(max(0.0, e.keyword or 0.0)),
    "keyword_ratio": lambda e: _ratio(e.keyword, e.top_keyword),
    "top_keyword_log": lambda e: math.log1p(max(0.0, e.top_keyword or 0.0)),
    # BM25 grows with the number of query words found: per word, it says how well the words match
    "keyword_per_term": lambda e: max(0.0, e.keyword or 0.0) / max(1, e.terms),
    "top_keyword_per_term": lambda e: max(0.0, e.top_keyword or 0.0) / max(1, e.terms),
    "fused": lambda e: e.fused or 0.0,
    "log_rank": lambda e: math.log2(e.rank),
    "exact": lambda e: float(e.exact > 0),
}


@dataclass(frozen=True)
class Model:
    names: list[str]
    coef: list[float]
    intercept: float

    def probability(self, e: Evidence) -> float:
        z = self.intercept + sum(c * x for c, x in zip(self.coef, features(e, self.names)))
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


@dataclass(frozen=True)
class Calibration:
    models: dict[str, Model]  # by search mode
    threshold: float  # hits below it are not shown by default

    def relevance(self, mode: str, e: Evidence) -> float:
        model = self.models.get(mode) or self.models["hybrid"]
        return model.probability(e)


@lru_cache(maxsize=1)
def load(path: Path = PARAMS) -> Calibration:
    data = json.loads(path.read_text(encoding="utf-8"))
    models = {
        mode: Model(list(m["features"]), [float(c) for c in m["coef"]], float(m["intercept"]))
        for mode, m in data["models"].items()
    }
    return Calibration(models, float(data["threshold"]))
