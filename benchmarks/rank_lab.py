"""A bench for ranking ideas: load the indexes beir_eval.py and code_eval.py built (chunks, their stored vectors,
the FTS5 table), score every query's chunks once, and try ranking functions over all collections and repositories
at once in memory (no re-embedding, no re-indexing). What wins here is then built into semsearch and measured
again through the real pipeline with beir_eval.py and code_eval.py.

    python benchmarks/rank_lab.py            # every collection and repository whose index is in the cache
"""

from __future__ import annotations

import hashlib
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
    done = ""
    for log in ("beir-before.err", "code-before.txt", "built.txt"):
        if (base / log).exists():
            done += (base / log).read_text()
    other = Path(os.environ.get("RANK_LAB_OTHER", "/work/cache-calib"))
    for folder in beir_eval.collections():
        # the index beir_eval.py measures by default (its sample, or the whole collection), else one a log names
        digest = hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest()[:12]
        size = beir_eval.SAMPLE.get(folder.name)
        named = (
            base / "beir" / (f"{folder.name}-{size}-{digest}" if size else f"{folder.name}-{digest}") / f"index{tag}"
        )
        found = [named] if (named / "index.sqlite3").exists() else []
        found = found or [
            p
            for p in (base / "beir").glob(f"{folder.name}-*/index{tag}")
            if re.search(rf"^{folder.name}[: ]", done, re.M)
        ]
        for name in (f"{folder.name}-{beir_eval.SAMPLE.get(folder.name)}", folder.name):
            if not found and (other / name / "built").exists() and (other / name / "index").exists():
                found = [other / name / "index"]
        if not found:
            continue
        index = found[0]
        corpus, queries, qrels = beir_eval.load_collection(folder, "test")
        names = {}
        for row in corpus:
            names[beir_eval.file_name(str(row["_id"]))] = str(row["_id"])
        data = load_index(index, index.parent / "docs")
        c = Corpus(
            folder.name, "prose", index, index.parent / "docs", queries=list(queries.items()), judged=qrels, **data
        )
        c.doc_of = [names.get(p, p) for p in c.paths]
        out.append(c)
    meta = json.loads((code_eval.CODE / "repos.json").read_text())
    for name in meta:
        index = base / "code" / f"{name}-all{tag}"
        newer = base / "code" / f"{name}-all-new"
        if tag:  # the indexes code_eval.py --tag=TAG built
            if not (index / "index.sqlite3").exists():
                continue
        elif (newer / "index.sqlite3").exists() and f"{name} [all]" in (base / "code-after1.txt").read_text():
            index = newer
        elif f"{name} [all]" not in done:
            index = other / "code" / name / "index"
            if not (other / "code" / name / "built").exists():
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
    mine = [c.index for c in out if c.index.is_relative_to(base)]
    _, qenc = document_encoder(mine[0], cache)  # one model for all: another run's index is only read
    for c in out:
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
    from semsearch.storage import keywords as lexical

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
    quoted: list[bool] = field(default_factory=list)  # whether each exact expression was a quoted phrase


def features(c: Corpus) -> list[Query]:
    from semsearch.storage import keywords as lexical

    out = []
    conn = sqlite3.connect(f"file:{c.index / 'index.sqlite3'}?mode=ro", uri=True)
    pos = {int(i): n for n, i in enumerate(c.ids)}
    for qi, (_, text) in enumerate(c.queries):
        parsed = lexical.parse(text)
        exact = []
        for expression in parsed.exact:
            rows = conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?", (expression,)).fetchall()
            exact.append({pos[r[0]] for r in rows if r[0] in pos})
        quoted = [label.startswith('"') for label in parsed.exact_labels]
        match = parsed.once(lexical.common(conn, list(parsed.times))).match  # as engine.for_index
        out.append(Query(text, c.vectors @ c.qvecs[qi], fts_scores(c, text, match), exact, quoted))
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


# -- lab keyword signals ---------------------------------------------------------------------------------------------

_STEMMER = None
_TOKEN = re.compile(r"[^\W_]+")
STOP = None


def stem_words(text: str, split_camel: bool = False) -> list[str]:
    global _STEMMER, STOP
    if _STEMMER is None:
        import Stemmer

        from semsearch.storage.keywords import STOPWORDS

        _STEMMER = Stemmer.Stemmer("porter")
        STOP = STOPWORDS
    out = []
    for tok in _TOKEN.findall(text):
        out.append(tok.lower())
        if split_camel:
            parts = _SPLIT.findall(tok)
            if len(parts) > 1:
                out.extend(p.lower() for p in parts)
    return _STEMMER.stemWords(out)


class BM25:
    """BM25 over token lists with chosen k1 and b (Lucene idf), numpy."""

    def __init__(self, docs: list[list[str]], k1: float = 0.9, b: float = 0.4):
        from collections import Counter

        self.k1, self.b = k1, b
        self.tf: dict[str, dict[int, int]] = {}
        self.dl = np.array([len(d) for d in docs], dtype=np.float64)
        self.avg = self.dl.mean() if len(docs) else 1.0
        for i, d in enumerate(docs):
            for t, n in Counter(d).items():
                self.tf.setdefault(t, {})[i] = n
        self.n = len(docs)

    def scores(self, terms: list[str]) -> dict[int, float]:
        out: dict[int, float] = {}
        for t in dict.fromkeys(terms):
            post = self.tf.get(t)
            if not post:
                continue
            idf = math.log(1 + (self.n - len(post) + 0.5) / (len(post) + 0.5))
            for i, f in post.items():
                norm = self.k1 * (1 - self.b + self.b * self.dl[i] / self.avg)
                out[i] = out.get(i, 0.0) + idf * f * (self.k1 + 1) / (f + norm)
        return out


def query_terms(text: str, split_camel: bool = False) -> list[str]:
    toks = stem_words(text, split_camel)
    content = [t for t in toks if t not in STOP]
    return content or toks


def path_parts(path: str) -> set[str]:
    p = Path(path)
    parts = [p.stem] + ([p.parent.name] if p.parent.name else [])
    return set(stem_words(" ".join(parts), split_camel=True))


def fuse(
    c: Corpus,
    q: Query,
    kw: dict[int, float],
    depth: int = 100,
    own: bool = False,
    wd: float = 0.5,
    bonus: np.ndarray | None = None,
    exact_first: bool = True,
) -> list[int]:
    dense_top = np.argsort(-q.dense, kind="stable")[:depth]
    kw_top = sorted(kw.items(), key=lambda t: -t[1])[:depth]
    pool = list(dict.fromkeys([int(i) for i in dense_top] + [i for i, _ in kw_top]))
    if exact_first:
        for s in q.exact:
            pool.extend(i for i in sorted(s)[:depth] if i not in pool)
        pool = list(dict.fromkeys(pool))
    d = np.array([q.dense[i] for i in pool])
    k = np.array([kw.get(i, 0.0) for i in pool])
    if own:
        zd = z(d, q.dense[dense_top])
        zk = z(k, np.array([s for _, s in kw_top]) if kw_top else None)
    else:
        zd, zk = z(d), z(k)
    fused = wd * zd + (1 - wd) * zk
    if bonus is not None:
        fused = fused + bonus[pool]
    nexact = [sum(i in s for s in q.exact) for i in pool] if exact_first else [0] * len(pool)
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


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:(?:::|\\.|->)[A-Za-z_][A-Za-z0-9_]*)*")
_DEF_WORDS = (
    "class|module|defmodule|def|defp|interface|struct|enum|trait|type|typealias|func|function|fn|fun|object|"
    "protocol|record|typedef|impl|let|const|var|val|macro|union|extension|namespace|package|sub|proc|data|newtype"
)


def query_symbols(text: str) -> list[str]:
    """Identifiers a query names: camelCase, PascalCase, snake_case or dotted; a one-word query that is not all
    lower case."""
    out = []
    stripped = text.strip()
    for tok in _IDENT.findall(text):
        last = re.split(r"::|\\.|->", tok)[-1]
        if (
            re.search(r"[a-z][A-Z]|[A-Z][a-z]+[A-Z]|_", last)
            or (stripped == tok and not last.islower())
            or re.search(r"::|\\.|->", tok)
        ) and len(last) > 2:
            out.append(last)
    return list(dict.fromkeys(out))


def defines(text: str, name: str) -> bool:
    pat = re.compile(
        r"(?:^|\s)(?:"
        + _DEF_WORDS
        + r")\s+(?:[A-Za-z_][A-Za-z0-9_]*(?:\.|::))*"
        + re.escape(name)
        + r"(?:\s|[<({:\[;=]|$)",
        re.MULTILINE,
    )
    return pat.search(text) is not None


def path_match(c: Corpus, i: int, qwords: set[str]) -> float:
    if not qwords:
        return 0.0
    parts = path_parts(c.paths[i])
    return len(qwords & parts) / len(qwords)


def stem_equals(c: Corpus, i: int, symbols: list[str]) -> bool:
    stem = Path(c.paths[i]).stem.lower().replace("_", "")
    return any(stem == s.lower().replace("_", "") for s in symbols)


def diversify(ranked: list[int], scores: dict[int, float], c: Corpus, decay: float = 0.5, free: int = 1) -> list[int]:
    """Greedy: each further chunk of a file already shown has its score lowered (scores here are >= 0)."""
    seen: dict[str, int] = {}
    eff = {}
    for i in ranked:
        n = seen.get(c.paths[i], 0)
        eff[i] = scores[i] - (decay * (n - free + 1) if n >= free else 0.0)
        seen[c.paths[i]] = n + 1
    return sorted(ranked, key=lambda i: -eff[i])


class Lab:
    """Keyword variants computed lazily per corpus and query."""

    def __init__(self, corpora, feats):
        self.corpora, self.feats = corpora, feats
        self.models: dict = {}
        self.cache: dict = {}

    def docs(self, c: Corpus, variant: str) -> list[list[str]]:
        camel = "camel" in variant
        out = []
        for h, t, p in zip(c.headings, c.texts, c.paths):
            if "dedupe" in variant and h and t.lstrip("# ").startswith(h):
                full = t
            else:
                full = f"{h}\n{t}" if h else t
            toks = stem_words(full, camel)
            if "path" in variant and c.kind == "code":
                toks += list(path_parts(p))
            out.append(toks)
        return out

    def fts(self, c: Corpus, qi: int) -> dict[int, float]:
        """FTS5 scores from a table filled by this checkout's storage/keywords.py (what a new index holds)."""
        from semsearch.storage import keywords as lexical

        key = (c.name, "ftsnew")
        if key not in self.models:
            conn = sqlite3.connect(":memory:")
            lexical.create_table(conn)
            lexical.add_chunks(conn, [(n, h, t) for n, (h, t) in enumerate(zip(c.headings, c.texts))])
            self.models[key] = conn
        ck = key + (qi,)
        if ck not in self.cache:
            expression = lexical.parse(c.queries[qi][1]).match
            rows = (
                self.models[key]
                .execute("SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?", (expression,))
                .fetchall()
                if expression
                else []
            )
            self.cache[ck] = {int(r): float(v) for r, v in rows}
        return self.cache[ck]

    def kw(self, c: Corpus, qi: int, variant: str, k1: float = 0.9, b: float = 0.4) -> dict[int, float]:
        if variant == "ftsnew":
            return self.fts(c, qi)
        key = (c.name, variant, k1, b)
        if key not in self.models:
            self.models[key] = BM25(self.docs(c, variant), k1, b)
        ck = key + (qi,)
        if ck not in self.cache:
            self.cache[ck] = self.models[key].scores(query_terms(c.queries[qi][1], "camel" in variant))
        return self.cache[ck]


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = default_cache()
    cache = EmbeddingCache(base / "embeddings.sqlite")
    only = set(sys.argv[1].split(",")) if len(sys.argv) > 1 and sys.argv[1] else None
    which = sys.argv[2].split(",") if len(sys.argv) > 2 else None
    corpora = [c for c in load_all(base, cache, os.environ.get("RANK_LAB_TAG", "")) if not only or c.name in only]
    feats = {c.name: features(c) for c in corpora}
    lab = Lab(corpora, feats)
    qindex = {}
    for c in corpora:
        for qi, q in enumerate(feats[c.name]):
            qindex[id(q)] = qi

    def with_kw(variant, k1=0.9, b=0.4, **kw):
        return lambda c, q: fuse(c, q, lab.kw(c, qindex[id(q)], variant, k1, b), **kw)

    rankers = {
        "current": current,
        "keyword": lambda c, q: [i for i, _ in sorted(q.fts.items(), key=lambda t: -t[1])],
        "semantic": lambda c, q: list(np.argsort(-q.dense, kind="stable")[:100]),
        "fts own-z": lambda c, q: fuse(c, q, q.fts, own=True),
        "bm25 1.2/.75": with_kw("plain", 1.2, 0.75),
        "bm25 .9/.4": with_kw("plain"),
        "bm25 .9/.4 own-z": with_kw("plain", own=True),
        "bm25 .9/.4 dedupe": with_kw("dedupe"),
        "bm25 .9/.4 dedupe own-z": with_kw("dedupe", own=True),
        "bm25 camel": with_kw("camel"),
        "bm25 path": with_kw("path"),
        "bm25 camel path": with_kw("camel path"),
        "bm25 camel path dedupe own": with_kw("camel path dedupe", own=True),
    }

    def code_aware(variant="plain", wpath=0.0, wdef=0.0, wstem=0.0, decay=0.0, free=1, own=False, wd=0.5):
        def rank(c, q):
            qi = qindex[id(q)]
            kw = lab.kw(c, qi, variant) if variant != "fts" else q.fts
            r = fuse(c, q, kw, own=own, wd=wd)
            pool = r
            qwords = set(query_terms(q.text, True))
            syms = query_symbols(q.text)
            bonus = {}
            # recompute fused scores to add bonuses
            d = np.array([q.dense[i] for i in pool])
            k = np.array([kw.get(i, 0.0) for i in pool])
            fused = wd * z(d) + (1 - wd) * z(k)
            for j, i in enumerate(pool):
                b = fused[j]
                if wpath:
                    b += wpath * path_match(c, i, qwords)
                if syms and wdef and any(defines(c.texts[i], s) for s in syms):
                    b += wdef
                if syms and wstem and stem_equals(c, i, syms):
                    b += wstem
                bonus[i] = b
            order = sorted(pool, key=lambda i: -bonus[i])
            if decay:
                order = diversify(order, bonus, c, decay, free)
            return order

        return rank

    from semsearch.search import ranking as R

    defcache: dict = {}

    def definitions(c, q):
        """Every chunk that defines a symbol the query names (an upper bound of a definition search)."""
        key = (c.name, q.text)
        if key not in defcache:
            syms = R.query_symbols(q.text)
            defcache[key] = [i for i in range(len(c.texts)) if syms and any(R.defines(c.texts[i], s) for s in syms)]
        return defcache[key]

    def layer(
        variant="fts",
        own=False,
        wd=0.5,
        exact_first=False,
        div=True,
        ident=0.0,
        defs=False,
        quoted_first=False,
        **weights,
    ):
        def rank(c, q):
            saved = {k: getattr(R, k) for k in weights}
            for k, v in weights.items():
                setattr(R, k, v)
            try:
                qi = qindex[id(q)]
                kw = lab.kw(c, qi, variant) if variant != "fts" else q.fts
                pool = fuse(c, q, kw, own=own, wd=wd)
                if defs:
                    pool = pool + [i for i in definitions(c, q) if i not in set(pool)]
                d = np.array([q.dense[i] for i in pool])
                k = np.array([kw.get(i, 0.0) for i in pool])
                fused = wd * z(d, q.dense[np.argsort(-q.dense)[:100]] if own else None) + (1 - wd) * z(k)
                ev = R.query_evidence(q.text)
                scores = R.adjust(
                    [(f, c.paths[i], c.texts[i] if ev.symbols else None) for f, i in zip(fused, pool)], ev
                )
                if exact_first:
                    nex = [sum(i in s for s in q.exact) for i in pool]
                    scores = [s + 100 * n for s, n in zip(scores, nex)]
                if quoted_first:  # as the pipeline orders: passages holding more quoted phrases first
                    nq = [sum(i in s for s, qu in zip(q.exact, q.quoted) if qu) for i in pool]
                    scores = [s + 100 * n for s, n in zip(scores, nq)]
                if ident:
                    nid = [sum(i in s for s, qu in zip(q.exact, q.quoted) if not qu) for i in pool]
                    nq = [sum(i in s for s, qu in zip(q.exact, q.quoted) if qu) for i in pool]
                    scores = [s + ident * a + 100 * b for s, a, b in zip(scores, nid, nq)]
                order = sorted(range(len(pool)), key=lambda j: -scores[j])
                if div:
                    order = R.spread(order, scores, [c.paths[i] for i in pool])
                return [pool[j] for j in order]
            finally:
                for k, v in saved.items():
                    setattr(R, k, v)

        return rank

    rankers.update(
        {
            "pipeline": layer(quoted_first=True),  # what semsearch query does (the index's own keyword table)
            "L": layer(),
            "L new": layer("ftsnew"),
            "L coh1.5": layer(COHERENCE_WEIGHT=1.5),
            "L coh2": layer(COHERENCE_WEIGHT=2.0),
            "L new coh1.5": layer("ftsnew", COHERENCE_WEIGHT=1.5),
            "L new coh2": layer("ftsnew", COHERENCE_WEIGHT=2.0),
            "L new coh2 defs": layer("ftsnew", COHERENCE_WEIGHT=2.0, defs=True),
            "L new coh2 defs def2": layer("ftsnew", COHERENCE_WEIGHT=2.0, defs=True, DEFINITION_WEIGHT=2.0),
            "L new coh2 path3": layer("ftsnew", COHERENCE_WEIGHT=2.0, PATH_WEIGHT=3.0),
            "L new coh2 rep.8": layer("ftsnew", COHERENCE_WEIGHT=2.0, REPEAT_PENALTY=0.8),
        }
    )
    import beir_eval

    refcache: dict = {}

    def reference(kind):
        def rank(c, q):
            if c.kind != "prose":
                return []
            import bm25s
            import Stemmer

            if c.name not in refcache:
                corpus, _, _ = beir_eval.load_collection(EVAL / c.name, "test")
                present = {d for d in c.doc_of}
                corpus = [r for r in corpus if str(r["_id"]) in present]
                ids = [str(r["_id"]) for r in corpus]
                texts = [
                    (" ".join(str(r.get("title") or "").split()) + " " + str(r.get("text") or "").strip()).strip()
                    for r in corpus
                ]
                st = Stemmer.Stemmer("english")
                ret = bm25s.BM25(k1=0.9, b=0.4)
                ret.index(bm25s.tokenize(texts, stopwords="en", stemmer=st, show_progress=False), show_progress=False)
                first = {}
                for i, d in enumerate(c.doc_of):
                    first.setdefault(d, i)
                refcache[c.name] = (ids, ret, st, first)
            ids, ret, st, first = refcache[c.name]
            toks = [
                t
                for t in bm25s.tokenize([q.text], stopwords="en", stemmer=st, show_progress=False, return_ids=False)[0]
                if t in ret.vocab_dict
            ]
            bm = ret.get_scores(toks) if toks else np.zeros(len(ids))
            cos = np.array([q.dense[first[d]] for d in ids])
            tb = np.argsort(-bm, kind="stable")[:100]
            td = np.argsort(-cos, kind="stable")[:100]
            if kind == "bm25":
                order = list(tb)
            elif kind == "rrf":
                f = {}
                for r_ in (tb, td):
                    for r, i in enumerate(r_, 1):
                        f[int(i)] = f.get(int(i), 0) + 1 / (60 + r)
                order = sorted(f, key=lambda i: -f[i])
            else:
                zb = (bm - bm[tb].mean()) / (bm[tb].std() or 1)
                zd = (cos - cos[td].mean()) / (cos[td].std() or 1)
                pool = set(map(int, tb)) | set(map(int, td))
                order = sorted(pool, key=lambda i: -(zb[i] + zd[i]))
            return [first[ids[i]] for i in order]

        return rank

    rankers.update({"ref bm25": reference("bm25"), "ref rrf": reference("rrf"), "ref z": reference("z")})
    if which:
        rankers = {k: v for k, v in rankers.items() if k in which or k == "current"}
    run(corpora, feats, rankers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
