"""Measure semsearch's ranking on every BEIR collection in ../shared/eval: nDCG@10 and Recall@100 per search mode,
through the real pipeline, beside references computed outside the tool, in one run.

Each document is written as a Markdown file (its title as the first heading) into a cache folder keyed by the
collection, indexed with semsearch's Indexer (the real crawler, chunker, encoder and store; vectors come from the
shared embedding cache of evalkit.py, so a rebuild re-embeds only new texts), and every query of the split runs
through ``semsearch.search`` as ``semsearch query --files -k 10`` does: documents rank by their best passage. The
references (BM25 k1 0.9 / b 0.4 with stemming, exact whole-document MiniLM cosine, their plain RRF and their
z-score fusion over each signal's top 100) are computed in the same run with bm25s and the same model
(``pip install -e '.[bench]'``). The metrics use the standard formulas of trec_eval.

    python benchmarks/beir_eval.py                       # every collection in ../shared/eval
    python benchmarks/beir_eval.py ../shared/eval/scifact --split train --rerank MODEL_DIR
    python benchmarks/beir_eval.py --store postgresql://...   # also through a PostgreSQL store, beside the default

With ``--store``, each collection is also indexed into that PostgreSQL database (an index named after the
collection; the vectors are copied from the embedded index by text hash, so nothing is embedded twice), and each
row is printed for both stores.
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
sys.path.insert(0, os.environ.get("SEMSEARCH_BENCH_SOURCE") or str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


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


# -- references computed outside the tool ----------------------------------------------------------------------------


def references(
    corpus: list[dict],
    queries: dict[str, str],
    index: Path,
    cache,
    vectors: str = "document",
    names: dict | None = None,
) -> dict[str, dict[str, list[str]]]:
    """Rankings (top 100 document ids per query) of the baselines the issue names, computed outside semsearch:
    BM25 (bm25s, k1 0.9, b 0.4, English stopwords, Snowball stemming), exact whole-document MiniLM cosine (the
    index's own model over each document's title and text), plain RRF (k 60) of the two top-100 lists, and the
    z-score fusion of the two scores, each standardized over its own top 100 (mean of the two z-scores)."""
    import bm25s
    import numpy as np
    import Stemmer
    from evalkit import document_encoder

    ids = [str(r["_id"]) for r in corpus]
    texts = [
        (" ".join(str(r.get("title") or "").split()) + " " + str(r.get("text") or "").strip()).strip() for r in corpus
    ]
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=0.9, b=0.4)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    doc_encoder, query_encoder = document_encoder(index, cache)
    if vectors == "document":
        doc_vecs = doc_encoder.encode_documents(texts)
    else:  # the stored vector of each document's first passage: no embedding at all
        doc_vecs = first_passage_vectors(index, ids, names or {}, doc_encoder.inner.dim)
    qids = list(queries)
    q_vecs = query_encoder.encode_queries([queries[q] for q in qids])
    vocab = retriever.vocab_dict
    out: dict[str, dict[str, list[str]]] = {"BM25 (bm25s)": {}, "MiniLM ref": {}, "RRF ref": {}, "z-score ref": {}}
    for qi, qid in enumerate(qids):
        tokens = bm25s.tokenize([queries[qid]], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)[
            0
        ]
        tokens = [t for t in tokens if t in vocab]
        bm25 = retriever.get_scores(tokens) if tokens else np.zeros(len(ids), dtype=np.float32)
        cos = doc_vecs @ q_vecs[qi]
        top_b = np.argsort(-bm25, kind="stable")[:100]
        top_d = np.argsort(-cos, kind="stable")[:100]
        out["BM25 (bm25s)"][qid] = [ids[i] for i in top_b]
        out["MiniLM ref"][qid] = [ids[i] for i in top_d]
        rrf: dict[int, float] = {}
        for ranking in (top_b, top_d):
            for r, i in enumerate(ranking, 1):
                rrf[int(i)] = rrf.get(int(i), 0.0) + 1 / (60 + r)
        out["RRF ref"][qid] = [ids[i] for i in sorted(rrf, key=lambda i: -rrf[i])[:100]]
        zb = (bm25 - bm25[top_b].mean()) / (bm25[top_b].std() or 1.0)
        zd = (cos - cos[top_d].mean()) / (cos[top_d].std() or 1.0)
        pool = set(map(int, top_b)) | set(map(int, top_d))
        fused = {i: (zb[i] + zd[i]) / 2 for i in pool}
        out["z-score ref"][qid] = [ids[i] for i in sorted(fused, key=lambda i: -fused[i])[:100]]
    return out


def build_pg_index(docs: Path, embedded: Path, url: str, name: str) -> Path:
    """The collection in a PostgreSQL index named after it, its vectors copied from the embedded index."""
    import sqlite3

    import numpy as np

    from semsearch import storespec
    from semsearch.index.indexer import Indexer, IndexOptions
    from semsearch.output.progress import PlainProgress
    from semsearch.storage import access as stores
    from semsearch.storage.layout import IndexPaths
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


def first_passage_vectors(index: Path, ids: list[str], names: dict[str, str], dim: int):
    import sqlite3

    import numpy as np

    by_doc = {doc: name for name, doc in names.items()}
    conn = sqlite3.connect(f"file:{index / 'index.sqlite3'}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT f.path, e.vector FROM chunks c JOIN files f ON f.id = c.file_id"
        " JOIN embeddings e ON e.text_hash = c.text_hash ORDER BY c.file_id, c.ord DESC"
    ).fetchall()
    conn.close()
    first = {os.path.basename(os.fsdecode(path)): blob for path, blob in rows}  # the last row of a file is ord 0
    out = np.zeros((len(ids), dim), dtype=np.float32)
    for n, doc in enumerate(ids):
        blob = first.get(by_doc.get(doc, ""))
        if blob is not None:
            out[n] = np.frombuffer(blob, dtype=np.float32)
    return out


# -- running semsearch ----------------------------------------------------------------------------------------------

MODES = [
    ("keyword", {"mode": "keyword"}),
    ("semantic", {"mode": "semantic"}),
    ("hybrid RRF", {"mode": "hybrid", "fusion": "rrf"}),
    ("hybrid (default)", {"mode": "hybrid"}),
    ("hybrid --all", {"mode": "hybrid", "show_all": True}),  # without the calibrated cut-off and "no match"
]


# Embedding SciFact whole (13,659 passages, and its documents again for the references) takes about 20 minutes on
# two busy cores: by default it is measured on a sample, every document judged for a test query and as many
# others drawn at random (seed 0) to make up this many documents (the same sample as
# benchmarks/calibration_data.py, so the two share their vectors); --full measures it whole. NPL's 11,429
# documents are a sentence or two each (under two minutes to embed): measured whole.
SAMPLE = {"scifact": 1000}


def sample(corpus: list[dict], qrels: dict[str, dict[str, int]], size: int) -> list[dict]:
    import random

    judged = {d for q in qrels.values() for d in q}
    others = sorted(str(r["_id"]) for r in corpus if str(r["_id"]) not in judged)
    keep = judged | set(random.Random(0).sample(others, max(0, size - len(judged))))
    return [r for r in corpus if str(r["_id"]) in keep]


def run_collection(
    folder: Path,
    split: str,
    base: Path,
    cache,
    with_refs: bool,
    tag: str = "",
    ref_vectors: str = "document",
    full: bool = False,
    rerank: str | None = None,
    rerank_depth: int = 30,
    store: str | None = None,
) -> dict:
    """Index one collection (cached), run every mode and the references; {label: (nDCG@10, Recall@100)}."""
    from evalkit import build_index, run_queries

    started = time.monotonic()
    corpus, queries, qrels = load_collection(folder, split)
    digest = hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest()[:12]
    size = None if full else SAMPLE.get(folder.name)
    if size and size < len(corpus):
        corpus = sample(corpus, qrels, size)
        work = base / "beir" / f"{folder.name}-{size}-{digest}"
    else:
        size = None
        work = base / "beir" / f"{folder.name}-{digest}"
    names = write_documents(corpus, work / "docs")
    summary = build_index(work / "docs", work / f"index{tag}", cache)
    index_seconds = time.monotonic() - started
    ids = list(queries)
    texts = [queries[q] for q in ids]
    rows: dict[str, tuple[float, float]] = {}
    timings: dict[str, float] = {}
    modes = list(MODES)
    if rerank:
        modes.append(("hybrid + rerank", {"mode": "hybrid", "rerank": rerank, "rerank_depth": rerank_depth}))
    indexes = [("", work / f"index{tag}")]
    if store:  # the same collection through a PostgreSQL store, its vectors copied from the embedded index
        indexes.append(("postgresql ", build_pg_index(work / "docs", work / f"index{tag}", store, folder.name)))
    for label, extra in modes:
        for store_label, where in indexes:
            t = time.monotonic()
            # nDCG@10 as `semsearch query --files -k 10` ranks documents (each by its best passage); recall at 100
            top10 = run_queries(where, texts, k=10, files_only=True, **extra)
            top100 = run_queries(where, texts, k=100, files_only=True, **extra)
            r10 = {q: [names[h.path.name] for h in hits] for q, hits in zip(ids, top10, strict=True)}
            r100 = {q: [names[h.path.name] for h in hits] for q, hits in zip(ids, top100, strict=True)}
            rows[store_label + label] = (evaluate(r10, qrels)[0], evaluate(r100, qrels)[1])
            timings[store_label + label] = time.monotonic() - t
    if with_refs:
        t = time.monotonic()
        refs = references(corpus, queries, work / f"index{tag}", cache, ref_vectors, names)
        for label, rankings in refs.items():
            rows[label] = evaluate(rankings, qrels)
        timings["references"] = time.monotonic() - t
    return {
        "collection": folder.name + (f" (sample of {size})" if size else ""),
        "documents": len(corpus),
        "queries": len(ids),
        "index": summary,
        "index_seconds": round(index_seconds, 1),
        "rows": {k: [round(v[0], 4), round(v[1], 4)] for k, v in rows.items()},
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }


def collections() -> list[Path]:
    from evalkit import EVAL

    return sorted(p for p in EVAL.iterdir() if (p / "corpus.jsonl").exists())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collections", nargs="*", type=Path, help="BEIR folders (default: every one in ../shared/eval)")
    parser.add_argument("--split", default="test", help="qrels split to report (tune on train only)")
    parser.add_argument("--cache", type=Path, help="where documents, indexes and the embedding cache are kept")
    parser.add_argument("--rerank", help="folder of a CrossEncoder to add a rerank row")
    parser.add_argument("--rerank-depth", type=int, default=30)
    parser.add_argument("--store", help="a PostgreSQL URL: measure that store beside the embedded one")
    parser.add_argument("--full", action="store_true", help="SciFact whole, not a sample (about 20 minutes to embed)")
    parser.add_argument("--no-references", action="store_true", help="skip the BM25/MiniLM references")
    parser.add_argument(
        "--reference-vectors",
        choices=["document", "passage"],
        default="document",
        help="the references' MiniLM side: each whole document embedded (exact, costs an embedding per document)"
        " or the stored vector of its first passage (free); default: %(default)s",
    )
    parser.add_argument("--tag", default="", help="a suffix for the index folders (to keep indexes of another build)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from evalkit import EmbeddingCache, default_cache

    started = time.monotonic()
    base = args.cache or default_cache()
    cache = EmbeddingCache(base / "embeddings.sqlite")
    folders = [p.resolve() for p in args.collections] or collections()
    results = []
    for folder in folders:
        result = run_collection(
            folder,
            args.split,
            base,
            cache,
            not args.no_references,
            args.tag,
            args.reference_vectors,
            args.full,
            args.rerank,
            args.rerank_depth,
            args.store,
        )
        results.append(result)
        print(f"{result['collection']}: {result['index']}", file=sys.stderr, flush=True)
    labels = list(dict.fromkeys(label for r in results for label in r["rows"]))
    print(f"nDCG@10 (Recall@100) per collection, {args.split} split; documents ranked by their best passage")
    if not args.no_references:
        print(f"references: bm25s k1 0.9 b 0.4 stemmed; MiniLM over {args.reference_vectors} vectors")
    head = ["mode"] + [f"{r['collection']} ({r['queries']} q)" for r in results] + ["mean"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for label in labels:
        cells = [
            f"{r['rows'][label][0]:.4f} ({r['rows'][label][1]:.3f})" if label in r["rows"] else "" for r in results
        ]
        values = [r["rows"][label][0] for r in results if label in r["rows"]]
        print(f"| {label} | " + " | ".join(cells) + f" | {sum(values) / len(values):.4f} |")
    for r in results:
        times = ", ".join(f"{k} {v}s" for k, v in r["seconds"].items())
        print(f"{r['collection']}: index {r['index_seconds']}s; {times}")
    print(f"embedding cache: {cache.hits} reused, {cache.misses} embedded; total {time.monotonic() - started:.1f}s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
