"""The index in a PostgreSQL database with pgvector: the shared store for teams (``--store postgresql://...``).

One schema per index name holds its tables, so several indexes share one database:

- ``meta``: model, dimensions, format version (as the embedded store's ``meta``);
- ``roots``: indexed folders, each with its origin (the machine's host name, or the ``--root-name`` given);
- ``files``: one row per (origin, path), with size, mtime and sha256; ``chunks``: their line ranges, text,
  vector (``vector(dim)`` with an HNSW index, inner product on normalized vectors) and a ``tsvector`` of
  their terms (GIN) for exact phrases; ``postings``: (term, chunk, frequency, chunk length), from which
  keyword ranking computes FTS5's BM25 in SQL; ``stats``: chunk and term counts, one delta row per write;
- ``embeddings``: vectors by the hash of their text, so unchanged text is never embedded twice.

A file's chunks, vectors and postings change in one transaction, so queries (each in one REPEATABLE READ
snapshot) never see half a file. Writers lock the rows of the files they change (in path order, so two
writers never deadlock) and add stats as delta rows, so several writers on several machines work at once; a
writer killed at any point leaves only uncommitted work, which PostgreSQL discards.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from semsearch.documents import Chunk
from semsearch.errors import NoIndex, SemsearchError, UsageError
from semsearch.model.spec import ModelSpec
from semsearch.storage import meta as index_meta
from semsearch.storage import pgterms
from semsearch.storage.interface import ChunkRow, FileRow, FileWrite, text_hash
from semsearch.storage.keywords import PAD
from semsearch.storage.layout import IndexPaths
from semsearch.storespec import PgSpec, mask

if TYPE_CHECKING:
    import numpy as np

# 1: the first schema; 2: postings without a foreign key to chunks (a chunk's postings are deleted with it
# explicitly; no per-row check when postings are written); 3: the parts of camelCase identifiers among a chunk's
# terms (``keywords.columns``); 4: the postings' key holds each posting's frequency and chunk length (a word's
# list read from the key alone), and ``terms`` keeps each word's document frequency (BM25's idf without counting
# a common word's postings). One migration per version in _MIGRATIONS, below.
FORMAT_VERSION = 4
# The HNSW graph's build parameters, for indexes created (or rebuilt with ``index --rebuild``) from now on; an
# existing graph keeps those it was built with. Measured at a million synthetic passages (200 queries,
# docs/shared-index.md): with ef_construction 64 (the default until 2026-12-02) recall@10 stopped at 0.944
# however large ef_search, and 48 of the 113 items missed at ef_search 1,000 could not be found even from their
# own vector (the graph lost them, not the search); with 128, 0.999 from ef_search 200 on. m 32 with
# ef_construction 64 reached only 0.978 and doubled a write's server time; 128 cost about the same as 64.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
PGVECTOR_DEFAULT_M, PGVECTOR_DEFAULT_EF_CONSTRUCTION = 16, 64  # what a graph built without options has
# Candidates the HNSW search keeps (hnsw.ef_search), chosen from the index's size: EF_SEARCH up to
# EF_SEARCH_FROM passages, growing with the logarithm of the size to EF_SEARCH_AT_MILLION at a million (and on
# past it: 400 at ten million), never under the depth asked, never over pgvector's limit of 1,000. Measured
# (recall@10 against exact search, docs/shared-index.md): at 200, 0.990 or more on real embeddings up to 29k
# passages and 1.000 on synthetic ones at 100k; at a million synthetic passages (ef_construction 128, two builds)
# 0.928 / 0.944 at 100, 0.999 / 0.990 at 200, 0.999 / 1.000 at 300: 300 keeps a margin from build to build.
EF_SEARCH = 200
EF_SEARCH_FROM = 100_000
EF_SEARCH_AT_MILLION = 300
EF_SEARCH_LIMIT = 1000  # pgvector's own maximum of hnsw.ef_search


def ef_search_for(total: int, depth: int) -> int:
    """The ``hnsw.ef_search`` a search of ``depth`` results sets on an index of ``total`` passages."""
    ef = float(EF_SEARCH)
    if total > EF_SEARCH_FROM:
        ef += (EF_SEARCH_AT_MILLION - EF_SEARCH) * math.log10(total / EF_SEARCH_FROM)
    return min(EF_SEARCH_LIMIT, max(math.ceil(ef), depth))


K1, B = 1.2, 0.75  # BM25 as FTS5's bm25()
# Keyword search reads in full the postings of a query's rare words, and of any word with at most this many
# (cheap to read); a common word's list is read only when its bound could change the best chunks (MaxScore,
# ``PgStore.keyword_search_and_score``). PRUNE False: every list read (exhaustive; benchmarks compare).
CHEAP_POSTINGS = 10_000
PRUNE = True
# A look-up by key costs about as much as reading this many postings of a list (measured at a million passages:
# 5 us against 1 us); the chunks to look up may cost at least MIN_LOOKUPS before a list is read instead.
LOOKUP_COST = 5
MIN_LOOKUPS = 5_000
BM25_WORK_MEM = "64MB"  # a query's posting lists aggregated in memory, not in temporary files
# A lost connection, a deadlock or a serialization failure between writers: the work is run again this many
# times, after a pause that doubles from RETRY_PAUSE seconds (0.5 + 1 + 2 + 4 + 8: about 15 s in all).
RETRIES = 5
RETRY_PAUSE = 0.5

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreUnavailable(SemsearchError):
    """The PostgreSQL server cannot be reached, refused us, or the database is not ready for semsearch."""


def _driver():
    try:
        import psycopg
    except ImportError:
        raise StoreUnavailable(
            "A PostgreSQL store needs the psycopg driver; install it with: pip install 'semsearch[postgres]'."
        ) from None
    return psycopg


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return mask(text[0].strip() if text else type(e).__name__)


def origin_name() -> str:
    """This machine, as the roots it indexes are recorded (``--root-name`` gives another)."""
    return socket.gethostname() or "localhost"


def connect(spec: PgSpec):
    psycopg = _driver()
    try:
        psycopg.conninfo.conninfo_to_dict(spec.conninfo)
        # prepare_threshold=None: no server-side prepared statements, so a transaction pooler (PgBouncer) works
        conn = psycopg.connect(
            spec.conninfo, autocommit=True, connect_timeout=10, application_name="semsearch", prepare_threshold=None
        )
    except psycopg.ProgrammingError as e:  # libpq could not parse the URL
        raise UsageError(f"The store {spec.shown} is not a valid PostgreSQL URL ({_first_line(e)}).") from None
    except psycopg.OperationalError as e:
        raise StoreUnavailable(
            f"Cannot connect to the PostgreSQL server of {spec.shown} ({_first_line(e)}); check the URL, that the "
            "server is running and your password (~/.pgpass, PGPASSWORD or a service file)."
        ) from None
    return conn


def translate(paths: IndexPaths, e: BaseException, writing: bool) -> SemsearchError:
    """A database error met while using a PostgreSQL index, as one sentence (password masked)."""
    from semsearch.storespec import describe

    psycopg = _driver()
    where = describe(paths.root)
    reason = _first_line(e)
    if isinstance(e, psycopg.errors.InsufficientPrivilege):
        return StoreUnavailable(
            f"Permission denied on the {where} ({reason}); "
            + ("a role that writes needs INSERT, UPDATE and DELETE on its tables (see docs/shared-index.md)."
               if writing else "ask its owner for USAGE on the schema and SELECT on its tables.")
        )  # fmt: skip
    if isinstance(e, psycopg.OperationalError | psycopg.InterfaceError):
        kept = " Everything committed before it is kept; run the same command again to finish." if writing else ""
        return StoreUnavailable(f"Lost the connection to the {where} ({reason}).{kept}")
    if writing:
        return StoreUnavailable(
            f"Could not write the {where} ({reason}); what was committed before is kept: run the same command again."
        )
    return StoreUnavailable(f"Could not read the {where} ({reason}).")


def _vector_text(v) -> str:
    return "[" + ",".join(map(repr, v.tolist())) + "]"


_COPY_SPECIAL = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A value in COPY's text format (terms hardly ever hold these: FTS5 cuts at them)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_SPECIAL)
    return value


class _Vector:
    """A vector to send in pgvector's binary form (``%b``), much cheaper than its text."""

    __slots__ = ("array",)

    def __init__(self, array) -> None:
        self.array = array


def _register_vector(conn) -> None:
    """Send ``_Vector`` values in binary: dim (int16), unused (int16), then big-endian float4s."""
    import numpy as np
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    oid = int(conn.execute("SELECT 'vector'::regtype::oid").fetchone()[0])

    class VectorDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: _Vector) -> bytes:
            a = np.asarray(obj.array, dtype=">f4")
            return len(a).to_bytes(2, "big") + b"\0\0" + a.tobytes()

    VectorDumper.oid = oid
    conn.adapters.register_dumper(_Vector, VectorDumper)


def _vector_bytes(raw: bytes):
    """A pgvector value in binary form: dim (int16), unused (int16), then big-endian float4s."""
    import numpy as np

    dim = int.from_bytes(raw[:2], "big")
    return np.frombuffer(raw, dtype=">f4", count=dim, offset=4).astype(np.float32)


def _schema_sql(s: str, dim: int) -> list[str]:
    return [
        f"CREATE SCHEMA {s}",
        f"CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL)",
        f"CREATE SEQUENCE {s}.generation",
        f"""CREATE TABLE {s}.roots (
            origin text NOT NULL, path bytea NOT NULL, added_at double precision NOT NULL,
            PRIMARY KEY (origin, path))""",
        f"""CREATE TABLE {s}.files (
            id bigserial PRIMARY KEY, origin text NOT NULL, path bytea NOT NULL, size bigint NOT NULL,
            mtime_ns bigint NOT NULL, sha256 text NOT NULL, indexed_at double precision NOT NULL, error text,
            UNIQUE (origin, path))""",
        f"""CREATE TABLE {s}.chunks (
            id bigserial PRIMARY KEY, file_id bigint NOT NULL REFERENCES {s}.files(id) ON DELETE CASCADE,
            ord integer NOT NULL, text text NOT NULL, start_line integer NOT NULL, end_line integer NOT NULL,
            page integer, heading text NOT NULL DEFAULT '', cell integer, text_hash text NOT NULL,
            gen bigint NOT NULL, ntokens integer NOT NULL, tsv tsvector NOT NULL, vector vector({dim}) NOT NULL)""",
        f"CREATE INDEX chunks_file ON {s}.chunks (file_id)",
        f"CREATE INDEX chunks_hash ON {s}.chunks (text_hash)",
        f"CREATE INDEX chunks_tsv ON {s}.chunks USING gin (tsv)",
        f"CREATE INDEX chunks_vector ON {s}.chunks USING hnsw (vector vector_ip_ops)"
        f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})",
        f"""CREATE TABLE {s}.postings (
            term text NOT NULL, chunk_id bigint NOT NULL,
            tf integer NOT NULL, dl integer NOT NULL, PRIMARY KEY (term, chunk_id) INCLUDE (tf, dl))""",
        f"CREATE INDEX postings_chunk ON {s}.postings (chunk_id)",
        *_terms_sql(s),
        f"CREATE TABLE {s}.stats (id bigserial PRIMARY KEY, chunks bigint NOT NULL, tokens bigint NOT NULL)",
        f"CREATE TABLE {s}.embeddings (text_hash text PRIMARY KEY, vector vector({dim}) NOT NULL)",
    ]


def _terms_sql(s: str) -> list[str]:
    """``terms``: how many chunks hold each word, as delta rows (each write transaction adds its own, so writers
    never wait on one another's common words; ``compact_stats`` folds a word's rows into one, ``delta`` false)."""
    return [
        f"CREATE TABLE {s}.terms (term text NOT NULL, df bigint NOT NULL, delta boolean NOT NULL DEFAULT true)",
        f"CREATE INDEX terms_term ON {s}.terms (term) INCLUDE (df)",
        f"CREATE INDEX terms_delta ON {s}.terms (term) WHERE delta",
    ]


def _to_format_2(conn, s: str) -> None:
    conn.execute(f"ALTER TABLE {s}.postings DROP CONSTRAINT IF EXISTS postings_chunk_id_fkey")


def _keyword_rows(
    ids: list[int], chunks: list[tuple[str, str]], df: Counter | None = None
) -> tuple[list[int], list[str], list[str]]:
    """What the keyword search keeps of chunks ``ids`` (their (heading, text)): each one's term count and
    tsvector, and their postings as lines of COPY's text format (term, chunk, frequency, length); each term
    counted once a chunk in ``df``."""
    lengths, vectors, lines = [], [], []
    for cid, (body, cjk) in zip(ids, pgterms.chunks_terms(chunks), strict=True):
        counts, length = pgterms.postings(body, cjk)
        if df is not None:
            df.update(counts.keys())
        lengths.append(length)
        vectors.append(pgterms.tsvector_literal(body))
        tail = f"\t{cid}\t"
        end = f"\t{length}\n"
        lines.extend(f"{_copy_text(t)}{tail}{n}{end}" for t, n in counts.items())
    return lengths, vectors, lines


def _copy_lines(conn, target: str, lines: list[str]) -> None:
    """Rows in COPY's text format into ``target`` (a table and its columns)."""
    if lines:
        with conn.cursor().copy(f"COPY {target} FROM STDIN") as copy:
            copy.write("".join(lines).encode("utf-8"))


def _copy_postings(conn, s: str, lines: list[str]) -> None:
    _copy_lines(conn, f"{s}.postings (term, chunk_id, tf, dl)", lines)


def _to_format_3(conn, s: str, batch: int = 2000) -> None:
    """Every chunk's terms cut again (``keywords.columns`` added the parts of camelCase identifiers): its
    postings, length and tsvector, and the term count in ``stats``."""
    conn.execute(f"TRUNCATE {s}.postings")
    before = int(conn.execute(f"SELECT coalesce(sum(ntokens), 0) FROM {s}.chunks").fetchone()[0])
    after = 0
    last = 0
    while True:
        rows = conn.execute(
            f"SELECT id, heading, text FROM {s}.chunks WHERE id > %s ORDER BY id LIMIT %s", (last, batch)
        ).fetchall()
        if not rows:
            break
        last = rows[-1][0]
        ids = [r[0] for r in rows]
        lengths, vectors, lines = _keyword_rows(ids, [(r[1], r[2]) for r in rows])
        after += sum(lengths)
        conn.execute(
            f"UPDATE {s}.chunks c SET ntokens = u.n, tsv = u.tsv::tsvector"
            " FROM unnest(%s::int8[], %s::int4[], %s::text[]) AS u(id, n, tsv) WHERE c.id = u.id",
            (ids, lengths, vectors),
        )
        _copy_postings(conn, s, lines)
    conn.execute(f"INSERT INTO {s}.stats (chunks, tokens) VALUES (0, %s)", (after - before,))


def _to_format_4(conn, s: str) -> None:
    """The postings' key made again with each posting's frequency and length (INCLUDE), and ``terms`` filled
    from the postings: minutes on millions of passages (``PgStore._upgrade`` says so first)."""
    conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    conn.execute(f"ALTER TABLE {s}.postings DROP CONSTRAINT postings_pkey")
    conn.execute(f"ALTER TABLE {s}.postings ADD PRIMARY KEY (term, chunk_id) INCLUDE (tf, dl)")
    for sql in _terms_sql(s):
        conn.execute(sql)
    conn.execute(
        f"INSERT INTO {s}.terms (term, df, delta) SELECT term, count(*), false FROM {s}.postings GROUP BY term"
    )


def _write_terms(conn, s: str, df: Counter) -> None:
    """A write transaction's change to the words' document frequencies, as delta rows of ``terms``."""
    _copy_lines(conn, f"{s}.terms (term, df)", [f"{_copy_text(t)}\t{n}\n" for t, n in df.items() if n])


# version -> the statements that bring an index from the version before to it, in one transaction
_MIGRATIONS = {2: _to_format_2, 3: _to_format_3, 4: _to_format_4}
_REWRITES_POSTINGS = {3, 4}  # the migrations that take minutes on a large index


def _retried(method):
    """A store call that is a whole transaction of its own (or a read outside one): run again after a lost
    connection or a conflict with another writer. Inside a write or snapshot the caller's ``retrying`` does it."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self._depth:
            return method(self, *args, **kwargs)
        return self.retrying(lambda: method(self, *args, **kwargs))

    return wrapper


@dataclass
class _Bm25:
    """A keyword query as BM25 scores it: the index's size and mean chunk length, the words that occur (with
    their document frequency and weight: times given x idf) and the phrases."""

    n: float
    avgdl: float
    phrases: list[list[str]]
    words: list[str] = field(default_factory=list)
    df: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


class PgStore:
    """The store interface over one index (schema) in a PostgreSQL database."""

    kind = "postgresql"

    def __init__(self, spec: PgSpec, conn, paths: IndexPaths, origin: str | None = None):
        self.spec = spec
        self.conn = conn
        self.paths = paths  # this machine's own files for the index (ONNX export, watcher)
        self.origin = origin or origin_name()
        self.s = spec.name
        self._meta: dict[str, str] = {}
        self._depth = 0  # nesting of snapshot()/write() transactions
        self._delta = [0, 0]  # chunks and terms a write transaction adds (negative: removes)
        self._df: Counter = Counter()  # chunks a write transaction adds to each word's count (negative: removes)
        self._sequence_readable: bool | None = None
        self._vector_dumper = False
        self.format_version = FORMAT_VERSION
        self._reconnect_error = ""
        self.looked_up: list[str] = []  # the last keyword search's words whose postings were not read in full

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, spec: PgSpec, paths: IndexPaths, origin: str | None = None) -> PgStore:
        conn = connect(spec)
        store = cls(spec, conn, paths, origin)
        try:
            store._check()
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def exists(cls, spec: PgSpec) -> bool:
        conn = connect(spec)
        try:
            return (
                cls(spec, conn, IndexPaths(Path(".")))
                .conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{spec.name}.meta",))
                .fetchone()[0]
            )
        finally:
            conn.close()

    @classmethod
    def create(cls, spec: PgSpec, paths: IndexPaths, model: ModelSpec, dim: int, origin: str | None = None) -> PgStore:
        """Make the index's schema and tables in one transaction (or open it, when another writer just did)."""
        psycopg = _driver()
        conn = connect(spec)
        try:
            found = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            if not found:
                db = conn.info.dbname
                raise StoreUnavailable(
                    f"The database {db} has no pgvector extension; have its owner run: CREATE EXTENSION vector; "
                    f"in it (pgvector must be installed on the server), then run the same command again."
                )
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"semsearch:{spec.name}",))
                    if conn.execute("SELECT to_regclass(%s)", (f"{spec.name}.meta",)).fetchone()[0] is None:
                        for sql in _schema_sql(spec.name, dim):
                            conn.execute(sql)
                        meta = {
                            "format_version": str(FORMAT_VERSION),
                            "created_at": str(time.time()),
                            "updated_at": "",
                            "dim": str(dim),
                        } | index_meta.model_meta(model)
                        conn.cursor().executemany(f"INSERT INTO {spec.name}.meta VALUES (%s, %s)", list(meta.items()))
            except psycopg.errors.InsufficientPrivilege as e:
                raise StoreUnavailable(
                    f"The role {conn.info.user} may not create the index in database {conn.info.dbname} "
                    f"({_first_line(e)}); have the database owner GRANT CREATE ON DATABASE {conn.info.dbname} "
                    f"TO {conn.info.user}, or create the index as a role that may."
                ) from None
        finally:
            conn.close()
        return cls.open(spec, paths, origin)

    def _check(self) -> None:
        psycopg = _driver()
        try:
            if self.conn.execute("SELECT to_regclass(%s)", (f"{self.s}.meta",)).fetchone()[0] is None:
                raise NoIndex(
                    f"No {self.spec.where} yet; create one with: semsearch index PATH --store URL "
                    "(the URL's index= names it)."
                )
            rows = dict(self.conn.execute(f"SELECT key, value FROM {self.s}.meta").fetchall())
        except psycopg.errors.InsufficientPrivilege as e:
            user = self.conn.info.user
            raise StoreUnavailable(
                f"The role {user} may not read the {self.spec.where} ({_first_line(e)}); have its owner run: "
                f"GRANT USAGE ON SCHEMA {self.s} TO {user}; GRANT SELECT ON ALL TABLES IN SCHEMA {self.s} TO {user};"
            ) from None
        version = index_meta.check_format(
            rows,
            FORMAT_VERSION,
            f"The {self.spec.where}",
            f"The schema {self.s} in {mask(self.spec.conninfo)} is not a semsearch index.",
        )
        self._meta = rows
        self.format_version = version
        if version < FORMAT_VERSION:
            self._upgrade()

    def _upgrade(self) -> None:
        """Bring an index of an older format to FORMAT_VERSION, one transaction per step (under the index's
        lock, so two processes opening it at once upgrade it once). A role that may not alter the tables (a
        read-only one, a replica) reads the older format as it is; writing waits for the upgrade."""
        psycopg = _driver()
        try:
            while self.format_version < FORMAT_VERSION:
                with self.conn.transaction():
                    self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"semsearch:{self.s}",))
                    version = int(self.conn.execute(
                        f"SELECT value FROM {self.s}.meta WHERE key = 'format_version'"
                    ).fetchone()[0])  # fmt: skip
                    if version < FORMAT_VERSION:
                        self._say_upgrading(version + 1)
                        _MIGRATIONS[version + 1](self.conn, self.s)
                        self.conn.execute(
                            f"UPDATE {self.s}.meta SET value = %s WHERE key = 'format_version'", (str(version + 1),)
                        )
                        version += 1
                self.format_version = version
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction):
            pass  # read as it is; write() says who must upgrade it
        self._meta["format_version"] = str(self.format_version)

    def _say_upgrading(self, version: int) -> None:
        """Before a migration that rewrites the keyword postings, say so (``meta.say_upgrading``)."""
        if version in _REWRITES_POSTINGS:
            index_meta.say_upgrading(
                f"the {self.where}",
                "its keyword postings are rewritten for",
                self.vector_total(),
                once=f"format {version - 1} to {version}",
                also="; other semsearch processes using it wait until it is done",
            )

    def close(self) -> None:
        self.conn.close()

    # -- faults: retried ---------------------------------------------------------------------------

    def retrying(self, work: Callable[[], T]) -> T:
        """Run ``work`` (whole transactions: nothing half done is kept when it fails); after a lost connection
        (reconnecting), a deadlock or a serialization failure with another writer, run it again, up to RETRIES
        times with a growing pause; then the last error (one sentence for the user, exit 2)."""
        psycopg = _driver()
        attempt = 0
        while True:
            try:
                return work()
            except psycopg.OperationalError as e:  # connection lost, server shut down, deadlock, serialization...
                if self._depth:
                    raise  # an outer transaction runs it again
                attempt += 1
                lost = self.conn.closed or self.conn.broken
                if attempt > RETRIES:
                    if lost:
                        reason = self._reconnect_error or _first_line(e)
                        raise StoreUnavailable(
                            f"Lost the connection to the {self.where} and could not get it back after {RETRIES} "
                            f"attempts ({reason}). Everything committed before it is kept; run the same command "
                            "again to finish."
                        ) from None
                    raise
                pause = RETRY_PAUSE * 2 ** (attempt - 1) * (0.5 + random.random())  # two writers apart
                log.warning("semsearch: %s; trying again in %.1f s (%d of %d)", _first_line(e), pause, attempt, RETRIES)
                time.sleep(pause)
                if lost:
                    self._reconnect()

    def _reconnect(self) -> None:
        try:
            self.conn.close()
        except Exception:  # a broken connection may fail to close cleanly
            pass
        try:
            self.conn = connect(self.spec)
        except StoreUnavailable as e:
            self._reconnect_error = str(e).split(" (", 1)[-1].split("); ", 1)[0]  # the server's reason
            return  # still unreachable: the next attempt fails at once, and pauses longer
        self._reconnect_error = ""
        self._depth = 0
        self._delta = [0, 0]
        self._df = Counter()
        self._vector_dumper = False
        self._sequence_readable = None

    @property
    def where(self) -> str:
        return self.spec.where

    # -- metadata ------------------------------------------------------------------------------

    @_retried
    def meta(self, key: str, default: str = "") -> str:
        row = self.conn.execute(f"SELECT value FROM {self.s}.meta WHERE key = %s", (key,)).fetchone()
        return row[0] if row else default

    @property
    def dim(self) -> int:
        return int(self.meta("dim"))

    @property
    def generation(self) -> int:
        if self._sequence_readable is None:  # a read-only role may have been granted the tables alone
            self._sequence_readable = bool(self.conn.execute(
                "SELECT has_sequence_privilege(%s, 'SELECT')", (f"{self.s}.generation",)
            ).fetchone()[0])  # fmt: skip
        if not self._sequence_readable:
            return int(self.conn.execute(f"SELECT coalesce(max(id), 0) FROM {self.s}.stats").fetchone()[0])
        value, called = self.conn.execute(f"SELECT last_value, is_called FROM {self.s}.generation").fetchone()
        return int(value) if called else 0

    @property
    def model_ref(self) -> str:
        return self.meta("model_ref")

    @property
    def truncate_dim(self) -> int | None:
        value = self.meta("truncate_dim")
        return int(value) if value else None

    def recorded_prefixes(self) -> dict[str, str]:
        return index_meta.recorded_prefixes(self.meta("model_prefixes", "{}"))

    def check_model(self, model: ModelSpec) -> None:
        index_meta.check_model(self, model, f"The {self.where}", "another index name")

    # -- transactions ----------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[int]:
        """One write transaction; yields its generation. Readers never see half of it."""
        if self.format_version < FORMAT_VERSION:
            user = self.conn.info.user
            raise StoreUnavailable(
                f"The {self.where} is in an older format ({self.format_version}) that this semsearch upgrades before "
                f"writing, and the role {user} may not alter its tables; have its owner run: semsearch status "
                "--store URL (which upgrades it), then run the same command again."
            )
        with self.conn.transaction():
            self._depth += 1
            self._delta = [0, 0]
            self._df = Counter()
            try:
                gen = int(self.conn.execute(f"SELECT nextval('{self.s}.generation')").fetchone()[0])
                yield gen
                if self._delta != [0, 0]:
                    self.conn.execute(f"INSERT INTO {self.s}.stats (chunks, tokens) VALUES (%s, %s)", self._delta)
                _write_terms(self.conn, self.s, self._df)
            finally:
                self._depth -= 1
                self._delta = [0, 0]
                self._df = Counter()

    @contextmanager
    def snapshot(self) -> Iterator[int]:
        """A read transaction (REPEATABLE READ): every query inside sees the same state. Yields its generation."""
        if self._depth:
            yield self.generation
            return
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self._depth += 1
            try:
                yield self.generation
            finally:
                self._depth -= 1

    @_retried
    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            f"INSERT INTO {self.s}.meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def set_model(self, model: ModelSpec, dim: int) -> None:
        """Record a new model and drop everything embedded with the old one (``--change-model``)."""
        s = self.s
        with self.write():
            self.conn.execute(f"TRUNCATE {s}.postings, {s}.terms, {s}.chunks, {s}.files, {s}.embeddings, {s}.stats")
            self.conn.execute(f"DROP INDEX {s}.chunks_vector")
            self.conn.execute(f"ALTER TABLE {s}.chunks ALTER COLUMN vector TYPE vector({dim})")
            self.conn.execute(f"ALTER TABLE {s}.embeddings ALTER COLUMN vector TYPE vector({dim})")
            self.conn.execute(
                f"CREATE INDEX chunks_vector ON {s}.chunks USING hnsw (vector vector_ip_ops)"
                f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
            )
            meta = index_meta.model_meta(model) | {"dim": str(dim)}
            self.conn.cursor().executemany(
                f"INSERT INTO {s}.meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(meta.items()),
            )

    # -- roots and files ---------------------------------------------------------------------------

    @_retried
    def add_root(self, path: Path) -> None:
        self.conn.execute(
            f"INSERT INTO {self.s}.roots VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (self.origin, os.fsencode(path), time.time()),
        )

    @_retried
    def roots(self) -> list[Path]:
        """This machine's (this origin's) roots."""
        rows = self.conn.execute(f"SELECT path FROM {self.s}.roots WHERE origin = %s ORDER BY path", (self.origin,))
        return [Path(os.fsdecode(r[0])) for r in rows]

    @_retried
    def all_roots(self) -> list[tuple[str, Path]]:
        """Every root of the index as (origin, path)."""
        rows = self.conn.execute(f"SELECT origin, path FROM {self.s}.roots ORDER BY origin, path")
        return [(r[0], Path(os.fsdecode(r[1]))) for r in rows]

    def remove_root(self, gen: int, path: Path) -> None:
        self.conn.execute(
            f"DELETE FROM {self.s}.roots WHERE origin = %s AND path = %s", (self.origin, os.fsencode(path))
        )

    @_retried
    def files(self) -> dict[Path, FileRow]:
        """This origin's files (the ones this machine can see and keep up to date)."""
        rows = self.conn.execute(
            f"SELECT id, path, size, mtime_ns, sha256, error FROM {self.s}.files WHERE origin = %s", (self.origin,)
        )
        return {row.path: row for row in (FileRow(r[0], Path(os.fsdecode(r[1])), r[2], r[3], r[4], r[5]) for r in rows)}

    def _shown_path(self, origin: str, raw: bytes) -> Path:
        path = os.fsdecode(raw)
        return Path(path) if origin == self.origin else Path(f"{origin}:{path}")

    # -- vectors by text ---------------------------------------------------------------------------

    @_retried
    def put_embeddings(self, hashes: list[str], vectors: np.ndarray) -> None:
        if not self._vector_dumper:
            _register_vector(self.conn)
            self._vector_dumper = True
        # in one order, so two writers storing the same texts at once never wait for each other in a circle
        rows = sorted(((h, _Vector(v)) for h, v in zip(hashes, vectors)), key=lambda r: r[0])
        with self.conn.transaction():
            self.conn.cursor().executemany(
                f"INSERT INTO {self.s}.embeddings VALUES (%s, %b) ON CONFLICT DO NOTHING", rows
            )

    @_retried
    def known_hashes(self, hashes: Iterable[str]) -> set[str]:
        hashes = list(set(hashes))
        if not hashes:
            return set()
        rows = self.conn.execute(f"SELECT text_hash FROM {self.s}.embeddings WHERE text_hash = ANY(%s)", (hashes,))
        return {r[0] for r in rows}

    @_retried
    def drop_unused_embeddings(self) -> int:
        with self.conn.transaction():
            cur = self.conn.execute(
                f"DELETE FROM {self.s}.embeddings e WHERE NOT EXISTS"
                f" (SELECT 1 FROM {self.s}.chunks c WHERE c.text_hash = e.text_hash)"
            )
            return cur.rowcount

    def drop_tombstones(self, upto_gen: int) -> None:
        """Nothing to do: there is no separate vector file to keep in step."""

    def sync_vectors(self, rebuild: bool = False) -> str:
        """After writes: the vectors are searched in the database itself (HNSW), so there is no structure to
        bring up to date; the keyword statistics' delta rows are folded into one."""
        self.compact_stats()
        if rebuild:  # with the current build parameters (a graph built by an older semsearch gets the new ones)
            self.conn.execute(
                f"ALTER INDEX {self.s}.chunks_vector SET (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
            )
            self.conn.execute(f"REINDEX INDEX {self.s}.chunks_vector")
            return f"{self.vector_total()} vectors, as asked (HNSW index rebuilt)"
        return ""

    @_retried
    def compact_stats(self) -> None:
        """Fold the stats delta rows into one, and each word's ``terms`` rows into one, for the words written
        since the last fold (another writer's uncommitted rows stay as they are)."""
        with self.conn.transaction():
            self.conn.execute(
                f"WITH d AS (DELETE FROM {self.s}.stats RETURNING chunks, tokens)"
                f" INSERT INTO {self.s}.stats (chunks, tokens) SELECT sum(chunks), sum(tokens) FROM d"
                " HAVING count(*) > 0"
            )
            if self.format_version >= 4:
                self.conn.execute(
                    f"WITH d AS (DELETE FROM {self.s}.terms WHERE term IN (SELECT term FROM {self.s}.terms WHERE delta)"
                    f" RETURNING term, df) INSERT INTO {self.s}.terms (term, df, delta)"
                    " SELECT term, sum(df), false FROM d GROUP BY term HAVING sum(df) <> 0"
                )

    # -- writing files (inside write()) --------------------------------------------------------------

    def replace_file(
        self, gen: int, path: Path, size: int, mtime_ns: int, sha256: str, chunks: list[Chunk], error: str | None = None
    ) -> None:
        """Set a file's row and its chunks (their vectors must already be stored), locking the file's row."""
        self.replace_files(gen, [FileWrite(path, size, mtime_ns, sha256, chunks, error)])

    def replace_files(self, gen: int, files: list[FileWrite]) -> None:
        """Set files' rows and their chunks and postings, in a few statements whatever their number: the files'
        rows (upserted, so locked, in the order given), their old chunks dropped, the new chunks with their
        vectors (joined from ``embeddings``) and keyword postings (one COPY)."""
        if not files:
            return
        s = self.s
        latest = {os.fsencode(f.path): f for f in files}  # a path given twice: its last state
        raw_paths = list(latest)
        now = time.time()
        got = self.conn.execute(
            f"INSERT INTO {s}.files (origin, path, size, mtime_ns, sha256, indexed_at, error)"
            " SELECT %s, u.path, u.size, u.mtime_ns, u.sha256, %s, u.error"
            " FROM unnest(%s::bytea[], %s::int8[], %s::int8[], %s::text[], %s::text[]) WITH ORDINALITY"
            " AS u(path, size, mtime_ns, sha256, error, n) ORDER BY u.n"
            " ON CONFLICT (origin, path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " sha256 = excluded.sha256, indexed_at = excluded.indexed_at, error = excluded.error"
            " RETURNING path, id",
            (
                self.origin, now, raw_paths,
                [latest[p].size for p in raw_paths], [latest[p].mtime_ns for p in raw_paths],
                [latest[p].sha256 for p in raw_paths], [latest[p].error for p in raw_paths],
            ),
        ).fetchall()  # fmt: skip
        file_ids = {bytes(r[0]): int(r[1]) for r in got}
        self._drop_chunks("file_id = ANY(%s)", (sorted(file_ids.values()),))
        total = sum(len(f.chunks) for f in latest.values())
        if not total:
            return
        ids = [r[0] for r in self.conn.execute(
            f"SELECT nextval('{s}.chunks_id_seq') FROM generate_series(1, %s)", (total,)
        ).fetchall()]  # fmt: skip
        cols: list[list] = [[] for _ in range(12)]
        postings: list[str] = []  # COPY's text format, one line per (term, chunk)
        terms_total = 0
        at = 0
        for raw in raw_paths:
            f = latest[raw]
            if not f.chunks:
                continue
            chunk_ids = ids[at : at + len(f.chunks)]
            at += len(f.chunks)
            lengths, vectors, lines = _keyword_rows(chunk_ids, [(c.heading, c.text) for c in f.chunks], self._df)
            terms_total += sum(lengths)
            postings.extend(lines)
            for i, (c, cid, length, tsv) in enumerate(zip(f.chunks, chunk_ids, lengths, vectors)):
                row = (cid, file_ids[raw], i, c.text, c.start_line, c.end_line, c.page, c.heading, c.cell,
                       text_hash(c.embed_text), length, tsv)  # fmt: skip
                for col, value in zip(cols, row):
                    col.append(value)
        self.conn.execute(
            f"INSERT INTO {s}.chunks (id, file_id, ord, text, start_line, end_line, page, heading, cell, text_hash,"
            " gen, ntokens, tsv, vector)"
            " SELECT u.id, u.file_id, u.ord, u.text, u.start_line, u.end_line, u.page, u.heading, u.cell,"
            " u.text_hash, %s, u.ntokens, u.tsv::tsvector, e.vector"
            " FROM unnest(%s::int8[], %s::int8[], %s::int4[], %s::text[], %s::int4[], %s::int4[], %s::int4[],"
            " %s::text[], %s::int4[], %s::text[], %s::int4[], %s::text[])"
            " AS u(id, file_id, ord, text, start_line, end_line, page, heading, cell, text_hash, ntokens, tsv)"
            f" LEFT JOIN {s}.embeddings e ON e.text_hash = u.text_hash",
            (gen, *cols),
        )
        _copy_postings(self.conn, s, postings)
        self._delta[0] += total
        self._delta[1] += terms_total

    def _drop_chunks(self, where: str, args) -> None:
        n, terms, words, counts = self.conn.execute(
            f"WITH d AS (DELETE FROM {self.s}.chunks WHERE {where} RETURNING id, ntokens),"
            f" p AS (DELETE FROM {self.s}.postings WHERE chunk_id = ANY(ARRAY(SELECT id FROM d)) RETURNING term),"
            " w AS (SELECT term, count(*) AS n FROM p GROUP BY term)"
            " SELECT (SELECT count(*) FROM d), (SELECT coalesce(sum(ntokens), 0) FROM d),"
            " (SELECT array_agg(term ORDER BY term) FROM w), (SELECT array_agg(n ORDER BY term) FROM w)",
            args,
        ).fetchone()
        self._delta[0] -= int(n)
        self._delta[1] -= int(terms)
        self._df.subtract(dict(zip(words or [], counts or [], strict=True)))

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None:
        self.conn.execute(
            f"UPDATE {self.s}.files SET size = %s, mtime_ns = %s WHERE id = %s", (size, mtime_ns, file_id)
        )

    def delete_files(self, gen: int, file_ids: list[int]) -> None:
        s = self.s
        # locked in path order, as writers replacing files lock them (no deadlock between the two)
        ordered = [r[0] for r in self.conn.execute(
            f"SELECT id FROM {s}.files WHERE id = ANY(%s) ORDER BY origin, path", ([int(i) for i in file_ids],)
        )]  # fmt: skip
        for start in range(0, len(ordered), 500):
            part = ordered[start : start + 500]
            locked = [r[0] for r in self.conn.execute(
                f"SELECT id FROM {s}.files WHERE id = ANY(%s) ORDER BY origin, path FOR UPDATE", (part,)
            )]  # fmt: skip
            if not locked:
                continue
            self._drop_chunks("file_id = ANY(%s)", (locked,))
            self.conn.execute(f"DELETE FROM {s}.files WHERE id = ANY(%s)", (locked,))

    # -- reading ---------------------------------------------------------------------------------

    def chunk_rows(self, ids: list[int]) -> dict[int, ChunkRow]:
        if not ids:
            return {}
        rows = self.conn.execute(
            f"SELECT c.id, f.origin, f.path, c.text, c.start_line, c.end_line, c.page, c.heading, c.cell"
            f" FROM {self.s}.chunks c JOIN {self.s}.files f ON f.id = c.file_id WHERE c.id = ANY(%s)",
            ([int(i) for i in ids],),
        )
        return {r[0]: ChunkRow(r[0], self._shown_path(r[1], r[2]), r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows}

    def chunk_places(self) -> list[tuple[int, Path, int, int, int, int | None, int | None]]:
        rows = self.conn.execute(
            f"SELECT c.id, f.origin, f.path, c.ord, c.start_line, c.end_line, c.page, c.cell"
            f" FROM {self.s}.chunks c JOIN {self.s}.files f ON f.id = c.file_id ORDER BY f.origin, f.path, c.ord"
        )
        return [(r[0], self._shown_path(r[1], r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def vectors_since(self, gen: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and vectors of the chunks added after generation ``gen`` (all of them for 0)."""
        import numpy as np

        cur = self.conn.cursor(binary=True)
        cur.execute(f"SELECT id, vector FROM {self.s}.chunks WHERE gen > %s ORDER BY id", (gen,))
        rows = cur.fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        dim = self.dim
        vectors = np.empty((len(rows), dim), dtype=np.float32)
        for i, r in enumerate(rows):
            vectors[i] = _vector_bytes(r[1])
        return ids, vectors

    def vectors_of(self, ids: list[int]) -> dict[int, np.ndarray]:
        cur = self.conn.cursor(binary=True)
        cur.execute(f"SELECT id, vector FROM {self.s}.chunks WHERE id = ANY(%s)", ([int(i) for i in ids],))
        return {int(r[0]): _vector_bytes(r[1]) for r in cur.fetchall()}

    @_retried
    def counts(self) -> dict[str, int]:
        one = lambda sql: int(self.conn.execute(sql.format(s=self.s)).fetchone()[0])  # noqa: E731
        return {
            "files": one("SELECT COUNT(*) FROM {s}.files"),
            "files_skipped": one("SELECT COUNT(*) FROM {s}.files WHERE error IS NOT NULL"),
            "chunks": one("SELECT COUNT(*) FROM {s}.chunks"),
            "embeddings": one("SELECT COUNT(*) FROM {s}.embeddings"),
        }

    def skipped_files(self) -> list[tuple[Path, str]]:
        rows = self.conn.execute(f"SELECT origin, path, error FROM {self.s}.files WHERE error IS NOT NULL")
        return [(self._shown_path(r[0], r[1]), r[2]) for r in rows]

    def size_bytes(self) -> int:
        """What the index's tables and their indexes take in the database."""
        return int(self.conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (self.s,),
        ).fetchone()[0])  # fmt: skip

    def updated_at(self) -> float | None:
        return self.conn.execute(f"SELECT max(indexed_at) FROM {self.s}.files").fetchone()[0]

    def consistency_problems(self) -> list[str]:
        """Inside a snapshot: what does not hold between files, chunks, vectors, postings and statistics."""
        s = self.s
        one = lambda sql: int(self.conn.execute(sql).fetchone()[0] or 0)  # noqa: E731
        problems = []
        checks = [
            (f"SELECT count(*) FROM {s}.chunks c WHERE NOT EXISTS"
             f" (SELECT 1 FROM {s}.embeddings e WHERE e.text_hash = c.text_hash)",
             "{n} chunks have no stored vector for their text."),
            (f"SELECT count(*) FROM {s}.chunks c JOIN {s}.embeddings e USING (text_hash) WHERE c.vector <> e.vector",
             "{n} chunks hold a vector other than the one stored for their text."),
            (f"SELECT count(*) FROM {s}.chunks WHERE vector_dims(vector) <> {self.dim}",
             "{n} chunks have vectors of the wrong size."),
            (f"SELECT count(*) FROM {s}.chunks c WHERE c.ntokens > 0 AND NOT EXISTS"
             f" (SELECT 1 FROM {s}.postings p WHERE p.chunk_id = c.id)",
             "{n} chunks are missing from the keyword postings."),
            (f"SELECT count(*) FROM {s}.postings p JOIN {s}.chunks c ON c.id = p.chunk_id WHERE p.dl <> c.ntokens",
             "{n} keyword postings disagree with their chunk's length."),
            (f"SELECT count(*) FROM {s}.postings p WHERE NOT EXISTS (SELECT 1 FROM {s}.chunks c WHERE c.id = p.chunk_id)",
             "{n} keyword postings belong to no chunk."),
            (f"SELECT count(*) FROM (SELECT term, count(*) AS n FROM {s}.postings GROUP BY term) p"
             f" FULL JOIN (SELECT term, sum(df) AS n FROM {s}.terms GROUP BY term HAVING sum(df) <> 0) t USING (term)"
             " WHERE p.n IS DISTINCT FROM t.n",
             "{n} words' chunk counts disagree with their keyword postings."),
            (f"SELECT abs((SELECT coalesce(sum(chunks), 0) FROM {s}.stats) - (SELECT count(*) FROM {s}.chunks))"
             f" + abs((SELECT coalesce(sum(tokens), 0) FROM {s}.stats) - (SELECT coalesce(sum(ntokens), 0) FROM {s}.chunks))",
             "The keyword statistics are off by {n} (chunks and terms counted)."),
            (f"SELECT count(*) FROM pg_index WHERE indexrelid IN ('{s}.chunks_vector'::regclass,"
             f" '{s}.chunks_tsv'::regclass) AND NOT (indisvalid AND indisready)",
             "{n} of the search indexes (HNSW, GIN) are not valid; REINDEX them."),
        ]  # fmt: skip
        for sql, sentence in checks:
            if f"{s}.terms" in sql and self.format_version < 4:
                continue  # (an older format read as it is: no word counts kept)
            n = one(sql)
            if n:
                problems.append(sentence.format(n=n))
        return problems

    def graph_notes(self) -> list[str]:
        """What ``check`` should say of the vector graph: that an older semsearch built it with other parameters
        (not an inconsistency: searches work, and find fewer true neighbours at a large size)."""
        (reloptions,) = self.conn.execute(
            f"SELECT reloptions FROM pg_class WHERE oid = '{self.s}.chunks_vector'::regclass"
        ).fetchone()
        options = dict(o.split("=", 1) for o in reloptions or [])
        m = int(options.get("m", PGVECTOR_DEFAULT_M))
        ef = int(options.get("ef_construction", PGVECTOR_DEFAULT_EF_CONSTRUCTION))
        if (m, ef) == (HNSW_M, HNSW_EF_CONSTRUCTION):
            return []
        return [
            f"The vector graph was built with m={m} and ef_construction={ef} (this version builds m={HNSW_M} and "
            f"ef_construction={HNSW_EF_CONSTRUCTION}), so searches of a large index can miss near passages; run "
            "semsearch index --rebuild to rebuild it from the stored vectors (nothing is embedded again)."
        ]

    # -- search ------------------------------------------------------------------------------------

    def vector_total(self) -> int:
        """How many chunks (and so vectors) the index holds, from the kept statistics (no count over the table)."""
        return int(self.conn.execute(f"SELECT coalesce(sum(chunks), 0) FROM {self.s}.stats").fetchone()[0])

    def dense_search(self, query: np.ndarray, k: int, exact: bool = False) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest to the (normalized) query vector by inner product, best first (HNSW)."""
        q = _vector_text(query)
        with self.conn.transaction():
            if exact:
                self.conn.execute("SET LOCAL enable_indexscan = off")
            else:
                self._set_ef_search(k)
            rows = self.conn.execute(
                f"SELECT id, -(vector <#> %s::vector) FROM {self.s}.chunks ORDER BY vector <#> %s::vector LIMIT %s",
                (q, q, k),
            ).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def _set_ef_search(self, k: int) -> int:
        """Set ``hnsw.ef_search`` for a search of depth ``k`` in the current transaction, from the index's size
        (the kept statistics: one small read); returns it. No filter follows the graph's scan (the query has no
        WHERE), so pgvector's iterative scan is only needed past ef_search's limit."""
        ef = ef_search_for(self.vector_total(), k)
        self.conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
        if k > EF_SEARCH_LIMIT:  # past ef_search's limit: keep scanning the graph, in order
            self.conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        return ef

    def cosines(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        if not ids:
            return {}
        rows = self.conn.execute(
            f"SELECT id, -(vector <#> %s::vector) FROM {self.s}.chunks WHERE id = ANY(%s)",
            (_vector_text(query), [int(i) for i in ids]),
        )
        return {int(r[0]): float(r[1]) for r in rows}

    def _keyword_query(self, expression: str) -> _Bm25 | None:
        """What BM25 needs of a match expression: its words (each with how many times it is given) and
        phrases, the index's chunk and term counts, and each word's document frequency (one round trip).

        Each OR'ed item counts as FTS5 counts it: a word by its frequency in the chunk, a phrase (several
        terms) by how many times the chunk holds it; an item given twice counts twice, as in FTS5.
        """
        items = pgterms.expression_items(expression)
        if not items:
            return None
        words: dict[str, int] = {}
        phrases: list[list[str]] = []
        for item in items:
            if len(item) == 1:
                words[item[0]] = words.get(item[0], 0) + 1
            else:
                phrases.append(item)
        s = self.s
        df = self._df_sql("w.term")
        n, t, dfs = self.conn.execute(
            f"SELECT greatest(coalesce(sum(chunks), 0), 1)::float8, greatest(coalesce(sum(tokens), 0), 1)::float8,"
            f" ARRAY(SELECT ({df}) FROM unnest(%s::text[]) WITH ORDINALITY AS w(term, i) ORDER BY w.i) FROM {s}.stats",
            (list(words),),
        ).fetchone()
        q = _Bm25(n=float(n), avgdl=float(t) / float(n), phrases=phrases)
        for (word, times), df in zip(words.items(), dfs, strict=True):
            df = int(df)
            if df:  # a word no chunk holds adds nothing
                q.words.append(word)
                q.df.append(df)
                q.weights.append(times * max(math.log((q.n - df + 0.5) / (df + 0.5)), 1e-6))
        return q

    def _df_sql(self, word: str) -> str:
        """A scalar subquery: how many chunks hold the word in column ``word``."""
        if self.format_version >= 4:  # the kept counts
            return f"SELECT coalesce(sum(t.df), 0)::int8 FROM {self.s}.terms t WHERE t.term = {word}"
        return f"SELECT count(*) FROM {self.s}.postings p WHERE p.term = {word}"  # an older format, read as it is

    def _phrase_ctes(self, q: _Bm25, args: dict) -> list[str]:
        """One CTE per phrase, ``ph{i}``: the chunks holding it (chunk_id, tf: how many times, dl), and one
        with its weight, ``ph{i}w`` (its idf, from how many chunks hold it)."""
        ctes = []
        args["n"] = q.n
        for i, phrase in enumerate(q.phrases):
            # the phrase's frequency in the chunk, as FTS5 counts it: the places of its first term followed by
            # the others, one position apart (the tsvector keeps each term's positions)
            follow = " AND ".join(
                f"EXISTS (SELECT 1 FROM unnest(c.tsv) u{j} WHERE u{j}.lexeme = %(ph{i}_{j})s"
                f" AND p + {j} = ANY(u{j}.positions))"
                for j in range(1, len(phrase))
            )
            ctes.append(
                f"ph{i} AS MATERIALIZED (SELECT c.id AS chunk_id, greatest(1, (SELECT count(*)"
                f" FROM unnest(c.tsv) u0, unnest(u0.positions) p WHERE u0.lexeme = %(ph{i}_0)s AND {follow}))::int"
                f" AS tf, c.ntokens AS dl FROM {self.s}.chunks c WHERE c.tsv @@ %(ph{i})s::tsquery)"
            )
            ctes.append(
                f"ph{i}w AS (SELECT greatest(ln((%(n)s - count(*) + 0.5) / (count(*) + 0.5)), 1e-6) AS w FROM ph{i})"
            )
            args.update({f"ph{i}_{j}": term for j, term in enumerate(phrase)})
            args[f"ph{i}"] = pgterms.tsquery_literal(phrase)
        return ctes

    @staticmethod
    def _part(weight: str, tf: str, dl: str) -> str:
        """One item's part of a chunk's BM25, as FTS5's bm25() computes it over the embedded store's padded
        lengths (every chunk ``keywords.PAD`` tokens longer). A chunk's score is the sum of its items' parts,
        always added in the items' order (``sum(... ORDER BY i)``), so that a chunk's score is the same to the
        last bit however it was found, and chunks of equal score are ordered by id."""
        return f"{weight} * {tf} * {K1 + 1} / ({tf} + {K1} * ({1 - B} + {B} * ({dl} + {PAD}) / (%(avgdl)s + {PAD})))"

    @staticmethod
    def _words(q: _Bm25, which: list[int], name: str, args: dict) -> str:
        """Words ``which`` as a table w(term, weight, i) (i: the word's place in the query)."""
        args[name] = [q.words[k] for k in which]
        args[name + "_w"] = [q.weights[k] for k in which]
        args[name + "_i"] = list(which)
        return f"unnest(%({name})s::text[], %({name}_w)s::float8[], %({name}_i)s::int[]) AS w(term, weight, i)"

    def _words_rows(self, q: _Bm25, which: list[int], name: str, args: dict) -> str:
        """(chunk_id, i, c): every posting of words ``which`` (c: its part of the chunk's score), from the
        postings' key (index-only)."""
        return (
            f"SELECT p.chunk_id, w.i, {self._part('w.weight', 'p.tf', 'p.dl')} AS c FROM {self.s}.postings p"
            f" JOIN {self._words(q, which, name, args)} ON w.term = p.term"
        )

    def _words_probed(self, q: _Bm25, which: list[int], name: str, args: dict, chunks: str) -> str:
        """(chunk_id, i, c) for each chunk of ``chunks`` (a table with a column ``chunk_id``) and word of
        ``which``: one look-up by key each (c NULL where the chunk lacks the word). A subquery a row, so that
        no plan reads a common word's whole list to find a few chunks' postings."""
        return (
            f"SELECT ch.chunk_id, w.i, (SELECT {self._part('w.weight', 'p.tf', 'p.dl')} FROM {self.s}.postings p"
            f" WHERE p.term = w.term AND p.chunk_id = ch.chunk_id) AS c FROM {chunks} AS ch(chunk_id), {self._words(q, which, name, args)}"
        )

    def _phrase_rows(self, q: _Bm25, chunks: str = "") -> list[str]:
        """(chunk_id, i, c) of each phrase's matches (among table ``chunks``, if given)."""
        first = len(q.words)
        join = f" JOIN {chunks} AS ch(chunk_id) USING (chunk_id)" if chunks else ""
        return [
            f"SELECT ph{k}.chunk_id, {first + k}, {self._part(f'ph{k}w.w', f'ph{k}.tf', f'ph{k}.dl')}"
            f" FROM ph{k}{join}, ph{k}w"
            for k in range(len(q.phrases))
        ]

    def _ids_part(self, q: _Bm25, ids: list[int], args: dict) -> str:
        """(chunk_id, score): the BM25 of chunks ``ids``, from their own postings (one key look-up a word)."""
        args["ids"] = ids
        return self._scores_of(q, "unnest(%(ids)s::int8[])", args)

    def _scores_of(self, q: _Bm25, chunks: str, args: dict) -> str:
        """(chunk_id, score): the BM25 of the chunks of table ``chunks`` (one column; those holding some
        item), from their own postings, one key look-up a word, and the phrases' matches."""
        rows = [self._words_probed(q, list(range(len(q.words))), "all", args, chunks)]
        rows += self._phrase_rows(q, chunks)
        return (
            f"SELECT x.chunk_id, sum(x.c ORDER BY x.i) AS score FROM ({' UNION ALL '.join(rows)}) x GROUP BY 1"
            " HAVING count(x.c) > 0"
        )

    def keyword_search(self, expression: str, limit: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) best first."""
        return self.keyword_search_and_score(expression, limit, [])[0]

    def keyword_scores(self, expression: str, ids: list[int]) -> dict[int, float]:
        q = self._keyword_query(expression)
        if q is None or not ids:
            return {}
        args: dict = {"avgdl": q.avgdl}
        ctes = self._phrase_ctes(q, args)
        sql = self._ids_part(q, [int(i) for i in ids], args)
        rows = self.conn.execute((f"WITH {', '.join(ctes)} " if ctes else "") + sql, args).fetchall()
        return {int(r[0]): float(r[1]) for r in rows}

    def keyword_search_and_score(
        self, expression: str, limit: int, ids: list[int]
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        """The ``limit`` best chunks by BM25 (best first, ties by id) and the BM25 scores of ``ids``: exactly
        what scoring every chunk that holds a query word gives, without reading every posting of the query's
        common words (MaxScore, Turtle and Flood 1995).

        A word adds at most its weight (times given x idf) x (k1 + 1) to a chunk's score, whatever its
        frequency. The words are split in two: the *essential* ones (rare: high weight, short posting lists)
        are read in full, and each chunk holding one of them is scored on them; the ``limit``-th best of those
        partial scores is a floor under the final ``limit``-th score. When the bounds of the other words
        (common: low weight, long lists) add up to no more than that floor, a chunk holding only those words
        scores below it and cannot be among the best: their lists are not read, only looked up (by key) for
        the chunks that can still reach the floor. Otherwise (or when those chunks are so many that looking
        them up would cost more than reading the next word's list) more words become essential and the step is
        run again; with every word essential it is the plain exhaustive BM25.
        """
        q = self._keyword_query(expression)
        if q is None:
            return [], {}
        ids = [int(i) for i in ids]
        order = sorted(range(len(q.words)), key=lambda i: (-q.weights[i], q.df[i]))  # highest bound first
        bound = [q.weights[i] * (K1 + 1) for i in order]
        # first step: the word of highest bound, and every word whose list is short anyway
        essential = 1 if PRUNE else len(order)
        while essential < len(order) and q.df[order[essential]] <= CHEAP_POSTINGS:
            essential += 1
        # and enough words for ``limit`` chunks at all (fewer leave no floor: the step would be run for nothing)
        while not q.phrases and essential < len(order) and sum(q.df[i] for i in order[:essential]) < limit:
            essential += 1

        def rest_of(first: int) -> float:
            """What the words from ``first`` on can add to a chunk at most (with a margin for rounding)."""
            return sum(bound[first:]) * (1 + 1e-9)

        while True:
            rest = rest_of(essential)
            other = order[essential:]
            # look-ups allowed: as many as cost what reading the next word's list would
            budget = max(MIN_LOOKUPS, q.df[other[0]] // LOOKUP_COST) if other else 0
            with self.conn.transaction():
                self.conn.execute("SELECT set_config('work_mem', %s, true)", (BM25_WORK_MEM,))
                floor, found = self._max_score_step(q, limit, ids, order[:essential], other, rest, budget)
            if found is not None:
                self.looked_up = [q.words[i] for i in other]
                return found
            essential += 1
            if floor >= rest:
                continue  # the floor held, but too many chunks to look up: one more word read instead
            # The floor only rises as words become essential: enough of them to bring the rest under today's
            # floor makes the next step the last; with no floor yet (fewer chunks than ``limit``), one more.
            while floor > 0 and essential < len(order) and rest_of(essential) > floor:
                essential += 1

    def _max_score_step(
        self, q: _Bm25, limit: int, ids: list[int], essential: list[int], other: list[int], rest: float, budget: int
    ) -> tuple[float, tuple[list[tuple[int, float]], dict[int, float]] | None]:
        """One step of ``keyword_search_and_score``: (the floor, (the best chunks, the scores of ``ids``)), or
        (the floor, None) when the other words' bounds (``rest``) exceed it or their look-ups would pass
        ``budget``."""
        args: dict = {"avgdl": q.avgdl, "rest": rest, "offset": max(limit - 1, 0), "limit": limit}
        args |= {"others": len(q.words) if other else 0, "budget": budget}
        ctes = self._phrase_ctes(q, args)
        rows = [self._words_rows(q, essential, "ess", args), *self._phrase_rows(q)]
        ctes += [
            f"e AS MATERIALIZED (SELECT m.chunk_id, sum(m.c) AS s FROM ({' UNION ALL '.join(rows)}) m GROUP BY 1)",
            "th AS MATERIALIZED (SELECT coalesce((SELECT s FROM e ORDER BY s DESC LIMIT 1 OFFSET %(offset)s), 0) AS low)",
            # the chunks that can still reach the floor (with a margin for rounding: partial sums are unordered)
            "cand AS MATERIALIZED (SELECT e.chunk_id FROM e, th"
            " WHERE th.low >= %(rest)s AND e.s + %(rest)s >= th.low * (1 - 1e-9))",
            # whether to go on: the floor held and the look-ups stay within the budget
            "go AS MATERIALIZED (SELECT th.low >= %(rest)s AND (SELECT count(*) FROM cand) * %(others)s <= %(budget)s"
            " AS ok FROM th)",
            # those chunks scored on every item (their postings looked up by key), as the chunks of ``ids`` are
            "ok AS (SELECT cand.chunk_id FROM cand WHERE (SELECT ok FROM go))",
            f"top AS ({self._scores_of(q, 'ok', args)})",
        ]
        sql = (
            f"WITH {', '.join(ctes)} SELECT ok::int::int8, low, 2 FROM th, go"
            " UNION ALL (SELECT chunk_id, score, 1 FROM top ORDER BY score DESC, chunk_id LIMIT %(limit)s)"
        )
        if ids:
            sql += f" UNION ALL SELECT i.*, 0 FROM ({self._ids_part(q, ids, args)}) i WHERE (SELECT ok FROM go)"
        rows = self.conn.execute(sql, args).fetchall()
        ok, floor = next((bool(r[0]), float(r[1])) for r in rows if r[2] == 2)
        if not ok:
            return floor, None
        best = [(int(r[0]), float(r[1])) for r in rows if r[2] == 1]
        best.sort(key=lambda x: (-x[1], x[0]))
        return floor, (best, {int(r[0]): float(r[1]) for r in rows if r[2] == 0})

    def keyword_matching(self, expression: str, ids: list[int] | None = None, limit: int = 1000) -> set[int]:
        """Chunks holding one exact item (a word, or a phrase in order): among ``ids``, else up to ``limit``."""
        item = pgterms.expression_item(expression)
        if not item:
            return set()
        s = self.s
        if len(item) == 1:
            sql, args = f"SELECT chunk_id FROM {s}.postings WHERE term = %s", [item[0]]
        else:
            sql, args = f"SELECT id FROM {s}.chunks WHERE tsv @@ %s::tsquery", [pgterms.tsquery_literal(item)]
        if ids is not None:
            sql += " AND chunk_id = ANY(%s)" if len(item) == 1 else " AND id = ANY(%s)"
            args.append([int(i) for i in ids])
        else:
            sql += " LIMIT %s"
            args.append(limit)
        return {int(r[0]) for r in self.conn.execute(sql, args)}

    def present_terms(self, expressions: list[str]) -> set[str]:
        """The keyword items that occur in at least one chunk: a word by one look-up in the postings' key."""
        items = {e: pgterms.expression_item(e) for e in dict.fromkeys(expressions)}
        words = sorted({item[0] for item in items.values() if len(item) == 1})
        found: set[str] = set()
        if words:
            rows = self.conn.execute(
                f"SELECT w FROM unnest(%s::text[]) AS w WHERE EXISTS (SELECT 1 FROM {self.s}.postings p WHERE p.term = w)",
                (words,),
            )
            found = {r[0] for r in rows}
        out = {e for e, item in items.items() if len(item) == 1 and item[0] in found}
        out |= {e for e, item in items.items() if len(item) > 1 and self.keyword_matching(e, limit=1)}
        return out

    def common_terms(self, expressions: list[str], share: float) -> set[str]:
        """The keyword items that occur in at least ``share`` of the chunks, as ``keywords.common`` says for FTS5:
        a word by its kept count, a phrase by counting its chunks up to the share."""
        items = {e: pgterms.expression_item(e) for e in dict.fromkeys(expressions)}
        words = sorted({item[0] for item in items.values() if len(item) == 1})
        total = self.vector_total()
        enough = max(1, math.ceil(share * total))
        found: set[str] = set()
        if words and total:
            df = self._df_sql("w")
            rows = self.conn.execute(f"SELECT w FROM unnest(%s::text[]) AS w WHERE ({df}) >= %s", (words, enough))
            found = {r[0] for r in rows}
        out = {e for e, item in items.items() if len(item) == 1 and item[0] in found}
        out |= {
            e
            for e, item in items.items()
            if len(item) > 1 and total and len(self.keyword_matching(e, limit=enough)) >= enough
        }
        return out


class PgSearchIndex:
    """``SearchIndex`` over a PostgreSQL store: HNSW for meaning, BM25 in SQL for keywords, one snapshot."""

    def __init__(self, store: PgStore, with_vectors: bool):
        self.store = store
        self.with_vectors = with_vectors
        self._count: int | None = None

    @property
    def generation(self) -> int:
        return self.store.generation

    def refresh(self) -> None:
        """Nothing is kept in memory: every query reads the database."""
        self._count = None

    @property
    def vector_count(self) -> int:
        if not self.with_vectors:
            return 0
        if self._count is None:
            self._count = self.store.vector_total()
        return self._count

    def snapshot(self):
        self._count = None  # what this snapshot sees
        return self.store.snapshot()

    def nearest(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.store.dense_search(query[0], k)

    def vector_of(self, chunk_id: int) -> np.ndarray | None:
        return self.store.vectors_of([chunk_id]).get(chunk_id)

    def cosines(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        return self.store.cosines(query[0], ids)

    def keyword_search(self, match: str, limit: int, also: list[int]):
        return self.store.keyword_search_and_score(match, limit, also)

    def keyword_scores(self, match: str, ids: list[int]) -> dict[int, float]:
        return self.store.keyword_scores(match, ids)

    def keyword_matching(self, expression: str, ids: list[int] | None = None, limit: int = 1000) -> set[int]:
        return self.store.keyword_matching(expression, ids, limit)

    def present_terms(self, expressions: list[str]) -> set[str]:
        return self.store.present_terms(expressions)

    def common_terms(self, expressions: list[str], share: float) -> set[str]:
        return self.store.common_terms(expressions, share)

    def chunk_rows(self, ids: list[int]) -> dict[int, ChunkRow]:
        return self.store.chunk_rows(ids)
