"""Scale: exact and approximate search at 100k and 1M chunks, on vectors shaped like real embeddings.

Uniformly random vectors make every approximate index look broken (no point has real neighbours), so the
vectors here are sampled from a mixture fitted to real chunk embeddings: SciFact abstracts (read from
../shared/eval/scifact, never copied into the repo) are chunked and embedded once with the packaged model;
k-means finds topics and each topic gets a Gaussian with its own covariance (shrunk toward the pooled one).
Embeddings and the fitted mixture are cached in a temporary folder (--cache).

For each size it prints, for exact search (what semsearch uses below ann.EXACT_LIMIT) and for the IVF index
semsearch builds above it (ann.build: train on a sample, add, tune nprobe), and for HNSW (the alternative):
build time, one query, a batch of 100 queries, recall@10 against exact (for held-out sampled vectors and for
the real SciFact claims as queries), resident memory, and the time to open the saved file read or mapped.
With --store it also goes through a real index: N chunks written into the SQLite store, the writer's save
(read every stored vector, build, save) and a query process's open.

    python benchmarks/scale_bench.py                       # 100k and 1M, about 30 minutes on 2 cores
    python benchmarks/scale_bench.py --sizes 100000 --store
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SCIFACT = REPO.parent / "shared" / "eval" / "scifact"
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss  # noqa: E402
import psutil  # noqa: E402

from semsearch.storage import ann  # noqa: E402
from semsearch.storage import vectors as vector_files  # noqa: E402  (and with it semsearch's faiss settings)

DIM = 384
TOPICS = 64
SHRINK = 100.0  # pseudo-count of the pooled covariance in each topic's own
SINGLE_QUERIES = 50  # one at a time, for the median
BATCH = 100
OPEN_RUNS = 5  # fresh processes per way of opening, for the median (the machine is shared)


def rss() -> int:
    return psutil.Process().memory_info().rss


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


# -- real embeddings and the mixture fitted to them ----------------------------------------------------------


def real_embeddings(cache: Path, docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk embeddings of the first ``docs`` SciFact abstracts and embeddings of the SciFact claims (cached)."""
    chunks_file, queries_file = cache / f"scifact-chunks-{docs}.npy", cache / "scifact-queries.npy"
    if chunks_file.exists() and queries_file.exists():
        return np.load(chunks_file), np.load(queries_file)
    from semsearch.index.chunk import Chunker
    from semsearch.index.extractors import extract
    from semsearch.model.encoders import TorchEncoder
    from semsearch.model.spec import load_tokenizer, resolve_model

    spec = resolve_model(None)
    chunker = Chunker(load_tokenizer(spec), spec.max_seq_length, prefix=spec.document_prefix)
    texts: list[str] = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n >= docs:
                break
            doc = json.loads(line)
            data = f"{doc.get('title', '')}\n\n{doc['text']}\n".encode()
            texts += [c.embed_text for c in chunker.chunk(extract(Path(f"{doc['_id']}.txt"), data))]
    print(f"embedding {len(texts)} chunks of {docs} SciFact abstracts (once; cached in {cache})", flush=True)
    encoder = TorchEncoder(spec)
    chunks = encoder.encode_documents(texts)
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as f:
        queries = encoder.encode_queries([json.loads(line)["text"] for line in f])
    np.save(chunks_file, chunks)
    np.save(queries_file, queries)
    return chunks, queries


class Mixture:
    """Topics from spherical k-means; within each, a Gaussian with its own covariance shrunk toward the pooled one."""

    def __init__(self, weights: np.ndarray, means: np.ndarray, factors: np.ndarray):
        self.weights, self.means, self.factors = weights, means, factors

    @classmethod
    def fit(cls, x: np.ndarray, topics: int = TOPICS) -> Mixture:
        km = faiss.Kmeans(DIM, topics, niter=30, spherical=True, seed=7)
        km.train(x)
        _, assign = km.index.search(x, 1)
        assign = assign[:, 0]
        means = np.vstack([x[assign == t].mean(axis=0) for t in range(topics)])
        resid = x - means[assign]
        pooled = resid.T @ resid / len(x)
        factors = np.empty((topics, DIM, DIM), np.float32)
        for t in range(topics):
            r = resid[assign == t]
            cov = (r.T @ r + SHRINK * pooled) / (len(r) + SHRINK)
            values, vecs = np.linalg.eigh(cov.astype(np.float64))
            factors[t] = (vecs * np.sqrt(np.clip(values, 0, None))).T  # z @ factor has covariance cov
        weights = np.bincount(assign, minlength=topics) / len(x)
        return cls(weights, means.astype(np.float32), factors)

    @classmethod
    def cached(cls, cache: Path, x: np.ndarray) -> Mixture:
        file = cache / f"mixture-{len(x)}-{TOPICS}.npz"
        if file.exists():
            data = np.load(file)
            return cls(data["weights"], data["means"], data["factors"])
        mixture = cls.fit(x)
        np.savez(file, weights=mixture.weights, means=mixture.means, factors=mixture.factors)
        return mixture

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(n, self.weights)
        out = np.empty((n, DIM), np.float32)
        at = 0
        for t, c in enumerate(counts):
            for start in range(0, c, 100_000):
                m = min(100_000, c - start)
                z = rng.standard_normal((m, DIM), dtype=np.float32)
                out[at : at + m] = self.means[t] + z @ self.factors[t]
                at += m
        out = out[rng.permutation(n)]
        faiss.normalize_L2(out)
        return out


# -- measuring -----------------------------------------------------------------------------------------------


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found.tolist(), exact.tolist())]))


def time_single(search, queries: np.ndarray) -> float:
    times = []
    for q in queries[:SINGLE_QUERIES]:
        started = time.perf_counter()
        search(q[None, :])
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def time_batch(search, queries: np.ndarray, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        search(queries[:BATCH])
        times.append(time.perf_counter() - started)
    return float(np.median(times))


OPEN_SCRIPT = """
import json, sys, time, faiss, numpy as np, psutil
p = psutil.Process(); before = p.memory_info().rss
started = time.perf_counter()
index = faiss.read_index(sys.argv[1], int(sys.argv[2]))
opened = time.perf_counter() - started
after_open = p.memory_info().rss
q = np.load(sys.argv[3])
params = faiss.SearchParametersIVF(nprobe=int(sys.argv[4])) if int(sys.argv[4]) else None
started = time.perf_counter()
index.search(q[:1], 10, params=params) if params else index.search(q[:1], 10)
first = time.perf_counter() - started
print(json.dumps({"open": opened, "rss_open": after_open - before, "first_query": first,
                  "rss_after_query": p.memory_info().rss - before}))
"""


def open_costs(file: Path, queries_file: Path, nprobe: int) -> dict[str, dict]:
    """Open the saved file in a fresh process, read and memory-mapped (page cache warm: it was just written)."""
    out = {}
    for name, flags in (("read", 0), ("mmap", faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)):
        runs = []
        for _ in range(OPEN_RUNS):
            result = subprocess.run(
                [sys.executable, "-c", OPEN_SCRIPT, str(file), str(flags), str(queries_file), str(nprobe)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
        out[name] = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
    return out


def report_open(label: str, costs: dict[str, dict]) -> None:
    for name, c in costs.items():
        print(
            f"  open {label} {name:<4}: {ms(c['open'])}, RSS +{mb(c['rss_open'])}; "
            f"first query {ms(c['first_query'])}, RSS then +{mb(c['rss_after_query'])}"
        )


def bench_size(n: int, mixture: Mixture, real_queries: np.ndarray, args, tmp: Path) -> dict:
    print(f"\n== {n:,} vectors ==", flush=True)
    vectors = mixture.sample(n, seed=n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    held_out = mixture.sample(1000, seed=n + 1)
    query_sets = {"sampled": held_out, "scifact claims": np.ascontiguousarray(real_queries, dtype=np.float32)}
    queries_file = tmp / "queries.npy"
    np.save(queries_file, held_out)
    result: dict = {"n": n}

    # exact
    gc.collect()
    before = rss()
    started = time.perf_counter()
    flat = ann.empty_flat(DIM)
    flat.add_with_ids(vectors, ids)
    built = time.perf_counter() - started
    flat_rss = rss() - before
    default_threshold = 128_000  # faiss 1.15's; semsearch sets 4 queries' worth (semsearch.storage.vectors)
    thresholds = {"semsearch": vector_files.blas_threshold(DIM), "faiss": default_threshold}
    single = {name: [] for name in thresholds}
    batch = {name: [] for name in thresholds}
    for _ in range(5):  # alternate, so that the load of a shared machine falls on both alike
        for name, threshold in thresholds.items():
            faiss.cvar.distance_compute_blas_threshold = threshold
            single[name].append(time_single(lambda q: flat.search(q, 10), held_out[: SINGLE_QUERIES // 5]))
            batch[name].append(time_batch(lambda q: flat.search(q, 10), held_out, runs=1))
    single = {name: float(np.median(times)) for name, times in single.items()}
    batch = {name: float(np.median(times)) for name, times in batch.items()}
    vector_files.use_blas_from(DIM)  # as semsearch runs
    truth = {name: flat.search(q, 10)[1] for name, q in query_sets.items()}
    print(f"exact (IndexIDMap2 over IndexFlatIP): add {ms(built)}, RSS +{mb(flat_rss)}")
    print(
        f"  one query {ms(single['semsearch'])} (median; {ms(single['faiss'])} at faiss's BLAS threshold, "
        f"{default_threshold})"
    )
    print(
        f"  {BATCH} queries in one call: {ms(batch['semsearch'])} with semsearch's BLAS threshold "
        f"({thresholds['semsearch']}: BLAS from 4 queries), {ms(batch['faiss'])} with faiss's"
    )
    file = tmp / "flat.faiss"
    faiss.write_index(flat, str(file))
    costs = open_costs(file, queries_file, 0)
    report_open("exact", costs)
    result["exact"] = {
        "add_s": built,
        "rss": flat_rss,
        "single_s": single["semsearch"],
        "single_s_faiss_threshold": single["faiss"],
        "batch_s": batch["semsearch"],
        "batch_s_faiss_threshold": batch["faiss"],
        "open": costs,
    }
    file.unlink()
    flat = None  # free it before the next build
    gc.collect()

    # IVF, as semsearch builds it
    before = rss()
    started = time.perf_counter()
    ivf, layout = ann.build(ids, vectors, DIM, kind="ivf")
    built = time.perf_counter() - started
    ivf_rss = rss() - before
    params = ann.search_params(layout, 10, n)
    single = time_single(lambda q: ivf.search(q, 10, params=params), held_out)
    batch_ivf = time_batch(lambda q: ivf.search(q, 10, params=params), held_out)
    recalls = {name: recall_at_10(ivf.search(q, 10, params=params)[1], truth[name]) for name, q in query_sets.items()}
    print(
        f"IVF (ann.build): nlist {layout.nlist}, nprobe {layout.nprobe} (tuned: recall {layout.recall} on stored "
        f"vectors); build {built:.1f} s (train + add + tune), RSS +{mb(ivf_rss)}"
    )
    print(f"  one query {ms(single)}, {BATCH} queries {ms(batch_ivf)}")
    print("  recall@10 vs exact: " + ", ".join(f"{name} {r:.3f}" for name, r in recalls.items()))
    sweep = []
    for nprobe in [p for p in ann.NPROBE_LADDER if p <= 2 * layout.nprobe and p < layout.nlist]:
        p = faiss.SearchParametersIVF(nprobe=nprobe)
        r = {name: recall_at_10(ivf.search(q, 10, params=p)[1], truth[name]) for name, q in query_sets.items()}
        t = time_single(lambda q, p=p: ivf.search(q, 10, params=p), held_out)
        sweep.append((nprobe, r, t))
    print(
        "  nprobe sweep: "
        + "; ".join(f"{p}: {r['sampled']:.3f}/{r['scifact claims']:.3f} {ms(t)}" for p, r, t in sweep)
        + "  (recall sampled/claims, one query)"
    )
    file = tmp / "ivf.faiss"
    faiss.write_index(ivf, str(file))
    costs = open_costs(file, queries_file, layout.nprobe)
    report_open("IVF", costs)
    result["ivf"] = {
        "layout": layout.to_json(),
        "build_s": built,
        "rss": ivf_rss,
        "single_s": single,
        "batch_s": batch_ivf,
        "recall": recalls,
        "sweep": sweep,
        "open": costs,
    }
    file.unlink()
    ivf = None
    gc.collect()

    # HNSW, the alternative
    if n <= args.hnsw_max:
        before = rss()
        started = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(DIM, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 40
        hnsw.add(vectors)
        built = time.perf_counter() - started
        hnsw_rss = rss() - before
        print(f"HNSW (M={args.hnsw_m}, efConstruction 40): build {built:.1f} s, RSS +{mb(hnsw_rss)}")
        rows = []
        for ef in (16, 32, 64, 128, 256):
            p = faiss.SearchParametersHNSW(efSearch=ef)
            r = {
                name: recall_at_10(ids[hnsw.search(q, 10, params=p)[1]], truth[name]) for name, q in query_sets.items()
            }
            t = time_single(lambda q, p=p: hnsw.search(q, 10, params=p), held_out)
            b = time_batch(lambda q, p=p: hnsw.search(q, 10, params=p), held_out)
            rows.append((ef, r, t, b))
            print(
                f"  efSearch {ef}: recall {r['sampled']:.3f} sampled / {r['scifact claims']:.3f} claims; "
                f"one query {ms(t)}, {BATCH} queries {ms(b)}"
            )
        result["hnsw"] = {"build_s": built, "rss": hnsw_rss, "rows": rows}
        del hnsw
        gc.collect()

    if args.store:
        result["store"] = bench_store(vectors, tmp)
    return result


def bench_store(vectors: np.ndarray, tmp: Path) -> dict:
    """Through a real index: chunks written into the store, the writer's save, a query process's open."""

    from semsearch.documents import Chunk
    from semsearch.model.spec import resolve_model
    from semsearch.storage.layout import IndexPaths
    from semsearch.storage.store import Store, text_hash

    n = len(vectors)
    root = tmp / f"index-{n}"
    store = Store.create(IndexPaths(root), resolve_model(None), DIM)
    started = time.perf_counter()
    per_file = 100
    for start in range(0, n, 50_000):
        texts = [f"chunk {i}" for i in range(start, min(n, start + 50_000))]
        store.put_embeddings([text_hash(t) for t in texts], vectors[start : start + len(texts)])
        with store.write() as gen:
            for at in range(0, len(texts), per_file):
                chunks = [Chunk(t, 1, 1) for t in texts[at : at + per_file]]
                store.replace_file(gen, Path(f"/bench/{start + at}.txt"), 1, 1, "0" * 64, chunks)
    written = time.perf_counter() - started
    started = time.perf_counter()
    with store.snapshot():
        store.vectors_since(0)
    read = time.perf_counter() - started
    started = time.perf_counter()
    vi = vector_files.save_and_prune(store)
    saved = time.perf_counter() - started
    kind = vi.layout.kind
    del vi
    gc.collect()
    opens = {}
    for mmap in (False, True):
        before = rss()
        started = time.perf_counter()
        loaded = vector_files.load(store, mmap=mmap)
        opens["mmap" if mmap else "read"] = (time.perf_counter() - started, rss() - before, loaded.mapped)
        del loaded
        gc.collect()
    store.close()
    print(
        f"through the store: {n:,} chunks written in {written:.1f} s; stored vectors read in {read:.1f} s; "
        f"writer's save ({kind}: read, build, write) {saved:.1f} s"
    )
    for name, (t, r, mapped) in opens.items():
        print(f"  vectors.load {name}: {ms(t)}, RSS +{mb(r)} (mapped: {mapped})")
    return {"write_s": written, "read_s": read, "save_s": saved, "kind": kind, "load": opens}


def realism(real: np.ndarray, mixture: Mixture) -> None:
    """The same measures on the real embeddings, on an equal sample of the mixture, and on uniform vectors."""
    n = len(real)
    rng = np.random.default_rng(3)
    uniform = rng.standard_normal((n, DIM)).astype(np.float32)
    faiss.normalize_L2(uniform)
    print(f"\n== realism: {n:,} real SciFact chunk embeddings vs as many sampled and uniform vectors ==")
    nlist = ann.nlist_for(n)
    for name, x in (("real", real), ("mixture", mixture.sample(n, seed=11)), ("uniform", uniform)):
        x = np.ascontiguousarray(x, dtype=np.float32)
        held = rng.choice(n, 300, replace=False)
        mask = np.ones(n, bool)
        mask[held] = False
        base, queries = x[mask], x[held]
        scores, exact = faiss.knn(queries, base, 10, metric=faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.spherical = True
        ivf.train(base)
        ivf.add(base)
        hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.add(base)
        ivf_r = [
            recall_at_10(ivf.search(queries, 10, params=faiss.SearchParametersIVF(nprobe=p))[1], exact)
            for p in (1, 4, 16)
        ]
        hnsw_r = recall_at_10(hnsw.search(queries, 10, params=faiss.SearchParametersHNSW(efSearch=16))[1], exact)
        print(
            f"  {name:<8} cosine to 1st/10th neighbour {scores[:, 0].mean():.3f}/{scores[:, 9].mean():.3f}; "
            f"IVF nlist {nlist} recall@10 at nprobe 1/4/16: {ivf_r[0]:.3f}/{ivf_r[1]:.3f}/{ivf_r[2]:.3f}; "
            f"HNSW M=32 efSearch 16: {hnsw_r:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--docs", type=int, default=5183, help="SciFact abstracts to embed for the fit (all: 5183)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "semsearch-scale-bench")
    parser.add_argument("--hnsw-max", type=int, default=1_000_000, help="skip HNSW above this size")
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--store", action="store_true", help="also go through a real store (writes N chunks)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, {os.cpu_count()} CPUs")
    real, real_queries = real_embeddings(args.cache, args.docs)
    mixture = Mixture.cached(args.cache, real)
    realism(real, mixture)
    results = []
    with tempfile.TemporaryDirectory(prefix="semsearch-scale-") as tmp:
        for n in args.sizes:
            results.append(bench_size(n, mixture, real_queries, args, Path(tmp)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
