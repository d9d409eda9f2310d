"""Compare ways of fusing the dense and BM25 candidate lists on a BEIR split (tune on train, never on test).

Uses the index that ``beir_eval.py`` builds (run it first), gathers each query's candidates once through
``semsearch.search.engine.candidates`` (every candidate with both its cosine and its BM25 score), then scores each
fusion by nDCG@10 and Recall@100 over documents (a document ranks by its best chunk).

    python benchmarks/fusion_sweep.py [PATH_TO_BEIR_FOLDER] --split train
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import beir_eval  # noqa: E402


def _min_max(values: list[float], low: float | None = None) -> list[float]:
    lo = min(values) if low is None else low
    hi = max(values)
    return [(v - lo) / (hi - lo) if hi > lo else 0.0 for v in values]


def _z(values: list[float]) -> list[float]:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
    return [(v - mean) / sd for v in values]


def fusions() -> dict[str, Callable[[list], list[float]]]:
    """name -> function(candidates) -> fused scores."""
    out: dict[str, Callable[[list], list[float]]] = {}
    for k in (10, 30, 60, 100):
        out[f"rrf k={k}"] = lambda cs, k=k: [
            sum(1 / (k + r) for r in (c.dense_rank, c.keyword_rank) if r is not None) for c in cs
        ]
    for w in (0.3, 0.4, 0.5, 0.6, 0.7):
        out[f"convex min-max w={w}"] = lambda cs, w=w: [
            w * d + (1 - w) * s
            for d, s in zip(
                _min_max([c.dense_score or 0.0 for c in cs]),
                _min_max([c.keyword_score or 0.0 for c in cs]),
                strict=True,
            )
        ]
        out[f"convex min-max, in-list only w={w}"] = lambda cs, w=w: [
            w * d + (1 - w) * s
            for d, s in zip(
                _min_max([c.dense_score if c.dense_rank else min(x.dense_score or 0 for x in cs) for c in cs]),
                _min_max([c.keyword_score if c.keyword_rank else 0.0 for c in cs]),
                strict=True,
            )
        ]
        out[f"convex theoretical-min w={w}"] = lambda cs, w=w: [
            w * d + (1 - w) * s
            for d, s in zip(
                _min_max([c.dense_score or 0.0 for c in cs], low=-1.0),
                _min_max([c.keyword_score or 0.0 for c in cs], low=0.0),
                strict=True,
            )
        ]
        out[f"convex z-score w={w}"] = lambda cs, w=w: [
            w * d + (1 - w) * s
            for d, s in zip(
                _z([c.dense_score or 0.0 for c in cs]), _z([c.keyword_score or 0.0 for c in cs]), strict=True
            )
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection", nargs="?", type=Path, default=beir_eval.DEFAULT_COLLECTION)
    parser.add_argument("--split", default="train")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--depth", type=int, default=200, help="chunks taken from each list")
    parser.add_argument("--no-exact", action="store_true", help="do not rank exact identifiers first")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from semsearch.model.spec import resolve_model
    from semsearch.search.engine import candidates, for_index, load_query_encoder
    from semsearch.storage import keywords as lexical
    from semsearch.storage import vectors
    from semsearch.storage.embedded import EmbeddedIndex
    from semsearch.storage.layout import IndexPaths
    from semsearch.storage.store import Store

    folder = args.collection.resolve()
    corpus, queries, qrels = beir_eval.load_collection(folder, args.split)
    base = beir_eval.cache_dir(folder, args.cache)
    names = beir_eval.write_documents(corpus, base / "docs")
    store = Store.open(IndexPaths(base / "index"))
    spec = resolve_model(store.model_ref, **store.recorded_prefixes())
    vi = vectors.load(store)
    encoder = load_query_encoder(spec, store)
    doc_of = {}
    for cid, raw in store.conn.execute("SELECT c.id, f.path FROM chunks c JOIN files f ON f.id = c.file_id"):
        doc_of[cid] = names[os.fsdecode(raw).rsplit("/", 1)[-1]]
    gathered = {}
    for qid, text in queries.items():
        index = EmbeddedIndex(store, vi)
        parsed = for_index(index, lexical.parse(text, identifiers=not args.no_exact))
        found = candidates(index, encoder.encode_queries([text]), parsed, "hybrid", args.depth)
        gathered[qid] = found.ranked
    store.close()

    def docs(ranked: list) -> list[str]:
        out: list[str] = []
        for c in ranked:
            d = doc_of.get(c.chunk_id)
            if d is not None and d not in out:
                out.append(d)
        return out[:100]

    rows = []
    singles = {
        "keyword only": lambda cs: [c.keyword_score or 0.0 for c in cs],
        "semantic only": lambda cs: [c.dense_score or 0.0 for c in cs],
    }
    for name, fuse in {**singles, **fusions()}.items():
        rankings = {}
        for qid, cs in gathered.items():
            if name == "semantic only":
                cs = [c for c in cs if c.dense_rank is not None]
            elif name == "keyword only":
                cs = [c for c in cs if c.keyword_rank is not None or c.exact]
            scores = fuse(cs) if cs else []
            tier = (lambda c: 0) if name == "semantic only" else (lambda c: len(c.exact))
            order = sorted(zip(cs, scores, strict=True), key=lambda p: (-tier(p[0]), -p[1]))
            rankings[qid] = docs([c for c, _ in order])
        ndcg, recall = beir_eval.evaluate(rankings, qrels)
        rows.append((name, ndcg, recall))
        print(f"| {name} | {ndcg:.4f} | {recall:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
