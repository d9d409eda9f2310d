"""HNSW recall@10 of the PostgreSQL store on real embeddings, at several sizes and ``hnsw.ef_search``.

pg_bench.py measures recall on synthetic vectors (tight clusters, a hard case for HNSW). Here the vectors are
real: the passage vectors the evaluation runs embedded (the shared embedding cache of evalkit.py: the code
repositories of ../shared/eval/code and the BEIR collections), written through the store's own
``replace_files`` as ``index`` writes them (20 files of 10 passages per transaction, the HNSW graph grown one
insert at a time), and the queries are the evaluations' real queries (the code queries, CACM's, SciFact's),
encoded by the model's ONNX query encoder. At each size (one index, grown from one size to the next), each
query's top 10 by HNSW is compared with its exact top 10 (a sequential scan), at each ef_search, and with the
ef_search the store itself sets for a query of depth 100 (what every hybrid query asks).

    python benchmarks/pg_recall.py --cache /work/cache-rank --index /work/cache-rank/code/click-all
    python benchmarks/pg_recall.py --synthetic     # pg_bench's synthetic passages instead, for comparison

Prints one table. Not a test: the figures depend on the vectors.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

EVAL = REPO.parent / "shared" / "eval"
EFS = (40, 100, 200, 400)


def real_vectors(cache: Path, dim: int) -> np.ndarray:
    """Every distinct document vector of the default model in the embedding cache, in a fixed shuffled order."""
    conn = sqlite3.connect(f"file:{cache / 'embeddings.sqlite'}?mode=ro", uri=True)
    rows = conn.execute("SELECT key, vector FROM vectors WHERE key LIKE '%|doc|%' ORDER BY key").fetchall()
    conn.close()
    vecs = np.stack([np.frombuffer(v, dtype=np.float32) for _, v in rows if len(v) == 4 * dim])
    vecs = np.unique(vecs, axis=0)
    np.random.default_rng(11).shuffle(vecs)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def real_queries(index: Path) -> np.ndarray:
    """The evaluations' queries, encoded as semsearch encodes a query for ``index`` (an embedded index)."""
    from semsearch.model.encoders import load_query_encoder
    from semsearch.search.engine import query_model
    from semsearch.storage.layout import IndexPaths
    from semsearch.storage.store import Store

    texts = []
    for f in sorted((EVAL / "code" / "queries").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    for name in ("cacm", "scifact"):
        f = EVAL / name / "queries.jsonl"
        if f.exists():
            texts += [json.loads(line)["text"] for line in f.read_text(encoding="utf-8").splitlines()[:300] if line]
    paths = IndexPaths(index)
    store = Store.open(paths, upgrade=False)  # read only: another checkout may need it as it is
    try:
        encoder = load_query_encoder(query_model(store), paths, store.meta("vector_kind", "fp32"))
    finally:
        store.close()
    q = np.asarray(encoder.encode_queries(texts), dtype=np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/work/cache-rank"), help="the evaluations' cache folder")
    parser.add_argument("--index", type=Path, help="an embedded index of the default model (its query encoder)")
    parser.add_argument("--sizes", default="5000,15000,all", help="passages, comma-separated; 'all': every vector")
    parser.add_argument("--synthetic", action="store_true", help="pg_bench's synthetic passages and queries")
    parser.add_argument("--store", help="a PostgreSQL URL (default: start a server of its own)")
    args = parser.parse_args(argv)

    import pg_bench

    from semsearch.storage import postgres as pgstore

    if args.synthetic:
        data = pg_bench.Data()
        top = max(int(s) for s in args.sizes.split(",") if s != "all")
        vecs = np.concatenate([data.passages(s, min(1000, top - s))[1] for s in range(0, top, 1000)])
        queries = data.queries(top, 200)[1]
        kind = "synthetic (pg_bench)"
    else:
        vecs = real_vectors(args.cache, pg_bench.DIM)
        queries = real_queries(args.index)
        kind = "real (embedding cache)"
    sizes = [len(vecs) if s == "all" else min(int(s), len(vecs)) for s in args.sizes.split(",")]
    server = None
    url = args.store
    rows = []
    try:
        if not url:
            from pgserver import PgTestServer

            server = PgTestServer().start()
            url = server.create_database("recall")
        pg = pg_bench.pg_open(url, "recall", fresh=True)
        have = 0
        for size in sizes:
            step = 20 * pg_bench.PER_FILE  # 20 files a transaction, as index writes them
            for s in range(have, size, step):
                part = vecs[s : min(s + step, size)]
                pg_bench.write_batch(pg, [f"passage {s + i}" for i in range(len(part))], part, s, "/recall")
            have = size
            pg.sync_vectors()
            pg.conn.execute(f"VACUUM ANALYZE {pg.s}.chunks")
            measured = pg_bench.hnsw_recall(pg, queries, EFS)
            row = {f"ef {ef}": v for ef, v in measured.items()}
            # what a hybrid query asks (depth 100), with the store's own setting
            (row["store default, depth 100"],) = pg_bench.hnsw_recall(pg, queries, ["store"], 100).values()
            rows.append((size, row))
            print(f"  {size}: {rows[-1][1]}", flush=True)
        pg.close()
    finally:
        if server is not None:
            server.stop()
    print(
        f"pg_recall {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {kind} vectors, {len(queries)} queries;"
        f" HNSW m {pgstore.HNSW_M}, ef_construction {pgstore.HNSW_EF_CONSTRUCTION}; recall@10 against exact"
        f" (dense query median ms)"
    )
    cols = list(rows[0][1])
    print("| passages | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for size, row in rows:
        print(f"| {size:,} | " + " | ".join(f"{r:.3f} ({ms:.1f} ms)" for r, ms in row.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
