"""Measure semsearch's ranking on a BEIR collection: nDCG@10 and Recall@100 per search mode, through the real pipeline.

Each document is written as a Markdown file (its title as the first heading) into a cache folder keyed by the
collection, indexed with ``semsearch index`` (the real crawler, chunker, encoder and store; a rerun re-embeds
nothing), and every query of the split runs through ``semsearch.search.engine`` like ``semsearch query -l -k 100``:
hits are chunks, and a document ranks by its best chunk. The metrics use the standard formulas of trec_eval
(graded gains, log2 discount; recall over the documents judged relevant).

    python benchmarks/beir_eval.py                       # ../shared/eval/scifact, test split
    python benchmarks/beir_eval.py PATH --split train --rerank MODEL_DIR
    python benchmarks/beir_eval.py --backend onnx-int8   # a second index, embedded with the int8 encoder
    python benchmarks/beir_eval.py --store postgresql://... # the same, through a PostgreSQL store, beside the default

With ``--store``, the collection is also indexed into that PostgreSQL database (an index named after the
collection; the vectors are copied from the embedded index by text hash, so nothing is embedded twice), and each
row is printed for both stores with the difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_COLLECTION = REPO.parent / "shared" / "eval" / "scifact"
sys.path.insert(0, str(REPO))


# -- the collection -------------------------------------------------------------------------------------------------


def load_collection(folder: Path, split: str) -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus rows, {query id: text} for the judged queries of ``split``, {query id: {doc id: grade}})."""
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0] == "query-id":
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {}
    for line in (folder / "queries.jsonl").open(encoding="utf-8"):
        if line.strip():
            q = json.loads(line)
            if str(q["_id"]) in qrels:
                queries[str(q["_id"])] = q["text"]
    return corpus, queries, qrels


def cache_dir(folder: Path, override: Path | None) -> Path:
    if override:
        return override
    digest = hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "semsearch-beir" / f"{folder.name}-{digest}"


def file_name(doc_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", doc_id)[:100] + ".md"


def write_documents(corpus: list[dict], docs: Path) -> dict[str, str]:
    """One Markdown file per document (rewritten only when its text changed); returns {file name: doc id}."""
    docs.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for row in corpus:
        doc_id = str(row["_id"])
        name = file_name(doc_id)
        if name in names:
            name = f"{name[:-3]}-{hashlib.sha1(doc_id.encode()).hexdigest()[:8]}.md"
        names[name] = doc_id
        title = " ".join(str(row.get("title") or "").split())
        body = (f"# {title}\n\n" if title else "") + str(row.get("text") or "").strip() + "\n"
        path = docs / name
        if not path.exists() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
    return names


# -- metrics --------------------------------------------------------------------------------------------------------


def ndcg_at(ranking: list[str], judged: dict[str, int], k: int = 10) -> float:
    """nDCG@k with gain = grade and discount 1 / log2(rank + 1), as trec_eval's ndcg_cut."""
    dcg = sum(judged.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranking: list[str], judged: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant & set(ranking[:k])) / len(relevant) if relevant else 0.0


def evaluate(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> tuple[float, float]:
    """Mean nDCG@10 and Recall@100 over the queries of ``rankings`` ({query id: doc ids, best first})."""
    ndcg = sum(ndcg_at(ranking, qrels[qid]) for qid, ranking in rankings.items())
    recall = sum(recall_at(ranking, qrels[qid]) for qid, ranking in rankings.items())
    return ndcg / len(rankings), recall / len(rankings)


# -- running semsearch ----------------------------------------------------------------------------------------------


def build_index(docs: Path, index: Path, backend: str | None = None) -> None:
    from semsearch.index.indexer import Indexer, IndexOptions
    from semsearch.output.progress import PlainProgress

    report = Indexer(index, PlainProgress()).run(IndexOptions(paths=[docs], backend=backend))
    print(report.summary(), file=sys.stderr)


def build_pg_index(docs: Path, embedded: Path, url: str, name: str) -> Path:
    """The collection in a PostgreSQL index named after it, its vectors copied from the embedded index."""
    import sqlite3

    import numpy as np

    from semsearch import storespec
    from semsearch.storage import access as stores
    from semsearch.index.indexer import Indexer, IndexOptions
    from semsearch.storage.layout import IndexPaths
    from semsearch.output.progress import PlainProgress
    from semsearch.storage.store import Store

    sep = "&" if "?" in url else "?"
    folder = storespec.select(f"{url}{sep}index=beir_{re.sub(r'[^a-z0-9_]', '_', name.lower())}", embedded.parent)
    paths = IndexPaths(folder)
    if not stores.store_exists(paths):
        lite = Store.open(IndexPaths(embedded))
        model = lite.meta("model_ref")
        from semsearch.model.spec import resolve_model

        store = stores.create_store(paths, resolve_model(model, **lite.recorded_prefixes()), lite.dim)
        store.set_meta("vector_kind", lite.meta("vector_kind", "fp32"))
        conn = sqlite3.connect(IndexPaths(embedded).db)
        rows = conn.execute("SELECT text_hash, vector FROM embeddings").fetchall()
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            vectors = np.stack([np.frombuffer(v, dtype=np.float32) for _, v in part])
            store.put_embeddings([h for h, _ in part], vectors)
        conn.close()
        lite.close()
        store.close()
    report = Indexer(folder, PlainProgress()).run(IndexOptions(paths=[docs]))
    print(report.summary(), file=sys.stderr)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection", nargs="?", type=Path, default=DEFAULT_COLLECTION, help="a BEIR folder")
    parser.add_argument("--split", default="test", help="qrels split to report (tune on train only)")
    parser.add_argument("--cache", type=Path, help="where documents and the index are kept between runs")
    parser.add_argument("--rerank", help="folder of a CrossEncoder to add a rerank row")
    parser.add_argument("--rerank-depth", type=int, default=30)
    parser.add_argument(
        "--backend",
        choices=["onnx", "torch", "onnx-int8"],
        default="onnx",
        help="encoder the index is built with; each backend has its own index in the cache (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.add_argument("--store", help="a PostgreSQL URL: measure that store beside the embedded one")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from semsearch.search.engine import search_many
    from semsearch.search.hits import QueryOptions

    folder = args.collection.resolve()
    corpus, queries, qrels = load_collection(folder, args.split)
    base = cache_dir(folder, args.cache)
    names = write_documents(corpus, base / "docs")
    index = base / ("index" if args.backend == "onnx" else f"index-{args.backend}")
    build_index(base / "docs", index, args.backend)

    rows = [("keyword", {"mode": "keyword"}), ("semantic", {"mode": "semantic"})]
    rows += [("hybrid (RRF k=60)", {"mode": "hybrid", "fusion": "rrf"}), ("hybrid (default)", {"mode": "hybrid"})]
    if args.rerank:
        rows.append(("hybrid + rerank", {"mode": "hybrid", "rerank": args.rerank, "rerank_depth": args.rerank_depth}))
    ids = list(queries)
    indexes = [("", index)]
    if args.store:
        indexes.append(("postgresql ", build_pg_index(base / "docs", index, args.store, folder.name)))
    results = []
    for label, extra in rows:
        for store_label, where in indexes:
            started = time.monotonic()
            batches = search_many(where, [QueryOptions(text=queries[q], k=100, files_only=True, **extra) for q in ids])
            rankings = {q: [names[h.path.name] for h in hits] for q, hits in zip(ids, batches, strict=True)}
            ndcg, recall = evaluate(rankings, qrels)
            results.append(
                {
                    "mode": store_label + label,
                    "ndcg@10": round(ndcg, 4),
                    "recall@100": round(recall, 4),
                    "seconds": round(time.monotonic() - started, 1),
                }
            )
    if args.json:
        summary = {"collection": folder.name, "split": args.split, "backend": args.backend, "queries": len(ids)}
        print(json.dumps({**summary, "rows": results}))
    else:
        print(f"{folder.name} ({args.split}, {len(ids)} queries, {len(corpus)} documents, backend {args.backend})")
        print("| mode | nDCG@10 | Recall@100 |\n|---|---|---|")
        for r in results:
            print(f"| {r['mode']} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
