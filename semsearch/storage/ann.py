"""Approximate search for large indexes: when to leave exact search, how to build and tune an IVF index."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import faiss
import numpy as np

# Past this many vectors the writer replaces exact search by an IVF index (see docs/performance.md):
# exact search of one query costs about 40 ms at 100k vectors and grows linearly; IVF stays at a few ms.
EXACT_LIMIT = 100_000
BACK_TO_EXACT = EXACT_LIMIT // 2  # below this an IVF index goes back to exact search (no flapping at the limit)
REGROW = 2.0  # retrain when the count has doubled or halved since training: the lists were sized for it
TRAIN_PER_LIST = 48  # training sample per list (faiss asks for at least 39)
TRAIN_ITERATIONS = 12
# nprobe is tuned on the index's own vectors as queries: the smallest reaching TARGET_RECALL, times QUERY_MARGIN.
# Real queries sit farther from the stored vectors than these do from each other and need more lists: measured
# with the SciFact claims as queries, about twice as many for the same recall (docs/performance.md).
TARGET_RECALL = 0.99
QUERY_MARGIN = 2
CALIBRATION_QUERIES = 300
CALIBRATION_DEPTH = 128  # neighbours looked at per calibration query: room for copies among the 10 distinct
SAME_VECTOR = 1 - 1e-4  # a cosine this high to a calibration query: the query itself, or a copy of its text
SAME_SCORE = 1e-5  # scores this close: copies of one vector (or a tie)
NPROBE_LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


@dataclass(frozen=True)
class Layout:
    """What kind of structure a vector file holds, recorded in ``vectors.json`` beside it."""

    kind: str = "flat"  # "flat" (exact) or "ivf"
    nlist: int = 0  # ivf: number of lists
    nprobe: int = 0  # ivf: lists searched per query, tuned at build time for TARGET_RECALL
    trained_for: int = 0  # ivf: how many vectors it was trained for
    recall: float | None = None  # ivf: recall@10 measured at build time with nprobe

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v or k == "kind"}

    @classmethod
    def from_json(cls, meta: dict) -> Layout:
        kind = meta.get("kind", "flat")  # files written before approximate search existed are flat
        if kind == "flat":
            return FLAT
        if kind != "ivf":
            raise ValueError(f"unknown kind of vector file '{kind}'")
        return cls(kind, int(meta["nlist"]), int(meta["nprobe"]), int(meta["trained_for"]), meta.get("recall"))


FLAT = Layout()


def needs_rebuild(count: int, layout: Layout) -> bool:
    """Whether the writer should rebuild the structure for an index of ``count`` vectors."""
    if layout.kind == "flat":
        return count >= EXACT_LIMIT
    if count < BACK_TO_EXACT:
        return True
    return not (layout.trained_for / REGROW <= count <= layout.trained_for * REGROW)


def nlist_for(count: int) -> int:
    """About 4·√n lists, a power of two (1024 at 100k vectors, 4096 at 1M), each trained on TRAIN_PER_LIST vectors."""
    wanted = min(4 * math.sqrt(count), count / TRAIN_PER_LIST)
    return 1 << max(3, round(math.log2(max(wanted, 1))))


def empty_flat(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def build(ids: np.ndarray, vectors: np.ndarray, dim: int, kind: str | None = None) -> tuple[faiss.Index, Layout]:
    """The structure for these vectors: exact below EXACT_LIMIT, else IVF (or ``kind`` when given)."""
    kind = kind or ("ivf" if len(ids) >= EXACT_LIMIT else "flat")
    if kind == "flat":
        index = empty_flat(dim)
        if len(ids):
            index.add_with_ids(vectors, ids)
        return index, FLAT
    return build_ivf(ids, vectors, dim, nlist_for(len(ids)))


def build_ivf(ids: np.ndarray, vectors: np.ndarray, dim: int, nlist: int) -> tuple[faiss.Index, Layout]:
    """Train lists on a sample (spherical k-means), add every vector, then tune nprobe on the vectors themselves."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(0)  # the same vectors always give the same index
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.spherical = True
    index.cp.niter = TRAIN_ITERATIONS
    index.cp.max_points_per_centroid = TRAIN_PER_LIST
    sample = min(len(vectors), nlist * TRAIN_PER_LIST)
    chosen = np.sort(rng.choice(len(vectors), sample, replace=False))
    index.train(vectors[chosen])
    index.add_with_ids(vectors, ids)
    nprobe, recall = tune_nprobe(index, ids, vectors, rng)
    return index, Layout("ivf", nlist, nprobe, len(ids), round(recall, 4))


def tune_nprobe(index: faiss.IndexIVF, ids: np.ndarray, vectors: np.ndarray, rng) -> tuple[int, float]:
    """QUERY_MARGIN times the smallest nprobe whose recall@10 reaches TARGET_RECALL on a sample of stored vectors
    used as queries, and the recall that nprobe gives on them.

    Recall is counted over distinct vectors: a sampled vector's own entry and its exact copies (the same text
    in several files) are left out, and copies of a neighbour count once. Copies sit in one list together, so
    an index of copied folders would otherwise look easy and get too few lists searched for real queries,
    which match no stored vector exactly.
    """
    n = min(CALIBRATION_QUERIES, len(vectors))
    chosen = rng.choice(len(vectors), n, replace=False)
    queries = vectors[chosen]
    depth = min(len(vectors), CALIBRATION_DEPTH)
    exact_scores, exact_pos = faiss.knn(queries, vectors, depth, metric=faiss.METRIC_INNER_PRODUCT)
    exact_ids = np.where(exact_pos >= 0, ids[np.maximum(exact_pos, 0)], -1)
    truth = [_top10_distinct(exact_ids[i], exact_scores[i]) for i in range(n)]

    def recall_at(nprobe: int) -> float:
        scores, found = index.search(queries, depth, params=faiss.SearchParametersIVF(nprobe=nprobe))
        return _recall(truth, [_top10_distinct(found[i], scores[i]) for i in range(n)])

    for nprobe in [p for p in NPROBE_LADDER if p < index.nlist] + [index.nlist]:
        if recall_at(nprobe) >= TARGET_RECALL:
            break
    nprobe = min(index.nlist, nprobe * QUERY_MARGIN)
    return nprobe, recall_at(nprobe)


def _top10_distinct(found: np.ndarray, scores: np.ndarray) -> list[float]:
    """The scores of the first 10 distinct vectors found, leaving out the query itself and its copies (cosine 1
    up to rounding). Copies of one vector score the same against any query: they count once."""
    out: list[float] = []
    for i, s in zip(found.tolist(), scores.tolist()):
        if i < 0 or s >= SAME_VECTOR or (out and out[-1] - s <= SAME_SCORE):
            continue
        out.append(s)
        if len(out) == 10:
            break
    return out


def _recall(truth: list[list[float]], approx: list[list[float]]) -> float:
    """Share of the exact 10 nearest distinct vectors found. IVF computes exact scores for the vectors it
    searches, so a found vector scoring at least the exact 10th's score is one of them (or ties with it)."""
    hits = total = 0
    for exact, found in zip(truth, approx):
        if not exact:
            continue
        hits += min(len(exact), sum(1 for s in found if s >= exact[-1] - SAME_SCORE))
        total += len(exact)
    return hits / total if total else 1.0


def search_params(layout: Layout, k: int, size: int) -> faiss.SearchParameters | None:
    """nprobe as tuned, widened when many hits are asked for (filters search deeper), all lists at k ≥ size."""
    if layout.kind != "ivf":
        return None
    if k >= size:
        return faiss.SearchParametersIVF(nprobe=layout.nlist)
    per_list = max(1.0, size / layout.nlist)
    wide = math.ceil(4 * k / per_list)  # lists enough to hold four times the hits asked for
    return faiss.SearchParametersIVF(nprobe=min(layout.nlist, max(layout.nprobe, wide)))


def allow_lookup(index: faiss.Index) -> None:
    """Let an IVF index give back vectors by id: a map from id to place, built when first needed.

    It is not kept in saved files (opening one would then rebuild it, about 0.1 s per million vectors),
    and building it reads the lists without changing them, so a memory-mapped index allows it too.
    """
    if isinstance(index, faiss.IndexIVF) and index.direct_map.type == faiss.DirectMap.NoMap:
        index.set_direct_map_type(faiss.DirectMap.Hashtable)


def drop_lookup(index: faiss.Index) -> None:
    """Forget the map ``allow_lookup`` built, before the index is saved."""
    if isinstance(index, faiss.IndexIVF) and index.direct_map.type != faiss.DirectMap.NoMap:
        index.set_direct_map_type(faiss.DirectMap.NoMap)


def ids_of(index: faiss.Index) -> np.ndarray:
    """The chunk ids an index holds."""
    if isinstance(index, faiss.IndexIDMap2):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    parts = []
    for no in range(ivf.nlist):
        size = lists.list_size(no)
        if size:
            ptr = lists.get_ids(no)
            parts.append(faiss.rev_swig_ptr(ptr, size).astype(np.int64))
            lists.release_ids(no, ptr)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)
