"""Answer queries: gather candidates by meaning (FAISS) and by keyword (FTS5), fuse them, and return the hits."""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UsageError
from .faults import reading_index
from .hits import CANDIDATE_DEPTH, MODES, RERANK_DEPTH, Hit, QueryOptions, display_path  # noqa: F401 (re-exported)
from .paths import IndexPaths

if TYPE_CHECKING:  # loaded when a search runs
    import numpy as np

    from . import fusion, lexical, vectors
    from .store import Store

log = logging.getLogger(__name__)

ROWS_AT_ONCE = 32  # candidates whose chunk rows are read together, at least (twice k when k is larger)


def _load_query_encoder(spec, store: Store):
    from .embed import load_query_encoder

    return load_query_encoder(spec, store.paths, store.meta("vector_kind", "fp32"))


def search(index_dir: Path, options: QueryOptions) -> list[Hit]:
    return search_many(index_dir, [options])[0]


def search_many(index_dir: Path, queries: list[QueryOptions]) -> list[list[Hit]]:
    """Run several queries against one index, loading the model (and a reranker) once."""
    for options in queries:
        if options.mode not in MODES:
            raise UsageError(f"Unknown search mode '{options.mode}'; use one of: {', '.join(MODES)}.")
    paths = IndexPaths(index_dir)
    with reading_index(paths):
        return _search_many(paths, queries)


def query_model(store: Store):
    """The model as this index's queries use it: with the prefixes and the ``--dim`` its vectors were made with."""
    from .models import resolve_model

    return replace(resolve_model(store.model_ref, **store.recorded_prefixes()), truncate_dim=store.truncate_dim)


def _search_many(paths: IndexPaths, queries: list[QueryOptions]) -> list[list[Hit]]:
    from .store import Store

    store = Store.open(paths)
    try:
        vi = encoder = None
        if any(o.mode != "keyword" for o in queries):
            from . import vectors  # faiss: only when searching by meaning (render imports this module for Hit)

            spec = query_model(store)
            store.check_model(spec)
            vi = vectors.load(store)
            if vi.damaged:
                log.warning(
                    "the vector file was rebuilt in memory from stored vectors (%s); "
                    "run semsearch index --rebuild to save it",
                    vi.damaged,
                )
            if vi.size:
                encoder = _load_query_encoder(spec, store)
        return [search_with(store, vi, encoder, options) for options in queries]
    finally:
        store.close()


def search_with(store: Store, vi: vectors.VectorIndex | None, encoder, options: QueryOptions) -> list[Hit]:
    """One query over an open store, its loaded vectors and encoder (None when only keywords are searched).

    In-process queries and the watcher's query server both come here, so they answer alike.
    """
    # One query at a time: a query's vector (and so its hits) never depends on the others in the batch.
    query = encoder.encode_queries([options.text]) if encoder and options.mode != "keyword" else None
    with store.snapshot():
        hits = _collect(store, vi, query, options)
    if options.rerank and hits:
        from .rerank import rerank

        hits = rerank(options.rerank, options.text, hits)[: options.k]
    return hits


def _matches_path(path: Path, glob: str) -> bool:
    full = os.fsdecode(path)
    shown = display_path(path)
    return any(
        fnmatch.fnmatch(candidate, pattern)
        for candidate in (full, shown, path.name)
        for pattern in (glob, f"*/{glob}", f"{glob}/*", f"*/{glob}/*")
    )


@dataclass
class Candidates:
    ranked: list[fusion.Candidate] = field(default_factory=list)
    more: bool = False  # a deeper search could bring more candidates that pass the score floor


def candidates(
    store: Store,
    vi: vectors.VectorIndex | None,
    query: np.ndarray | None,
    parsed: lexical.ParsedQuery,
    mode: str,
    depth: int,
    fuse: str = "convex",
    min_score: float | None = None,
    text: str | None = None,
) -> Candidates:
    """The chunks worth showing for one query, best first, each with its dense, keyword and fused scores."""
    from . import fusion, lexical

    found: dict[int, fusion.Candidate] = {}
    more = False
    use_dense = mode != "keyword" and vi is not None and query is not None and vi.size > 0
    use_keyword = mode != "semantic"
    if use_dense:
        scores, ids = vi.search(query, depth)
        dense = [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
        for rank, (cid, score) in enumerate(dense, 1):
            found[cid] = fusion.Candidate(cid, dense_rank=rank, dense_score=score)
        # every chunk outside the list scores below its last one, so deeper only helps above the floor
        more = len(dense) >= depth and depth < vi.size and (min_score is None or dense[-1][1] >= min_score)
    if use_keyword:
        # the dense candidates' BM25 scores come from the same pass over the matches as the keyword list
        asked = list(found)
        keyword, known = lexical.search_and_score(store.conn, parsed.match, depth, asked)
        for rank, (cid, score) in enumerate(keyword, 1):
            c = found.setdefault(cid, fusion.Candidate(cid))
            c.keyword_rank, c.keyword_score = rank, score
        if mode == "keyword":
            more = len(keyword) >= depth and (min_score is None or keyword[-1][1] >= min_score)
        elif len(keyword) >= depth and (min_score is None or not use_dense):
            more = True  # (with a cosine floor, every chunk that passes it is in the dense list already)
        for expression in parsed.exact:  # exact matches compete even when BM25 ranked them low
            for cid in lexical.matching(store.conn, expression, limit=depth):
                found.setdefault(cid, fusion.Candidate(cid))
        ids_all = list(found)
        for expression, label in zip(parsed.exact, parsed.exact_labels, strict=True):
            for cid in lexical.matching(store.conn, expression, ids=ids_all):
                found[cid].exact += (label,)
        asked_set = set(asked)  # (a dense candidate missing from ``known`` matches no query word: 0)
        missing = [cid for cid, c in found.items() if c.keyword_score is None and cid not in asked_set]
        if missing:  # exact matches outside both lists
            known.update(lexical.scores_for(store.conn, parsed.match, missing))
        for c in found.values():
            if c.keyword_score is None:
                c.keyword_score = known.get(c.chunk_id, 0.0)
    if use_dense and use_keyword:
        for c in found.values():
            if c.dense_score is None:
                c.dense_score = _cosine(vi, query, c.chunk_id)
    ranked = list(found.values())
    if mode == "semantic":
        for c in ranked:
            c.fused = c.dense_score
        ranked.sort(key=lambda c: (-c.fused, c.chunk_id))
        return Candidates(ranked, more)
    if mode == "keyword" or not use_dense:
        for c in ranked:
            c.fused = c.keyword_score or 0.0
    elif fuse == "rrf":
        fusion.rrf(ranked)
    else:
        fusion.convex(ranked)
    if mode == "hybrid" and text is not None:
        _add_evidence(store, ranked, text)
    return Candidates(fusion.order(ranked), more)


def _add_evidence(store: Store, ranked: list[fusion.Candidate], text: str) -> None:
    """The ranking layer (ranking.py): file names, definitions of named symbols, one file not filling the page."""
    from . import fusion, ranking

    if not ranked:
        return
    evidence = ranking.query_evidence(text)
    rows = store.chunk_evidence([c.chunk_id for c in ranked], with_text=bool(evidence.symbols))
    places = [rows.get(c.chunk_id, ("", None)) for c in ranked]
    scores = ranking.adjust([(c.fused, path, body) for c, (path, body) in zip(ranked, places)], evidence)
    first = sorted(range(len(ranked)), key=lambda j: (-fusion.quoted(ranked[j]), -scores[j], ranked[j].chunk_id))
    spread = ranking.spread_scores(first, scores, [path for path, _ in places])
    for c, s in zip(ranked, spread):
        c.score = s


def _cosine(vi: vectors.VectorIndex, query: np.ndarray, chunk_id: int) -> float | None:
    try:
        return float(vi.reconstruct(chunk_id) @ query[0])
    except RuntimeError:  # added after the vector structure was read: it has no vector here yet
        return None


def _with_rows(store: Store, ranked: list[fusion.Candidate], step: int):
    """The candidates, best first, each with its chunk's row (None when removed since the vectors were read),
    read a slice at a time: most queries need only the first few of a hundred or more candidates."""
    for start in range(0, len(ranked), step):
        part = ranked[start : start + step]
        rows = store.chunk_rows([c.chunk_id for c in part])
        for c in part:
            yield c, rows.get(c.chunk_id)


def _collect(store: Store, vi, query, options: QueryOptions) -> list[Hit]:
    """Search deeper until enough hits pass the filters (path glob, score floor, one per file)."""
    from . import lexical

    wanted = max(options.k, options.rerank_depth) if options.rerank else options.k
    filtered = options.path_glob or options.files_only or options.min_score is not None
    depth = max(options.depth, wanted * (4 if filtered else 2))
    parsed = lexical.parse(options.text)
    mode = options.mode
    if mode != "keyword" and (vi is None or vi.size == 0 or query is None):
        return []
    while True:
        found = candidates(store, vi, query, parsed, mode, depth, options.fusion, options.min_score, options.text)
        hits: list[Hit] = []
        seen_files: set[Path] = set()
        for c, row in _with_rows(store, found.ranked, max(2 * wanted, ROWS_AT_ONCE)):
            if row is None:  # removed since the vector structure was read
                continue
            if options.min_score is not None:
                floor = c.keyword_score if mode == "keyword" else c.dense_score
                if floor is None or floor < options.min_score:
                    continue
            if options.path_glob and not _matches_path(row.path, options.path_glob):
                continue
            if options.files_only:
                if row.path in seen_files:
                    continue
                seen_files.add(row.path)
            hits.append(
                Hit(
                    row.path,
                    row.start_line,
                    row.end_line,
                    float(c.fused if c.score is None else c.score),
                    row.text,
                    row.page,
                    row.heading,
                    row.cell,
                    row.id,
                    mode=mode,
                    dense_rank=c.dense_rank,
                    dense_score=c.dense_score,
                    keyword_rank=c.keyword_rank,
                    keyword_score=c.keyword_score,
                    fused_score=float(c.fused) if mode == "hybrid" else None,
                    exact=c.exact,
                )
            )
            if len(hits) == wanted:
                return hits
        if not found.more:
            return hits
        depth *= 4
