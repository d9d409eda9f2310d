"""The PostgreSQL store on a real server: schema, files and chunks, BM25 as FTS5 computes it, HNSW search, faults."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

from semsearch import storespec
from semsearch.documents import Chunk
from semsearch.errors import IndexCorrupt, ModelMismatch, NoIndex, UsageError
from semsearch.model.spec import resolve_model
from semsearch.storage import keywords as lexical
from semsearch.storage.layout import IndexPaths
from semsearch.storage.postgres import FORMAT_VERSION, PgStore, StoreUnavailable
from semsearch.storage.store import Store, text_hash

DIM = 8

TEXTS = {
    "a.md": ["Rotating API keys every ninety days", "The admin console issues access tokens"],
    "b.txt": ["Sourdough starter: flour and water, fed every evening", "Bake in a covered cast-iron pot"],
    "c.md": ["Tomato seedlings curled in the July heat; mulch keeps soil moist", "tomatoes ripened in August"],
    "d.py": ["def with_backoff(call): retry flaky network calls with exponential backoff", "ConnectionError retries"],
    "e.txt": ["Guitar scales every morning with a metronome", "chord changes between G, C and D"],
    "f.md": ["Keys and tokens: rotate the keys, revoke old tokens", "東京の天気は晴れです 天気予報"],
}


def vec(text: str) -> np.ndarray:
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def chunks_of(texts: list[str]) -> list[Chunk]:
    return [Chunk(text=t, start_line=i + 1, end_line=i + 1) for i, t in enumerate(texts)]


def fill(store, root: Path, texts: dict[str, list[str]] = TEXTS) -> None:
    for name, parts in texts.items():
        chunks = chunks_of(parts)
        hashes = [text_hash(c.embed_text) for c in chunks]
        store.put_embeddings(hashes, np.stack([vec(c.embed_text) for c in chunks]))
        with store.write() as gen:
            store.replace_file(gen, root / name, 10, 1, "sha-" + name, chunks)


@pytest.fixture
def model():
    return resolve_model(None)


@pytest.fixture
def pg(pg_url, tmp_path, model):
    spec = storespec.parse(pg_url)
    store = PgStore.create(spec, IndexPaths(tmp_path / "local"), model, DIM)
    yield store
    store.close()


@pytest.fixture
def lite(tmp_path, model):
    store = Store.create(IndexPaths(tmp_path / "sqlite"), model, DIM)
    yield store
    store.close()


def test_create_open_and_meta(pg, pg_url, tmp_path, model):
    assert pg.dim == DIM and pg.model_ref == model.ref
    pg.check_model(model)
    again = PgStore.open(storespec.parse(pg_url), IndexPaths(tmp_path / "local"))
    try:
        assert again.meta("format_version") == str(FORMAT_VERSION)
    finally:
        again.close()


def test_files_chunks_and_replacing(pg, tmp_path):
    root = tmp_path / "docs"
    fill(pg, root)
    counts = pg.counts()
    assert counts["files"] == 6 and counts["chunks"] == 12
    files = pg.files()
    assert set(files) == {root / n for n in TEXTS}
    chunks = [Chunk(text="only one chunk now", start_line=1, end_line=3)]
    pg.put_embeddings([text_hash(chunks[0].embed_text)], vec("x")[None, :])
    with pg.write() as gen:
        pg.replace_file(gen, root / "a.md", 11, 2, "new", chunks)
    assert pg.counts()["chunks"] == 11
    rows = pg.chunk_rows([cid for cid, *_ in pg.chunk_places()])
    assert sorted(r.text for r in rows.values() if r.path == root / "a.md") == ["only one chunk now"]
    with pg.write() as gen:
        pg.delete_files(gen, [pg.files()[root / "b.txt"].id])
    assert pg.counts() == {"files": 5, "files_skipped": 0, "chunks": 9, "embeddings": 13}
    assert pg.drop_unused_embeddings() == 4  # a.md's two old chunks, b.txt's two
    # the BM25 statistics follow every change: as many chunks and terms as the chunks table holds
    n, tokens = pg.conn.execute(f"SELECT sum(chunks), sum(tokens) FROM {pg.s}.stats").fetchone()
    real = pg.conn.execute(f"SELECT count(*), sum(ntokens) FROM {pg.s}.chunks").fetchone()
    assert (n, tokens) == real
    # and each word's chunk count (delta rows, one a write, folded into one a word)
    assert pg.consistency_problems() == []
    deltas = f"SELECT count(*) FROM {pg.s}.terms WHERE delta"
    assert pg.conn.execute(deltas).fetchone()[0] > 0
    pg.compact_stats()
    assert pg.conn.execute(deltas).fetchone()[0] == 0
    assert pg.conn.execute(f"SELECT count(*) = count(DISTINCT term) FROM {pg.s}.terms").fetchone()[0]
    assert pg.consistency_problems() == []


def test_a_failed_write_changes_nothing(pg, tmp_path):
    fill(pg, tmp_path / "docs")
    before = pg.counts()
    with pytest.raises(RuntimeError), pg.write() as gen:
        pg.replace_file(gen, tmp_path / "docs" / "a.md", 1, 1, "x", [])
        raise RuntimeError("boom")
    assert pg.counts() == before


def test_another_origin_keeps_its_own_files(pg, pg_url, tmp_path):
    fill(pg, tmp_path / "docs")
    other = PgStore.open(storespec.parse(pg_url), IndexPaths(tmp_path / "other"), origin="laptop-2")
    try:
        assert other.files() == {}
        rows = other.chunk_rows([cid for cid, *_ in other.chunk_places()])
        assert all(str(r.path).startswith(f"{pg.origin}:") for r in rows.values())
    finally:
        other.close()


QUERIES = ["keys tokens", "rotate keys", "tomato heat mulch", "retry ConnectionError", "every", "天気", "東",
           "with_backoff", '"cast-iron pot"', "flour water starter evening", '"access tokens"', "revoke access.tokens",
           "keys and more keys to rotate", "天気 天気 雪"]  # fmt: skip


# a phrase twice in one chunk, once in another: FTS5 counts its frequency
PHRASES = {**TEXTS, "g.md": ["access tokens expire; access tokens are revoked", "old access tokens"]}


@pytest.mark.parametrize("query", QUERIES)
def test_bm25_matches_fts5(pg, lite, tmp_path, query):
    """Keyword scores in SQL equal FTS5's bm25() for the same chunks (words, CJK, identifiers, phrases: a phrase
    counted as often as a chunk holds it, "access tokens" twice in one chunk and once in another)."""
    fill(pg, tmp_path / "docs", PHRASES)
    fill(lite, tmp_path / "docs", PHRASES)
    parsed = lexical.parse(query)
    by_text_pg = {r.text: s for r, s in _scored(pg, pg.keyword_search(parsed.match, 50))}
    by_text_lite = {r.text: s for r, s in _scored(lite, lexical.search(lite.conn, parsed.match, 50))}
    assert by_text_lite, "the query matches something"
    assert by_text_pg.keys() == by_text_lite.keys()
    for text, score in by_text_lite.items():
        assert by_text_pg[text] == pytest.approx(score, rel=1e-6), text
    for expression, _label in zip(parsed.exact, parsed.exact_labels):
        pg_hits = {pg.chunk_rows([i])[i].text for i in pg.keyword_matching(expression)}
        lite_hits = {lite.chunk_rows([i])[i].text for i in lexical.matching(lite.conn, expression)}
        assert pg_hits == lite_hits


@pytest.mark.parametrize("query", QUERIES + ["zyxwvut keys", "with_backoff retried", "天気 雪"])
def test_present_terms_match_fts5(pg, lite, tmp_path, query):
    """Which of a query's words and phrases the index holds at all (the calibration's coverage): as FTS5 says."""
    fill(pg, tmp_path / "docs")
    fill(lite, tmp_path / "docs")
    parsed = lexical.parse(query)
    items = parsed.terms + parsed.exact
    assert pg.present_terms(items) == lexical.present(lite.conn, items)
    assert lexical.present(lite.conn, ['body : "zyxwvut"', 'body : "keys"']) == {'body : "keys"'}


def test_files_written_in_one_batch_are_as_written_one_by_one(pg, lite, tmp_path):
    """``replace_files``: many files in a few statements; a path given twice keeps its last state."""
    from semsearch.storage.interface import FileWrite

    docs = tmp_path / "docs"
    fill(lite, docs)
    batch = []
    for name, parts in TEXTS.items():
        chunks = chunks_of(parts)
        pg.put_embeddings([text_hash(c.embed_text) for c in chunks], np.stack([vec(c.embed_text) for c in chunks]))
        if name == "a.md":
            batch.append(FileWrite(docs / name, 1, 1, "first", chunks_of(["an earlier state of a.md"])))
        batch.append(FileWrite(docs / name, 10, 1, "sha-" + name, chunks))
    batch.append(FileWrite(docs / "skipped.bin", 3, 1, "sha-bin", [], "binary file"))
    with pg.write() as gen:
        pg.replace_files(gen, batch)
    assert pg.counts() == {"files": 7, "files_skipped": 1, "chunks": 12, "embeddings": 12}
    assert pg.files()[docs / "a.md"].sha256 == "sha-a.md"
    assert pg.consistency_problems() == []
    for query in ("keys tokens", "天気", "tomato heat mulch"):
        match = lexical.parse(query).match
        got = {r.text: s for r, s in _scored(pg, pg.keyword_search(match, 50))}
        want = {r.text: s for r, s in _scored(lite, lexical.search(lite.conn, match, 50))}
        assert got.keys() == want.keys() and all(got[t] == pytest.approx(want[t], rel=1e-6) for t in want)
    # replaced again in a batch: the old chunks and their postings go, in the same transaction
    again = chunks_of(["Keys and tokens again"])
    pg.put_embeddings([text_hash(again[0].embed_text)], vec("again")[None, :])
    with pg.write() as gen:
        pg.replace_files(gen, [FileWrite(docs / "a.md", 2, 2, "new", again)])
    assert pg.counts()["chunks"] == 11 and pg.consistency_problems() == []


def _zipf_texts(n: int) -> dict[str, list[str]]:
    """``n`` chunks of 8 words from a vocabulary of 200 drawn by Zipf's law (w0x in most chunks, w5x in a
    fifth, w100x in a few), 10 chunks a file: long posting lists for common words, as in real text."""
    rng = np.random.default_rng(3)
    vocab = [f"w{i}x" for i in range(200)]
    p = 1 / np.arange(1, 201)
    words = rng.choice(200, size=(n, 8), p=p / p.sum())
    texts = [" ".join(vocab[w] for w in row) for row in words]
    return {f"z{f}.txt": texts[f * 10 : f * 10 + 10] for f in range(n // 10)}


@pytest.mark.parametrize(
    "query",
    ["w0x w1x w30x", "w2x w5x w100x w0x", "w0x w1x", "w3x w3x w20x", "w7x w12x w25x w60x", '"w0x w1x" w35x', "w1x"],
)
def test_bm25_reads_common_words_only_when_they_can_change_the_best(pg, lite, tmp_path, query, monkeypatch):
    """MaxScore: the best chunks and the scores asked for are exactly those of the exhaustive BM25 (every
    posting read) and FTS5's, while a common word's postings are only looked up for the chunks that can still
    reach the best ``limit``."""
    from semsearch.storage import postgres

    texts = _zipf_texts(600)
    fill(pg, tmp_path / "docs", texts)
    fill(lite, tmp_path / "docs", texts)
    monkeypatch.setattr(postgres, "CHEAP_POSTINGS", 0)  # at this size every list is cheap: prune anyway
    match = lexical.parse(query).match
    asked = [cid for cid, *_ in pg.chunk_places()][::37]
    for limit, lookups in ((1, 5000), (5, 5000), (20, 5000), (5, 0), (20, 0)):
        # (no look-ups allowed past a fifth of the next list's length: more lists read instead)
        monkeypatch.setattr(postgres, "MIN_LOOKUPS", lookups)
        best, scores = pg.keyword_search_and_score(match, limit, asked)
        pruned = pg.looked_up
        monkeypatch.setattr(postgres, "PRUNE", False)
        all_best, all_scores = pg.keyword_search_and_score(match, limit, asked)
        monkeypatch.setattr(postgres, "PRUNE", True)
        assert pg.looked_up == []
        assert [i for i, _ in best] == [i for i, _ in all_best], (best, all_best)
        assert [s for _, s in best] == pytest.approx([s for _, s in all_best], rel=1e-12)
        assert scores.keys() == all_scores.keys() and all(
            scores[i] == pytest.approx(all_scores[i], rel=1e-12) for i in scores
        )
        # FTS5 gives the same scores (its order among equal scores is its own)
        want = lexical.search(lite.conn, match, limit)
        assert [s for _, s in best] == pytest.approx([s for _, s in want], rel=1e-6)
        if len(set(query.split())) >= 3 and limit <= 5 and lookups:  # (a word said twice weighs twice: no pruning)
            assert pruned, "a common word's postings were read in full"


def _scored(store, pairs):
    rows = store.chunk_rows([i for i, _ in pairs])
    return [(rows[i], s) for i, s in pairs]


def test_dense_search_finds_the_nearest(pg, tmp_path):
    fill(pg, tmp_path / "docs")
    ids, vectors = pg.vectors_since(0)
    assert vectors.shape == (12, DIM)
    query = vec("Bake in a covered cast-iron pot")
    exact = sorted(zip(ids.tolist(), (vectors @ query).tolist()), key=lambda x: -x[1])
    found = pg.dense_search(query, 5)
    assert [i for i, _ in found] == [i for i, _ in exact[:5]]
    assert found[0][1] == pytest.approx(1.0, abs=1e-5)
    assert pg.cosines(query, [exact[3][0]])[exact[3][0]] == pytest.approx(exact[3][1], abs=1e-5)


def test_ef_search_grows_with_the_index_size():
    from semsearch.storage import postgres as pgstore

    small = pgstore.ef_search_for(1_000, 10)
    assert small == pgstore.ef_search_for(pgstore.EF_SEARCH_FROM, 10) == pgstore.EF_SEARCH
    assert pgstore.ef_search_for(1_000_000, 10) == pgstore.EF_SEARCH_AT_MILLION
    middle = pgstore.ef_search_for(300_000, 10)
    assert pgstore.EF_SEARCH < middle < pgstore.EF_SEARCH_AT_MILLION
    ten_million = pgstore.ef_search_for(10_000_000, 10)  # as much again per tenfold size
    assert ten_million - pgstore.EF_SEARCH_AT_MILLION == pgstore.EF_SEARCH_AT_MILLION - pgstore.EF_SEARCH
    assert pgstore.ef_search_for(10**15, 10) == pgstore.EF_SEARCH_LIMIT == 1000  # pgvector's limit
    assert pgstore.ef_search_for(1_000, 700) == 700  # never under the depth asked
    assert pgstore.ef_search_for(1_000, 5_000) == 1000


def test_the_search_sets_ef_search_from_the_index_size(pg, tmp_path):
    from semsearch.storage import postgres as pgstore

    fill(pg, tmp_path / "docs")
    with pg.conn.transaction():
        assert pg._set_ef_search(10) == pgstore.EF_SEARCH
        assert pg.conn.execute("SHOW hnsw.ef_search").fetchone()[0] == str(pgstore.EF_SEARCH)
    # the index grown to a million passages, as its kept statistics say (no million vectors written here)
    pg.conn.execute(f"INSERT INTO {pg.s}.stats (chunks, tokens) VALUES (%s, 0)", (1_000_000 - pg.vector_total(),))
    pg.conn.commit()
    with pg.conn.transaction():
        assert pg._set_ef_search(10) == pgstore.EF_SEARCH_AT_MILLION
        assert pg.conn.execute("SHOW hnsw.ef_search").fetchone()[0] == str(pgstore.EF_SEARCH_AT_MILLION)
        assert pg.conn.execute("SHOW hnsw.iterative_scan").fetchone()[0] == "off"
    with pg.conn.transaction():
        assert pg._set_ef_search(2_000) == 1000
        assert pg.conn.execute("SHOW hnsw.iterative_scan").fetchone()[0] == "strict_order"
    assert len(pg.dense_search(vec("bread"), 3)) == 3  # the search itself, at that setting


def _graph_options(store) -> set[str]:
    return set(
        store.conn.execute(
            f"SELECT reloptions FROM pg_class WHERE oid = '{store.s}.chunks_vector'::regclass"
        ).fetchone()[0]
    )


def test_the_graph_is_built_and_rebuilt_with_the_current_parameters(pg, tmp_path):
    from semsearch.storage import postgres as pgstore

    now = {f"m={pgstore.HNSW_M}", f"ef_construction={pgstore.HNSW_EF_CONSTRUCTION}"}
    assert _graph_options(pg) == now
    fill(pg, tmp_path / "docs")
    # a graph an older semsearch built with other parameters
    pg.conn.execute(f"DROP INDEX {pg.s}.chunks_vector")
    pg.conn.execute(
        f"CREATE INDEX chunks_vector ON {pg.s}.chunks USING hnsw (vector vector_ip_ops) WITH (m = 4, ef_construction = 8)"
    )
    pg.conn.commit()
    assert _graph_options(pg) == {"m=4", "ef_construction=8"}
    pg.sync_vectors()  # an ordinary index run leaves it as it is
    assert _graph_options(pg) == {"m=4", "ef_construction=8"}
    assert "rebuilt" in pg.sync_vectors(rebuild=True)  # index --rebuild
    assert _graph_options(pg) == now
    query = vec("Bake in a covered cast-iron pot")
    assert pg.dense_search(query, 3) == pg.dense_search(query, 3, exact=True)


# -- faults: one sentence, nothing changed ----------------------------------------------------------------------


def test_no_index_yet(pg_url, tmp_path):
    with pytest.raises(NoIndex, match="No index 'other'"):
        PgStore.open(storespec.parse(pg_url + "&index=other"), IndexPaths(tmp_path))


def test_missing_vector_extension(pg_server, tmp_path, model):
    url = pg_server.create_database("novector", vector=False)
    with pytest.raises(StoreUnavailable, match="CREATE EXTENSION vector"):
        PgStore.create(storespec.parse(url), IndexPaths(tmp_path), model, DIM)
    assert (
        pg_server.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'semsearch'", database="novector").strip()
        == "0"
    )


def test_unreachable_server_and_bad_url(tmp_path, model):
    with pytest.raises(StoreUnavailable, match="Cannot connect") as e:
        PgStore.open(storespec.parse(f"postgresql://me:s3cret@/db?host={tmp_path}/nowhere"), IndexPaths(tmp_path))
    assert "s3cret" not in str(e.value) and "****" in str(e.value)
    with pytest.raises(UsageError, match="not a valid PostgreSQL URL"):
        PgStore.open(storespec.parse("postgresql://me@/db?colour=red"), IndexPaths(tmp_path))
    with pytest.raises(UsageError, match="index name"):
        storespec.parse("postgresql://me@/db?index=Bad-Name")


def test_no_permission(pg, pg_server, pg_url, tmp_path):
    fill(pg, tmp_path / "docs")
    pg_server.psql("CREATE ROLE store_reader LOGIN")
    url = pg_url.replace("postgres@", "store_reader@")
    with pytest.raises(StoreUnavailable, match="GRANT USAGE ON SCHEMA semsearch TO store_reader"):
        PgStore.open(storespec.parse(url), IndexPaths(tmp_path))
    database = pg.conn.info.dbname
    pg_server.psql("GRANT USAGE ON SCHEMA semsearch TO store_reader; GRANT SELECT ON ALL TABLES IN SCHEMA semsearch TO store_reader",
                   database=database)  # fmt: skip
    store_reader = PgStore.open(storespec.parse(url), IndexPaths(tmp_path))
    try:
        assert store_reader.counts()["chunks"] == 12  # a read-only role can query
    finally:
        store_reader.close()


def test_newer_format_and_other_model(pg, pg_url, tmp_path, model):
    from dataclasses import replace

    with pytest.raises(ModelMismatch, match="was built with the model"):
        pg.check_model(replace(model, fingerprint="another"))
    pg.set_meta("format_version", "99")
    with pytest.raises(IndexCorrupt, match="newer semsearch"):
        PgStore.open(storespec.parse(pg_url), IndexPaths(tmp_path))


def test_masking():
    assert storespec.mask("postgresql://bob:hunter2@db.example/x") == "postgresql://bob:****@db.example/x"
    assert storespec.mask("host=db password=hunter2 user=bob") == "host=db password=**** user=bob"
    spec = storespec.parse("postgresql://bob:hunter2@db.example/x?index=team&sslmode=require")
    assert spec.name == "team" and "index" not in spec.conninfo and "hunter2" not in spec.where


FORMAT_1 = Path(__file__).parent / "fixtures" / "pg_format1.sql"


def load_format_1(pg_url: str, name: str) -> storespec.PgSpec:
    """The format-1 index of the fixture, as schema ``name``; its spec."""
    import psycopg

    spec = storespec.parse(f"{pg_url}&index={name}")
    with psycopg.connect(spec.conninfo, autocommit=True) as conn:
        conn.execute(FORMAT_1.read_text().replace("oldformat", name))
    return spec


def fkeys(store) -> list[str]:
    rows = store.conn.execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND connamespace = %s::regnamespace ORDER BY 1",
        (store.s,),
    )
    return [r[0] for r in rows]


def test_an_index_of_format_1_is_upgraded_when_opened(pg_url, tmp_path, model, caplog):
    old = load_format_1(pg_url, "format_one")
    with caplog.at_level("WARNING", logger="semsearch"):
        store = PgStore.open(old, IndexPaths(tmp_path / "local"), origin="build-host")
    # the upgrades that rewrite the keyword postings say so first (minutes on a large index)
    notices = [r.getMessage() for r in caplog.records if "upgrading" in r.getMessage()]
    assert len(notices) == 2 and all("passages" in n and "format_one" in n for n in notices), notices
    assert "format 3 to 4" in notices[1]
    try:
        assert store.meta("format_version") == str(FORMAT_VERSION) == "4"
        assert fkeys(store) == ["chunks_file_id_fkey"]  # format 2: postings without a foreign key
        # format 4: the postings' key covers frequency and length; each word's chunk count kept (and checked)
        key = store.conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = 'postings_pkey'",
                                 (store.s,)).fetchone()[0]  # fmt: skip
        assert key.endswith("(term, chunk_id) INCLUDE (tf, dl)")
        counts = dict(store.conn.execute(f"SELECT term, df FROM {store.s}.terms").fetchall())
        assert counts and counts == dict(
            store.conn.execute(f"SELECT term, count(*) FROM {store.s}.postings GROUP BY 1")
        )
        assert store.consistency_problems() == []
        # what it holds reads as before, and ranks as a fresh index of the same files does
        docs = Path("/docs")
        assert set(store.files()) == {docs / n for n in TEXTS if n != "e.txt"}
        fresh = PgStore.create(storespec.parse(f"{pg_url}&index=format_two"), IndexPaths(tmp_path / "l2"), model, DIM)
        try:
            fill(fresh, docs, {n: t for n, t in TEXTS.items() if n != "e.txt"})
            # format 3: postings cut again, with the words of camelCase identifiers (ConnectionError)
            assert store.keyword_search(lexical.parse("connection error").match, 10)
            for words in ("keys tokens", "tomato heat", "天気", "connection error", "ConnectionError"):
                match = lexical.parse(words).match
                got = sorted(s for _, s in store.keyword_search(match, 10))
                assert got and got == pytest.approx(sorted(s for _, s in fresh.keyword_search(match, 10)), abs=1e-9)
        finally:
            fresh.close()
        # writing it now deletes a replaced chunk's postings with it (no foreign key does it any more)
        chunks = chunks_of(["rotate keys yearly"])
        store.put_embeddings([text_hash(chunks[0].embed_text)], vec("rotate")[None, :])
        with store.write() as gen:
            store.replace_file(gen, docs / "a.md", 5, 5, "new", chunks)
            store.delete_files(gen, [store.files()[docs / "b.txt"].id])
        assert store.consistency_problems() == []
        assert store.counts()["chunks"] == 7
    finally:
        store.close()
    again = PgStore.open(old, IndexPaths(tmp_path / "local"))  # opened again: nothing left to upgrade
    try:
        assert again.format_version == FORMAT_VERSION
    finally:
        again.close()


def test_a_role_that_may_not_upgrade_reads_the_older_format_and_is_told_who_must(pg_server, pg_url, tmp_path):
    import psycopg

    old = load_format_1(pg_url, "format_one_ro")
    pg_server.psql("CREATE ROLE upgrade_reader LOGIN")
    with psycopg.connect(old.conninfo, autocommit=True) as conn:
        database = conn.info.dbname
    pg_server.psql(
        "GRANT USAGE ON SCHEMA format_one_ro TO upgrade_reader;"
        " GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA format_one_ro TO upgrade_reader;"
        " GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA format_one_ro TO upgrade_reader",
        database=database,
    )
    spec = storespec.parse(f"{pg_url.replace('postgres@', 'upgrade_reader@')}&index=format_one_ro")
    reader = PgStore.open(spec, IndexPaths(tmp_path / "local"), origin="build-host")
    try:
        assert reader.format_version == 1 and reader.meta("format_version") == "1"  # not upgraded, still read
        assert reader.counts()["chunks"] == 10
        assert reader.keyword_search(lexical.parse("tokens").match, 10)
        with pytest.raises(StoreUnavailable, match=r"older format \(1\).*role upgrade_reader may not alter"):
            with reader.write():
                pass
        assert reader.counts()["chunks"] == 10
    finally:
        reader.close()


def test_a_deadlock_with_another_writer_is_run_again(pg, pg_url, tmp_path):
    """Two writers locking two files in opposite orders: PostgreSQL aborts one; its work runs again and lands."""
    import threading

    import psycopg

    docs = tmp_path / "docs"
    fill(pg, docs)
    x, y = pg.files()[docs / "a.md"].id, pg.files()[docs / "b.txt"].id
    other = psycopg.connect(storespec.parse(pg_url).conninfo, autocommit=True)
    other.execute("SET deadlock_timeout = '60s'")  # the other writer waits longest: PostgreSQL aborts ours
    pg.conn.execute("SET deadlock_timeout = '100ms'")
    other_has_y, ours_has_x, other_done = threading.Event(), threading.Event(), threading.Event()

    def other_writer() -> None:
        try:
            with other.transaction():
                other.execute(f"UPDATE {pg.s}.files SET size = 99 WHERE id = %s", (y,))
                other_has_y.set()
                assert ours_has_x.wait(30)
                other.execute(f"UPDATE {pg.s}.files SET size = 99 WHERE id = %s", (x,))  # waits for ours
        finally:
            other_done.set()

    attempts = []

    def work() -> None:
        attempts.append(len(attempts) + 1)
        with pg.write():
            pg.touch_file(x, 7, 7)
            if len(attempts) == 1:
                assert other_has_y.wait(30)
                ours_has_x.set()
                time.sleep(0.2)  # the other writer is waiting for x now
            pg.touch_file(y, 7, 7)  # the first time: waits for the other writer, which waits for us

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        pg.retrying(work)
    finally:
        thread.join(30)
        other.close()
    assert other_done.is_set() and attempts == [1, 2]
    sizes = dict(pg.conn.execute(f"SELECT id, size FROM {pg.s}.files WHERE id = ANY(%s)", ([x, y],)).fetchall())
    assert sizes == {x: 7, y: 7}  # ours ran again after the other writer committed, and landed last
    assert pg.consistency_problems() == []


def test_common_terms_match_fts5(pg, lite, tmp_path):
    """Which of a query's repeated words the index holds too often to count twice (in ``share`` of its chunks or
    more; ``keywords.COMMON_SHARE`` by default): as FTS5 says, at several shares."""
    fill(pg, tmp_path / "docs")
    fill(lite, tmp_path / "docs")
    parsed = lexical.parse('every keys, keys and tokens: tokens 天気 天気 zyxwvut mulch "access tokens"')
    items = parsed.terms + parsed.exact
    assert 'body : "access tokens"' in items  # a phrase, in 1 of 12 chunks: common at 1%, not at 15%
    assert lexical.common(lite.conn, items, 0.2) == {'body : "every"'}  # 3 of 12 chunks; keys and tokens 2
    assert lexical.common(lite.conn, items, 0.15) == {'body : "every"', 'body : "keys"', 'body : "tokens"'}
    for share in (0.01, 0.15, 0.2, 0.5, lexical.COMMON_SHARE):
        assert pg.common_terms(items, share) == lexical.common(lite.conn, items, share), share
    assert pg.common_terms(items, 0.01) == pg.present_terms(items)  # at 1% of 12 chunks: every word held
