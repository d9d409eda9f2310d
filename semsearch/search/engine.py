"""Answer queries: gather candidates by meaning (FAISS) and by keyword (FTS5), fuse them, and return the hits."""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.config import MODES
from semsearch.errors import UsageError
from semsearch.search.hits import MAX_HIT_CHARS, Hit, QueryOptions, display_path
from semsearch.storage.faults import reading_index
from semsearch.storage.layout import IndexPaths

if TYPE_CHECKING:  # loaded when a search runs
    import numpy as np

    from semsearch.model.interface import Encoder
    from semsearch.search import fusion
    from semsearch.storage import keywords as lexical
    from semsearch.storage.interface import SearchIndex
from semsearch.storage.interface import IndexStore

log = logging.getLogger(__name__)

ROWS_AT_ONCE = 32  # candidates whose chunk rows are read together, at least (twice k when k is larger)


def load_query_encoder(spec, store: IndexStore):
    """The encoder of this index's queries (the ONNX export of its model, as its vectors were made)."""
    from semsearch.model.encoders import load_query_encoder

    kind = store.meta("vector_kind", "fp32")
    if getattr(store, "kind", "") == "postgresql":  # a machine that only queries a shared index: export once here
        from semsearch.errors import ExportFailed, OnnxUnavailable
        from semsearch.model.encoders import export_for_index

        try:
            export_for_index(spec, store.paths, kind)
        except (ExportFailed, OnnxUnavailable):
            pass  # load_query_encoder falls back to the full model and says so
    return load_query_encoder(spec, store.paths, kind)


def search(index_dir: Path, options: QueryOptions, encoder: Encoder | None = None) -> list[Hit]:
    return search_many(index_dir, [options], encoder)[0]


def search_many(index_dir: Path, queries: list[QueryOptions], encoder: Encoder | None = None) -> list[list[Hit]]:
    """Run several queries against one index, loading the model (and a reranker) once; ``encoder`` encodes
    the queries instead of the index's own model when given (it must make the same kind of vectors)."""
    for options in queries:
        if options.mode not in MODES:
            raise UsageError(f"Unknown search mode '{options.mode}'; use one of: {', '.join(MODES)}.")
    paths = IndexPaths(index_dir)
    with reading_index(paths):
        return _search_many(paths, queries, encoder)


def query_model(store: IndexStore):
    """The model as this index's queries use it: with the prefixes and the ``--dim`` its vectors were made with."""
    from semsearch.model.spec import resolve_model

    return replace(resolve_model(store.model_ref, **store.recorded_prefixes()), truncate_dim=store.truncate_dim)


def _search_many(paths: IndexPaths, queries: list[QueryOptions], given: Encoder | None) -> list[list[Hit]]:
    from semsearch.storage.access import open_for_search, open_store

    store = open_store(paths)
    try:
        encoder = None
        by_meaning = any(o.mode != "keyword" for o in queries)
        if by_meaning:
            spec = query_model(store)
            store.check_model(spec)
        index = open_for_search(store, with_vectors=by_meaning)
        if index.vector_count:
            encoder = given or load_query_encoder(spec, store)
        return [search_with(index, encoder, options) for options in queries]
    finally:
        store.close()


def search_with(index: SearchIndex, encoder: Encoder | None, options: QueryOptions) -> list[Hit]:
    """One query over an open index and the encoder of its queries (None when only keywords are searched).

    In-process queries and the watcher's query server both come here, so they answer alike.
    """
    # One query at a time: a query's vector (and so its hits) never depends on the others in the batch.
    query = encoder.encode_queries([options.text]) if encoder and options.mode != "keyword" else None
    with index.snapshot():
        hits = _collect(index, query, options)
    if options.rerank and hits:
        from semsearch.model.rerank import rerank

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
    rows: dict = field(default_factory=dict)  # chunk rows already read (by the ranking layer), by chunk id


def for_index(index: SearchIndex, parsed: lexical.ParsedQuery) -> lexical.ParsedQuery:
    """The query as this index's keyword search reads it: a word said twice weighs twice unless the index holds
    it in ``COMMON_SHARE`` of its passages or more (see ``keywords.COMMON_SHARE``). Once per query, inside the
    snapshot its candidates are read in."""
    from semsearch.storage import keywords as lexical

    if not parsed.times:
        return parsed
    return parsed.once(index.common_terms(list(parsed.times), lexical.COMMON_SHARE))


def candidates(
    index: SearchIndex,
    query: np.ndarray | None,
    parsed: lexical.ParsedQuery,
    mode: str,
    depth: int,
    fuse: str = "convex",
    min_score: float | None = None,
    text: str | None = None,
) -> Candidates:
    """The chunks worth showing for one query, best first, each with its dense, keyword and fused scores."""
    from semsearch.search import fusion

    found: dict[int, fusion.Candidate] = {}
    more = False
    use_dense = mode != "keyword" and query is not None and index.vector_count > 0
    use_keyword = mode != "semantic"
    if use_dense:
        dense = index.nearest(query, depth)
        for rank, (cid, score) in enumerate(dense, 1):
            found[cid] = fusion.Candidate(cid, dense_rank=rank, dense_score=score)
        # every chunk outside the list scores below its last one, so deeper only helps above the floor
        more = len(dense) >= depth and depth < index.vector_count and (min_score is None or dense[-1][1] >= min_score)
    if use_keyword:
        # the dense candidates' BM25 scores come from the same pass over the matches as the keyword list
        asked = list(found)
        keyword, known = index.keyword_search(parsed.match, depth, asked)
        for rank, (cid, score) in enumerate(keyword, 1):
            c = found.setdefault(cid, fusion.Candidate(cid))
            c.keyword_rank, c.keyword_score = rank, score
        if mode == "keyword":
            more = len(keyword) >= depth and (min_score is None or keyword[-1][1] >= min_score)
        elif len(keyword) >= depth and (min_score is None or not use_dense):
            more = True  # (with a cosine floor, every chunk that passes it is in the dense list already)
        for expression in parsed.exact:  # exact matches compete even when BM25 ranked them low
            for cid in index.keyword_matching(expression, limit=depth):
                found.setdefault(cid, fusion.Candidate(cid))
        ids_all = list(found)
        for expression, label in zip(parsed.exact, parsed.exact_labels, strict=True):
            for cid in index.keyword_matching(expression, ids=ids_all):
                found[cid].exact += (label,)
        asked_set = set(asked)  # (a dense candidate missing from ``known`` matches no query word: 0)
        missing = [cid for cid, c in found.items() if c.keyword_score is None and cid not in asked_set]
        if missing:  # exact matches outside both lists
            known.update(index.keyword_scores(parsed.match, missing))
        for c in found.values():
            if c.keyword_score is None:
                c.keyword_score = known.get(c.chunk_id, 0.0)
    if use_dense and use_keyword:
        outside = [cid for cid, c in found.items() if c.dense_score is None]
        for cid, score in index.cosines(query, outside).items():  # one read for all of them
            found[cid].dense_score = score
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
    rows = _add_evidence(index, ranked, text) if mode == "hybrid" and text is not None else {}
    return Candidates(fusion.order(ranked), more, rows)


def _add_evidence(index: SearchIndex, ranked: list[fusion.Candidate], text: str) -> dict:
    """The ranking layer (search/ranking.py): file names, definitions of named symbols, code before its
    documentation, one file not filling the page. Returns the candidates' chunk rows (read once, for both)."""
    from semsearch.search import fusion, ranking

    if not ranked:
        return {}
    evidence = ranking.query_evidence(text)
    rows = index.chunk_rows([c.chunk_id for c in ranked])
    places = []
    for c in ranked:
        row = rows.get(c.chunk_id)
        places.append((os.fsdecode(row.path), row.text) if row is not None else ("", None))
    scores = ranking.adjust(
        [(c.fused, path, body if evidence.symbols else None) for c, (path, body) in zip(ranked, places)], evidence
    )
    first = sorted(range(len(ranked)), key=lambda j: (-fusion.quoted(ranked[j]), -scores[j], ranked[j].chunk_id))
    spread = ranking.spread_scores(first, scores, [path for path, _ in places])
    for c, s in zip(ranked, spread):
        c.score = s
    return rows


def _with_rows(index: SearchIndex, ranked: list[fusion.Candidate], step: int, known: dict | None = None):
    """The candidates, best first, each with its chunk's row (None when removed since the vectors were read),
    read a slice at a time: most queries need only the first few of a hundred or more candidates."""
    for start in range(0, len(ranked), step):
        part = ranked[start : start + step]
        rows = known if known else index.chunk_rows([c.chunk_id for c in part])
        for c in part:
            yield c, rows.get(c.chunk_id)


def relevance_floor(options: QueryOptions) -> float | None:
    """The least relevance a hit needs to be shown: ``--min-score``, else the calibrated cut-off, unless ``--all``."""
    from semsearch.search import calibration

    if options.min_score is not None:
        return options.min_score
    return None if options.show_all else calibration.load().threshold


def evidence(index: SearchIndex, mode: str, found: list[fusion.Candidate], parsed: lexical.ParsedQuery, every=False):
    """What the calibration reads of each candidate (search/calibration.py): its raw signals, what all candidates
    say (the best cosine and BM25, the mean cosine) and the share of the query's words the index holds at all
    (looked up only when the mode's calibration reads it, or ``every``)."""
    from semsearch.search import calibration

    dense = [c.dense_score for c in found if c.dense_score is not None]
    top_dense = max(dense, default=None)
    mean_dense = sum(dense) / len(dense) if dense else None
    top_keyword = max((c.keyword_score for c in found if c.keyword_score is not None), default=None)
    terms = parsed.terms  # (each once; ``parsed.times`` says how often the query gives one)
    coverage = None
    if terms and found and (every or calibration.load().uses(mode, "coverage")):
        coverage = len(index.present_terms(terms)) / len(terms)

    def of(place: int, c: fusion.Candidate) -> calibration.Evidence:
        return calibration.Evidence(
            rank=place,
            dense=c.dense_score,
            keyword=c.keyword_score,
            fused=c.fused if c.score is None else c.score,  # the fused score, with the ranking layer's evidence
            exact=len(c.exact),
            top_dense=top_dense,
            top_keyword=top_keyword,
            mean_dense=mean_dense,
            terms=len(parsed.terms),
            coverage=coverage,
        )

    return of


GATE_DEPTH = 10  # the hits whose relevance can overrule the gate (calibration.Calibration.answers)


def _relevance(index: SearchIndex, mode: str, found: list[fusion.Candidate], parsed: lexical.ParsedQuery):
    """Each candidate's relevance (search/calibration.py), and whether the query is answered at all (the gate)."""
    from semsearch.search import calibration

    model = calibration.load()
    of = evidence(index, mode, found, parsed)

    def relevance(place: int, c: fusion.Candidate) -> float:
        return model.relevance(mode, of(place, c))

    if not found:
        return relevance, False
    best = max(relevance(place, c) for place, c in enumerate(found[:GATE_DEPTH], 1))
    return relevance, model.answers(mode, of(1, found[0]), best)


def _collect(index: SearchIndex, query, options: QueryOptions) -> list[Hit]:
    """Search deeper until enough hits pass the filters (path glob, relevance floor, one per file)."""
    from semsearch.storage import keywords as lexical

    wanted = max(options.k, options.rerank_depth) if options.rerank else options.k
    floor = relevance_floor(options)
    gated = options.min_score is None and not options.show_all  # the default: "no match" when the gate says so
    filtered = options.path_glob or options.files_only or floor is not None
    depth = max(options.depth, wanted * (4 if filtered else 2))
    parsed = for_index(index, lexical.parse(options.text))
    mode = options.mode
    if mode != "keyword" and (index.vector_count == 0 or query is None):
        return []
    while True:
        # (no cosine floor: --min-score is a floor on the relevance, applied below)
        found = candidates(index, query, parsed, mode, depth, options.fusion, None, options.text)
        relevance, answered = _relevance(index, mode, found.ranked, parsed)
        if gated and not answered:
            return []
        places = {c.chunk_id: place for place, c in enumerate(found.ranked, 1)}
        hits: list[Hit] = []
        seen_files: set[Path] = set()
        for c, row in _with_rows(index, found.ranked, max(2 * wanted, ROWS_AT_ONCE), found.rows):
            if row is None:  # removed since the vector structure was read
                continue
            score = relevance(places[c.chunk_id], c)
            if floor is not None and score < floor:
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
                    score,
                    row.text[:MAX_HIT_CHARS],
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
        # deeper candidates rank lower: once the last one falls below the floor, deeper ones would too
        last = found.ranked[-1] if found.ranked else None
        if not found.more or (floor is not None and last is not None and relevance(len(found.ranked), last) < floor):
            return hits
        depth *= 4
