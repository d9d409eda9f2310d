"""What the ranking benchmarks (beir_eval.py, code_eval.py, rank_lab.py) share, and the calibration's
(calibration_data.py) too: an embedding cache, index building through semsearch's own Indexer, queries as
``semsearch query`` runs them, and the metrics' plumbing.

Embedding is what costs (about 40 chunks a second on a free core), so every vector the benchmarks compute is kept
in one SQLite file keyed by the model's fingerprint, the backend and the text's SHA-256: rebuilding an index after a
chunking change, or building a second index over the same files (code only), re-embeds only texts never seen.
"""

from __future__ import annotations

import copy
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
    """Vectors by (model fingerprint, backend, text hash), in one SQLite file shared by all benchmark indexes.

    ``others``: read-only caches of other runs with the same keys (calibration_data.py reads code_eval.py's, and
    the other way round); a vector found there is copied into this cache. Not given: the caches named by
    SEMSEARCH_BENCH_EXTRA_CACHES (separated by os.pathsep)."""

    def __init__(self, path: Path, others: list[Path] | None = None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=60)  # another benchmark may be writing the same cache
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID"
        )
        self.hits = self.misses = 0
        if others is None:
            others = [Path(p) for p in os.environ.get("SEMSEARCH_BENCH_EXTRA_CACHES", "").split(os.pathsep) if p]
        self.extra = [
            sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=60)
            for p in others
            if p.exists() and p.resolve() != path.resolve()
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


def build_index(
    folder: Path, index: Path, cache: EmbeddingCache, include: list[str] | None = None, prefill: bool | None = None
) -> str:
    """Index ``folder`` into ``index`` with semsearch's Indexer, its document vectors through the cache.

    ``prefill`` (default: unless SEMSEARCH_BENCH_PREFILL=0): before the Indexer embeds, in file order and 32 texts
    at a time, embed into the cache every text it is about to embed (the files it found new or changed, the texts
    its store does not hold), shortest first, 256 at a time: batches of like lengths pad little. The Indexer then
    finds every vector in the cache."""
    from semsearch.progress import Progress

    CrawlOptions = module("semsearch.index.crawl", "semsearch.crawl").CrawlOptions
    indexer = module("semsearch.index.indexer", "semsearch.indexer")
    Indexer, IndexOptions, prepare = indexer.Indexer, indexer.IndexOptions, indexer._prepare
    if prefill is None:
        prefill = os.environ.get("SEMSEARCH_BENCH_PREFILL", "1") != "0"

    class CachedIndexer(Indexer):
        def _load_encoder(self, model):
            if self._encoder is None:
                inner = super()._load_encoder(model)
                self._encoder = CachedEncoder(inner, cache, fingerprint(model, self._backend))
            return self._encoder

        def _process(self, store, model, todo, report, chunk_tokens):
            if prefill and todo:
                # the files are read and chunked again by the Indexer after this: seconds (gson: 4 s), where
                # embedding them takes minutes
                chunker = self._get_chunker(model, chunk_tokens)
                texts: dict[str, str] = {}
                for work in todo:
                    probe = copy.copy(work)  # the Indexer's own is left as it found it
                    prepare(probe, chunker)
                    texts.update(zip(probe.hashes, (c.embed_text for c in probe.chunks)))
                known = store.known_hashes(texts)
                ordered = sorted((t for h, t in texts.items() if h not in known), key=len)
                encoder = self._load_encoder(model)
                reused = cache.hits  # counted when the Indexer asks for them
                for start in range(0, len(ordered), 256):
                    encoder.encode_documents(ordered[start : start + 256])
                cache.hits = reused
            super()._process(store, model, todo, report, chunk_tokens)

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

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def __str__(self) -> str:
        return f"{self.seconds:.1f}s"
