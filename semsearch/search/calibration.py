"""A hit's relevance between 0 and 1: the estimated probability that the passage is relevant to the query.

The raw signals that rank a hit (its cosine similarity, its BM25 score, the fused score, its place) mean different
things from one query and one index to the next. A logistic regression over a few of them, fitted on judged queries
of four prose collections and 19 code repositories at once (``benchmarks/calibration_fit.py``), turns them into a
probability: of hits scored about 0.7, about 70% were judged relevant. Its coefficients are in
``calibration.json`` beside this module, with the cut-off below which a hit is not shown unless asked (``--all``).

The signals of a hit are its own evidence and how it compares with the best candidate of the query (the best
cosine among all candidates says whether anything in the index is about the query at all). The fit keeps the
score monotone in the hit's own evidence: more cosine or more BM25, other things equal, never lowers it.

Whether to answer at all is a question about the query, not about one hit: a second model per mode (the
*gate*) estimates from the query's evidence alone (the best cosine, the share of its words that occur anywhere in
the index) whether this index holds an answer. It is fitted with every collection's queries asked of the other
collections' indexes as the queries it should refuse. A query is answered "no match" when the gate is below its
threshold and no hit is more likely relevant than not (``sure``); otherwise the hits that reach the cut-off are
shown. The hits' scores are the per-hit model's either way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
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
    coverage: float | None = None  # the share of those words that occur anywhere in the index (None: not known)


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
    # the query's words the index holds at all (a query about another project names what this one lacks)
    "coverage": lambda e: 1.0 if e.coverage is None else e.coverage,
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
class Gate:
    """Whether the index holds an answer to the query, from the query's evidence (its best candidate's)."""

    model: Model
    threshold: float  # below it (and no hit ``sure``), the query is answered "no match"


@dataclass(frozen=True)
class Calibration:
    models: dict[str, Model]  # by search mode
    threshold: float  # hits below it are not shown by default
    gates: dict[str, Gate] = field(default_factory=dict)  # by search mode (none: every query is answered)
    sure: float = 1.0  # a hit at least this relevant is shown whatever the gate says

    def relevance(self, mode: str, e: Evidence) -> float:
        model = self.models.get(mode) or self.models["hybrid"]
        return model.probability(e)

    def uses(self, mode: str, feature: str) -> bool:
        """Whether the mode's model or gate reads this feature (the others need not be looked up)."""
        model = self.models.get(mode) or self.models["hybrid"]
        gate = self.gates.get(mode)
        return feature in model.names or (gate is not None and feature in gate.model.names)

    def answerable(self, mode: str, e: Evidence) -> float:
        """The gate's estimate that the index holds an answer (``e``: the query's best candidate); 1 without one."""
        gate = self.gates.get(mode)
        return 1.0 if gate is None else gate.model.probability(e)

    def answers(self, mode: str, e: Evidence, best: float) -> bool:
        """Whether to show hits for a query whose best candidate is ``e`` and whose most relevant hit scores
        ``best``: the gate passes, or some hit is at least ``sure``."""
        gate = self.gates.get(mode)
        return gate is None or best >= self.sure or gate.model.probability(e) >= gate.threshold


def _model(m: dict) -> Model:
    return Model(list(m["features"]), [float(c) for c in m["coef"]], float(m["intercept"]))


@lru_cache(maxsize=1)
def load(path: Path = PARAMS) -> Calibration:
    data = json.loads(path.read_text(encoding="utf-8"))
    models = {mode: _model(m) for mode, m in data["models"].items()}
    gates = {mode: Gate(_model(g), float(g["threshold"])) for mode, g in data.get("gates", {}).items()}
    return Calibration(models, float(data["threshold"]), gates, float(data.get("sure", 1.0)))
