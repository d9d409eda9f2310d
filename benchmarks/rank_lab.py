"""A bench for ranking ideas: load the indexes beir_eval.py and code_eval.py built (chunks, their stored vectors,
the FTS5 table), score every query's chunks once, and try ranking functions over all collections and repositories
at once in memory (no re-embedding, no re-indexing). What wins here is then built into semsearch and measured
again through the real pipeline with beir_eval.py and code_eval.py.

    python benchmarks/rank_lab.py            # every collection and repository whose index is in the cache
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evalkit import EVAL, EmbeddingCache, default_cache, document_encoder  # noqa: E402


@dataclass
class Corpus:
    name: str
    kind: str  # prose | code
    index: Path
    root: Path
    ids: np.ndarray
    paths: list[str]  # relative to root
    headings: list[str]
    texts: list[str]
    starts: np.ndarray
    ends: np.ndarray
    vectors: np.ndarray
    queries: list[tuple[str, str]]  # (id, text)
    judged: dict = field(default_factory=dict)  # prose: {qid: {doc: grade}}; code: {qid: targets}
    doc_of: list[str] = field(default_factory=list)  # prose: doc id of each chunk
    qvecs: np.ndarray | None = None
    lang: str = ""


def load_index(index: Path, root: Path) -> dict:
    conn = sqlite3.connect(f"file:{index / 'index.sqlite3'}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT c.id, f.path, c.heading, c.text, c.start_line, c.end_line, e.vector FROM chunks c"
        " JOIN files f ON f.id = c.file_id JOIN embeddings e ON e.text_hash = c.text_hash ORDER BY c.id"
    ).fetchall()
    conn.close()
    rootstr = os.fsdecode(root) + "/"
    return {
        "ids": np.array([r[0] for r in rows]),
        "paths": [os.fsdecode(r[1]).removeprefix(rootstr) for r in rows],
        "headings": [r[2] for r in rows],
        "texts": [r[3] for r in rows],
        "starts": np.array([r[4] for r in rows]),
        "ends": np.array([r[5] for r in rows]),
        "vectors": np.stack([np.frombuffer(r[6], dtype=np.float32) for r in rows]),
    }


def load_all(base: Path, cache: EmbeddingCache, tag: str = "") -> list[Corpus]:
    import beir_eval
    import code_eval

    out: list[Corpus] = []
    for folder in beir_eval.collections():
        found = list((base / "beir").glob(f"{folder.name}-*/index{tag}"))
        if not found:
            continue
        index = found[0]
        corpus, queries, qrels = beir_eval.load_collection(folder, "test")
        names = {}
        for row in corpus:
            names[beir_eval.file_name(str(row["_id"]))] = str(row["_id"])
        data = load_index(index, index.parent / "docs")
        c = Corpus(folder.name, "prose", index, index.parent / "docs", queries=list(queries.items()), judged=qrels, **data)
        c.doc_of = [names.get(p, p) for p in c.paths]
        out.append(c)
    meta = json.loads((code_eval.CODE / "repos.json").read_text())
    for name in meta:
        index = base / "code" / f"{name}-all{tag}"
        if not (index / "index.sqlite3").exists():
            continue
        root = (code_eval.CODE / "repos" / name).resolve()
        qs = code_eval.load_queries(name)
        c = Corpus(
            name,
            "code",
            index,
            root,
            queries=[(q["id"], q["text"]) for q in qs],
            judged={q["id"]: q["targets"] for q in qs},
            lang=meta[name]["language"],
            **load_index(index, root),
        )
        out.append(c)
    for c in out:
        _, qenc = document_encoder(c.index, cache)
        c.qvecs = qenc.encode_queries([t for _, t in c.queries])
    return out


# -- evaluation -----------------------------------------------------------------------------------------------------


def evaluate(c: Corpus, qi: int, ranked: list[int]) -> float:
    """nDCG@10 of one query: prose over documents by best chunk; code by semble's chunk protocol."""
    qid = c.queries[qi][0]
    if c.kind == "prose":
        import beir_eval

        docs: list[str] = []
        for i in ranked:
            d = c.doc_of[i]
            if d not in docs:
                docs.append(d)
            if len(docs) == 10:
                break
        return beir_eval.ndcg_at(docs, c.judged[qid])
    import code_eval

    items = [(c.paths[i], int(c.starts[i]), int(c.ends[i])) for i in ranked[:10]]
    return code_eval.ndcg10(items, c.judged[qid])


def fts_scores(c: Corpus, text: str, expression: str | None = None) -> dict[int, float]:
    """FTS5 bm25() of every matching chunk, by position in the corpus arrays."""
    from semsearch import lexical

    expression = expression if expression is not None else lexical.parse(text).match
    if not expression:
        return {}
    conn = sqlite3.connect(f"file:{c.index / 'index.sqlite3'}?mode=ro", uri=True)
    pos = {int(i): n for n, i in enumerate(c.ids)}
    rows = conn.execute(
        "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?", (expression,)
    ).fetchall()
    conn.close()
    return {pos[r[0]]: float(r[1]) for r in rows if r[0] in pos}


def z(values: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    ref = values if ref is None else ref
    sd = ref.std()
    return (values - ref.mean()) / sd if sd > 0 else values * 0.0


_SPLIT = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


# -- per-query features ---------------------------------------------------------------------------------------------


@dataclass
class Query:
    text: str
    dense: np.ndarray  # cosine of every chunk
    fts: dict[int, float]  # FTS5 bm25 of matching chunks
    exact: list[set[int]]  # per exact expression, the chunks matching it


def features(c: Corpus) -> list[Query]:
    from semsearch import lexical

    out = []
    conn = sqlite3.connect(f"file:{c.index / 'index.sqlite3'}?mode=ro", uri=True)
    pos = {int(i): n for n, i in enumerate(c.ids)}
    for qi, (_, text) in enumerate(c.queries):
        parsed = lexical.parse(text)
        exact = []
        for expression in parsed.exact:
            rows = conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?", (expression,)).fetchall()
            exact.append({pos[r[0]] for r in rows if r[0] in pos})
        out.append(Query(text, c.vectors @ c.qvecs[qi], fts_scores(c, text, parsed.match), exact))
    conn.close()
    return out


def current(c: Corpus, q: Query, depth: int = 100) -> list[int]:
    """What semsearch's hybrid does today: top ``depth`` of each list, z-scores over the union, exact first."""
    dense_top = np.argsort(-q.dense, kind="stable")[:depth]
    kw = sorted(q.fts.items(), key=lambda t: -t[1])[:depth]
    pool = list(dict.fromkeys([int(i) for i in dense_top] + [i for i, _ in kw]))
    for s in q.exact:
        pool.extend(i for i in sorted(s)[:depth] if i not in pool)  # approximation of lexical.matching(limit)
    pool = list(dict.fromkeys(pool))
    d = np.array([q.dense[i] for i in pool])
    k = np.array([q.fts.get(i, 0.0) for i in pool])
    fused = 0.5 * z(d) + 0.5 * z(k)
    nexact = [sum(i in s for s in q.exact) for i in pool]
    order = sorted(range(len(pool)), key=lambda j: (-nexact[j], -fused[j], c.ids[pool[j]]))
    return [pool[j] for j in order]


def run(corpora: list[Corpus], feats: dict[str, list[Query]], rankers: dict) -> None:
    names = [c.name for c in corpora]
    print("| ranker | " + " | ".join(names) + " | prose mean | code mean |")
    print("|---|" + "---|" * (len(names) + 2))
    for label, fn in rankers.items():
        scores = {}
        for c in corpora:
            vals = [evaluate(c, qi, fn(c, q)) for qi, q in enumerate(feats[c.name])]
            scores[c.name] = sum(vals) / len(vals)
        prose = [scores[c.name] for c in corpora if c.kind == "prose"]
        code = [scores[c.name] for c in corpora if c.kind == "code"]
        pm = sum(prose) / len(prose) if prose else float("nan")
        cm = sum(code) / len(code) if code else float("nan")
        print(f"| {label} | " + " | ".join(f"{scores[n]:.3f}" for n in names) + f" | {pm:.4f} | {cm:.4f} |", flush=True)


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = default_cache()
    cache = EmbeddingCache(base / "embeddings.sqlite")
    only = set(sys.argv[1].split(",")) if len(sys.argv) > 1 else None
    corpora = [c for c in load_all(base, cache) if not only or c.name in only]
    feats = {c.name: features(c) for c in corpora}
    rankers = {
        "current": current,
        "keyword": lambda c, q: [i for i, _ in sorted(q.fts.items(), key=lambda t: -t[1])],
        "semantic": lambda c, q: list(np.argsort(-q.dense, kind="stable")[:100]),
    }
    run(corpora, feats, rankers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
