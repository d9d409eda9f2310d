"""What the ranking benchmarks (beir_eval.py, code_eval.py) share: an embedding cache, index building through
semsearch's own Indexer, queries as ``semsearch query`` runs them, and the metrics' plumbing.

Embedding is what costs (about 40 chunks a second on a free core), so every vector the benchmarks compute is kept
in one SQLite file keyed by the model's fingerprint, the backend and the text's SHA-256: rebuilding an index after a
chunking change, or building a second index over the same files (code only), re-embeds only texts never seen.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EVAL = REPO.parent / "shared" / "eval"
# SEMSEARCH_BENCH_SOURCE: measure another checkout's semsearch (the "before" of a change) with this harness
sys.path.insert(0, os.environ.get("SEMSEARCH_BENCH_SOURCE") or str(REPO))


def default_cache() -> Path:
    return Path(os.environ.get("SEMSEARCH_BENCH_CACHE") or Path(tempfile.gettempdir()) / "semsearch-bench")


def module(new: str, old: str):
    """A semsearch module by its name in the package layout, or its name before "One house" (issue 12), so the
    harness can measure a checkout from before it (SEMSEARCH_BENCH_SOURCE)."""
    import importlib

    import semsearch

    packaged = (Path(semsearch.__path__[0]) / "search" / "engine.py").exists()
    return importlib.import_module(new if packaged else old)


class EmbeddingCache:
    """Vectors by (model fingerprint, backend, text hash), in one SQLite file shared by all benchmark indexes."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID"
        )
        self.hits = self.misses = 0
        # read-only caches of other runs (SEMSEARCH_BENCH_EXTRA_CACHES, separated by os.pathsep): same keys
        self.extra = [
            sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=30)
            for p in os.environ.get("SEMSEARCH_BENCH_EXTRA_CACHES", "").split(os.pathsep)
            if p and Path(p).exists() and Path(p).resolve() != path.resolve()
        ]

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            for key, blob in self.conn.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part):
                out[key] = np.frombuffer(blob, dtype=np.float32)
        for conn in self.extra:
            missing = [k for k in keys if k not in out]
            found: dict[str, np.ndarray] = {}
            for start in range(0, len(missing), 500):
                part = missing[start : start + 500]
                marks = ",".join("?" * len(part))
                try:
                    rows = conn.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part).fetchall()
                except sqlite3.Error:
                    rows = []
                found.update((key, np.frombuffer(blob, dtype=np.float32)) for key, blob in rows)
            if found:
                self.put(list(found), np.stack(list(found.values())))
                out.update(found)
        return out

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
            [(k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in zip(keys, vectors)],
        )
        self.conn.commit()


class CachedEncoder:
    """A document encoder that asks the cache first and encodes only what it has never seen."""

    def __init__(self, inner, cache: EmbeddingCache, fingerprint: str):
        self.inner, self.cache, self.fingerprint = inner, cache, fingerprint

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _keys(self, texts: list[str], kind: str) -> list[str]:
        return [
            f"{self.fingerprint}|{kind}|" + hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest()
            for t in texts
        ]

    def _encode(self, texts: list[str], kind: str, encode) -> np.ndarray:
        keys = self._keys(texts, kind)
        found = self.cache.get(list(dict.fromkeys(keys)))
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        self.cache.hits += len(keys) - len(missing)
        self.cache.misses += len(missing)
        if missing:
            by_key = dict(zip(keys, texts))
            vecs = encode([by_key[k] for k in missing])
            self.cache.put(missing, vecs)
            found.update(zip(missing, np.asarray(vecs, dtype=np.float32)))
        return (
            np.stack([found[k] for k in keys]).astype(np.float32) if keys else np.empty((0, self.inner.dim), np.float32)
        )

    def encode_documents(self, texts: list[str], on_batch=None) -> np.ndarray:
        return self._encode(texts, "doc", self.inner.encode_documents)


def fingerprint(model, backend: str) -> str:
    return f"{model.fingerprint}|{model.document_prefix}|{model.truncate_dim}|{backend}"


def prefill(folder: Path, cache: EmbeddingCache, include: list[str] | None = None, backend: str = "onnx") -> int:
    """Embed into the cache, shortest texts together, every passage the Indexer will want for ``folder`` (same
    crawler, extractors and chunker): batches of like lengths pad little, so this is quicker than the Indexer's
    file-order batches. Returns how many texts were embedded."""
    crawl_mod = module("semsearch.index.crawl", "semsearch.crawl")
    CrawlOptions, FoundFile, crawl = crawl_mod.CrawlOptions, crawl_mod.FoundFile, crawl_mod.crawl
    encoders = module("semsearch.model.encoders", "semsearch.embed")
    OnnxTextEncoder, export_for_index = encoders.OnnxTextEncoder, encoders.export_for_index
    indexer = module("semsearch.index.indexer", "semsearch.indexer")
    Indexer, _prepare, _Work = indexer.Indexer, indexer._prepare, indexer._Work
    resolve_model = module("semsearch.model.spec", "semsearch.models").resolve_model
    IndexPaths = module("semsearch.storage.layout", "semsearch.paths").IndexPaths

    model = resolve_model(None)
    texts: dict[str, str] = {}
    chunker = Indexer(Path(tempfile.gettempdir()))._get_chunker(model, model.max_seq_length)
    for item in crawl([folder], CrawlOptions(include=list(include or []))):
        if isinstance(item, FoundFile):
            work = _Work(item, None)
            _prepare(work, chunker)
            texts.update((h, c.embed_text) for h, c in zip(work.hashes, work.chunks))
    fp = fingerprint(model, backend)
    keys = {f"{fp}|doc|{h}": t for h, t in texts.items()}
    missing = [k for k in keys if k not in cache.get(list(keys))]
    if not missing:
        return 0
    export = Path(tempfile.gettempdir()) / "semsearch-bench-export"
    encoder = CachedEncoder(OnnxTextEncoder(model, export_for_index(model, IndexPaths(export), "fp32")), cache, fp)
    ordered = sorted((keys[k] for k in missing), key=len)
    for start in range(0, len(ordered), 256):
        encoder.encode_documents(ordered[start : start + 256])
    return len(missing)


def build_index(folder: Path, index: Path, cache: EmbeddingCache, include: list[str] | None = None) -> str:
    """Index ``folder`` into ``index`` with semsearch's Indexer, its document vectors through the cache."""
    from semsearch.progress import Progress

    CrawlOptions = module("semsearch.index.crawl", "semsearch.crawl").CrawlOptions
    indexer = module("semsearch.index.indexer", "semsearch.indexer")
    Indexer, IndexOptions = indexer.Indexer, indexer.IndexOptions

    class CachedIndexer(Indexer):
        def _load_encoder(self, model):
            if self._encoder is None:
                inner = super()._load_encoder(model)
                self._encoder = CachedEncoder(inner, cache, fingerprint(model, self._backend))
            return self._encoder

    if os.environ.get("SEMSEARCH_BENCH_PREFILL", "1") != "0":
        prefill(folder, cache, include)
    options = IndexOptions(paths=[folder], crawl=CrawlOptions(include=list(include or [])))
    report = CachedIndexer(index, Progress()).run(options)
    return report.summary()


def document_encoder(index: Path, cache: EmbeddingCache):
    """The index's model as a cached document encoder, and its query encoder (for references outside the tool)."""
    encoders = module("semsearch.model.encoders", "semsearch.embed")
    OnnxTextEncoder, export_for_index = encoders.OnnxTextEncoder, encoders.export_for_index
    load_query_encoder = encoders.load_query_encoder
    IndexPaths = module("semsearch.storage.layout", "semsearch.paths").IndexPaths
    query_model = module("semsearch.search.engine", "semsearch.search").query_model
    Store = module("semsearch.storage.store", "semsearch.store").Store

    paths = IndexPaths(index)
    # read only: the index may be another checkout's, of an older format, which an upgrade would make unreadable
    # to it (a checkout from before the keyword, SEMSEARCH_BENCH_SOURCE, opens it as it always did)
    read_only = "upgrade" in inspect.signature(Store.open).parameters
    store = Store.open(paths, upgrade=False) if read_only else Store.open(paths)
    try:
        spec = query_model(store)
        kind = store.meta("vector_kind", "fp32")
        docs = CachedEncoder(
            OnnxTextEncoder(spec, export_for_index(spec, paths, kind)), cache, fingerprint(spec, "onnx")
        )
        queries = load_query_encoder(spec, paths, kind)
    finally:
        store.close()
    return docs, queries


def run_queries(index: Path, texts: list[str], **options) -> list[list]:
    """Every query through semsearch.search as ``semsearch query --queries FILE`` runs them (one model load)."""
    engine = module("semsearch.search.engine", "semsearch.search")
    QueryOptions, search_many = engine.QueryOptions, engine.search_many

    return search_many(index, [QueryOptions(text=t, **options) for t in texts])


class Clock:
    def __init__(self):
        self.started = time.monotonic()

    def __str__(self) -> str:
        return f"{time.monotonic() - self.started:.1f}s"
