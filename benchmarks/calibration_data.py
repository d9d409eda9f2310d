"""What the calibration benchmarks (calibration_fit.py, abstain_eval.py) share: the test collections of
``../shared/eval`` (four prose collections and 19 code repositories), one index of each built through semsearch's
own Indexer and kept between runs, the judged relevance of a hit, and the raw signals of every hit of a query.

Indexes are built as the ranking benchmarks build theirs (evalkit.build_index), their document vectors through
evalkit's embedding cache: an index rebuilt after a chunking change re-embeds only the texts it never saw, and the
vectors code_eval.py and beir_eval.py made already are read from their cache (SEMSEARCH_OTHER_EMBEDDINGS).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EVAL = REPO.parent / "shared" / "eval"
PROSE = ("scifact", "npl", "med", "cacm")
GROUPS = PROSE + ("code",)
sys.path.insert(0, str(REPO))

from beir_eval import write_documents  # noqa: E402  (the same files beir_eval.py indexes)
from evalkit import EmbeddingCache, build_index  # noqa: E402


def default_cache() -> Path:
    return Path(os.environ.get("SEMSEARCH_CALIB_CACHE") or "/tmp/semsearch-calibration")


# -- the collections ------------------------------------------------------------------------------------------------


@dataclass
class Query:
    id: str
    text: str
    # prose: {doc id: grade}; code: the targets [{"path", "kind", optional "start_line", "end_line"}]
    judged: dict | list = field(default_factory=dict)


@dataclass
class Collection:
    name: str  # "scifact", ..., "code/flask"
    group: str  # "scifact", "npl", "med", "cacm" or "code"
    root: Path  # the folder that is indexed
    index: Path
    queries: list[Query]
    doc_of: dict[str, str] = field(default_factory=dict)  # prose: file name -> doc id

    def label(self, hit, query: Query) -> int:
        """1 when the hit is judged relevant to the query (prose: its document; code: semble's chunk protocol)."""
        raise NotImplementedError


# Embedding SciFact and NPL whole (25,000 chunks) takes hours on two cores shared with other work: the benchmarks
# index a sample of each, every document judged for a test query and as many others drawn at random (seed 0) to
# make up SAMPLE[name] documents. SEMSEARCH_CALIB_FULL=1 indexes every collection whole.
SAMPLE = {"scifact": 1000, "npl": 3000}


def prose_collection(name: str, cache: Path) -> Collection:
    folder = EVAL / name
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").open(encoding="utf-8"):
        parts = line.rstrip("\n").split("\t")
        if len(parts) >= 3 and parts[0] != "query-id":
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = []
    for line in (folder / "queries.jsonl").open(encoding="utf-8"):
        if line.strip():
            q = json.loads(line)
            if str(q["_id"]) in qrels:
                queries.append(Query(str(q["_id"]), q["text"], qrels[str(q["_id"])]))
    size = None if os.environ.get("SEMSEARCH_CALIB_FULL") else SAMPLE.get(name)
    if size and size < len(corpus):
        import random

        judged = {d for q in queries for d in q.judged}
        others = sorted(str(r["_id"]) for r in corpus if str(r["_id"]) not in judged)
        keep = judged | set(random.Random(0).sample(others, max(0, size - len(judged))))
        corpus = [r for r in corpus if str(r["_id"]) in keep]
        base = cache / f"{name}-{size}"
    else:
        base = cache / name
    names = write_documents(corpus, base / "docs")
    return ProseCollection(name, name, base / "docs", base / "index", queries, names)


class ProseCollection(Collection):
    def label(self, hit, query: Query) -> int:
        return int(query.judged.get(self.doc_of.get(hit.path.name, ""), 0) > 0)


def code_repos() -> list[str]:
    return sorted(p.stem for p in (EVAL / "code" / "queries").glob("*.jsonl"))


def code_collection(repo: str, cache: Path) -> Collection:
    queries = []
    for line in (EVAL / "code" / "queries" / f"{repo}.jsonl").open(encoding="utf-8"):
        if line.strip():
            q = json.loads(line)
            queries.append(Query(str(q["id"]), q["text"], q["targets"]))
    root = EVAL / "code" / "repos" / repo
    return CodeCollection(f"code/{repo}", "code", root, cache / "code" / repo / "index", queries)


def _same_path(a: str, b: str) -> bool:
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


class CodeCollection(Collection):
    def matches(self, hit, query: Query) -> list[int]:
        """The targets of the query the hit matches (semble's chunk protocol)."""
        try:
            rel = hit.path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            rel = hit.path.as_posix()
        out = []
        for i, t in enumerate(query.judged):
            if not _same_path(rel, t["path"]):
                continue
            if t.get("start_line") is None or (hit.start_line <= t["end_line"] and t["start_line"] <= hit.end_line):
                out.append(i)
        return out

    def label(self, hit, query: Query) -> int:
        return int(bool(self.matches(hit, query)))


def collections(cache: Path, only: list[str] | None = None) -> list[Collection]:
    out = [prose_collection(n, cache) for n in PROSE]
    out += [code_collection(r, cache) for r in code_repos()]
    if only:
        out = [c for c in out if c.name in only or c.group in only]
    return out


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build_all(cache: Path, only: list[str] | None = None) -> None:
    # other benchmarks' caches (code_eval.py's, beir_eval.py's), read only
    others = [Path(p) for p in os.environ.get("SEMSEARCH_OTHER_EMBEDDINGS", "").split(os.pathsep) if p]
    emb = EmbeddingCache(cache / "embeddings.sqlite", others)
    # smallest first: a run stopped half-way still leaves usable indexes
    # (benchmarks/code_eval.py and beir_eval.py embed the code and CACM first; their vectors are read, not made again)
    # code: smallest repositories first (a run stopped half-way leaves the most indexes)
    order = sorted(
        collections(cache, only),
        key=lambda c: ({"med": 0, "scifact": 1, "npl": 2, "cacm": 3, "code": 4}[c.group], _size(c.root)),
    )
    for c in order:
        summary = build_index(c.root, c.index, emb)
        (c.index.parent / "built").write_text(summary + "\n", encoding="utf-8")  # collect() waits for it
        print(f"{c.name}: {summary}", file=sys.stderr, flush=True)
    print(f"embedding cache: {emb.hits} reused, {emb.misses} embedded", file=sys.stderr)


# -- the raw signals of a query's hits --------------------------------------------------------------------------------

MODES = ("hybrid", "semantic", "keyword")


def _engine():
    from semsearch.search import engine

    return engine


class MemoQueryEncoder:
    """One query encoder for every index (they share the model): each text is encoded once."""

    def __init__(self, inner):
        self.inner, self.memo = inner, {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.memo]
        if missing:
            for t, v in zip(missing, self.inner.encode_queries(missing)):
                self.memo[t] = v
        return np.stack([self.memo[t] for t in texts])


class Searcher:
    """An open index as semsearch.search.engine opens it, and the shared query encoder."""

    def __init__(self, index: Path, encoders: dict):
        from semsearch.storage.access import open_for_search, open_store
        from semsearch.storage.layout import IndexPaths

        engine = _engine()
        self.store = open_store(IndexPaths(index))
        spec = engine.query_model(self.store)
        self.index = open_for_search(self.store, with_vectors=True)
        key = spec.fingerprint
        if key not in encoders:
            encoders[key] = MemoQueryEncoder(engine.load_query_encoder(spec, self.store))
        self.encoder = encoders[key]

    def close(self) -> None:
        self.store.close()

    def hits(self, text: str, k: int, show_all: bool = False, **options) -> list:
        """The query's hits as ``semsearch query`` finds them (``show_all``: as ``--all``, whatever their score)."""
        engine = _engine()
        opts = engine.QueryOptions(text=text, k=k, show_all=show_all, **options)
        return engine.search_with(self.index, self.encoder, opts)


@dataclass
class RawHit:
    path: Path
    start_line: int
    end_line: int
    evidence: dict


def raw_hits(searcher: Searcher, text: str, mode: str, k: int) -> list[RawHit]:
    """The first k hits of a query with what the calibration reads of them (semsearch.search.engine.evidence:
    their raw signals, the best cosine and BM25 among all the query's candidates, the share of its words the
    index holds), ranked as semsearch.search ranks them (the ranking layer included; no filters)."""
    import dataclasses

    from semsearch.search.hits import CANDIDATE_DEPTH
    from semsearch.storage import keywords as lexical

    engine = _engine()
    query = searcher.encoder.encode_queries([text]) if mode != "keyword" else None
    with searcher.index.snapshot():
        parsed = engine.for_index(searcher.index, lexical.parse(text))
        found = engine.candidates(searcher.index, query, parsed, mode, max(CANDIDATE_DEPTH, 2 * k), text=text).ranked
        of = engine.evidence(searcher.index, mode, found, parsed, every=True)
        rows = searcher.index.chunk_rows([c.chunk_id for c in found[: 2 * k]])
    out = []
    for place, c in enumerate(found[: 2 * k], 1):
        row = rows.get(c.chunk_id)
        if row is None:
            continue
        ev = dataclasses.asdict(of(place, c))
        ev["rank"] = len(out) + 1
        out.append(RawHit(row.path, row.start_line, row.end_line, ev))
        if len(out) == k:
            break
    return out


def signals_file(folder: Path, name: str) -> Path:
    return folder / (name.replace("/", "--") + ".jsonl")


def collect(
    cache: Path,
    folder: Path,
    force: bool = False,
    modes=MODES,
    deep: int = 30,
    shallow: int = 10,
    foreign_every: int = 2,
) -> None:
    """For each index: run its collection's queries against it (the first ``deep`` hits) and every other
    collection's (every ``foreign_every``-th query; the first ``shallow`` hits), in each mode; write one row per hit
    to ``folder/INDEX.jsonl``. Indexes already done are skipped unless ``force``; indexes not built yet too."""
    import time

    colls = collections(cache)
    encoders: dict = {}
    folder.mkdir(parents=True, exist_ok=True)
    for target in colls:
        out = signals_file(folder, target.name)
        if out.exists() and not force:
            continue
        if not (target.index.parent / "built").exists():
            print(f"{target.name}: no index yet", file=sys.stderr)
            continue
        started = time.monotonic()
        searcher = Searcher(target.index, encoders)
        tmp = out.with_suffix(".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as f:
                for source in colls:
                    own = source is target
                    queries = source.queries if own else source.queries[::foreign_every]
                    for q in queries:
                        for mode in modes:
                            for h in raw_hits(searcher, q.text, mode, deep if own else shallow):
                                row = {
                                    "index": target.name,
                                    "group": target.group,
                                    "source": source.name,
                                    "source_group": source.group,
                                    "query": q.id,
                                    "own": own,
                                    "mode": mode,
                                    "label": target.label(h, q) if own else 0,
                                    "doc": _doc_key(target, h),
                                    "matches": target.matches(h, q) if own and target.group == "code" else [],
                                    **h.evidence,
                                }
                                f.write(json.dumps(row) + "\n")
        finally:
            searcher.close()
        tmp.replace(out)
        print(f"{target.name}: signals in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)


def load_signals(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.open(encoding="utf-8")]
    return rows


def _doc_key(target: Collection, h) -> str:
    if isinstance(target, ProseCollection):
        return target.doc_of.get(h.path.name, h.path.name)
    return f"{h.path}:{h.start_line}-{h.end_line}"


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    build_all(Path(sys.argv[1]) if len(sys.argv) > 1 else default_cache(), sys.argv[2:] or None)
