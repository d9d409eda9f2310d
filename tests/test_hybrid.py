"""Hybrid ranking: the keyword index kept in step with the chunks, the three modes, exact terms, CJK, --explain,
batch queries, model prefixes and reranking, in-process through the CLI with the real model."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, REPO, write_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.model.spec import default_model_path
from semsearch.storage import keywords as lexical
from semsearch.storage.store import FORMAT_VERSION


def hits_json(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def db(index_dir) -> sqlite3.Connection:
    return sqlite3.connect(index_dir / "index.sqlite3")


def fts_in_step(index_dir) -> None:
    """Every chunk, and nothing else, is in the keyword index, with the text the chunk holds."""
    with db(index_dir) as conn:
        chunks = {r[0]: lexical._row(*r)[1:] for r in conn.execute("SELECT id, heading, text FROM chunks")}
        fts = {r[0]: (r[1], r[2], r[3]) for r in conn.execute("SELECT rowid, body, cjk, pad FROM chunks_fts")}
    assert fts == chunks


ERRORS_CORPUS = {
    "ops/tls.md": "# TLS troubleshooting\n\nWhen the browser reports a secure connection failure during the TLS "
    "handshake, check the certificate chain, the protocol versions and the cipher suites the server offers.\n",
    "ops/proxy.md": "# Proxy\n\nThe office proxy intercepts HTTPS traffic with its own certificate authority; "
    "install its root certificate or browsers will refuse secure sites.\n",
    "ops/incidents.md": "# Incident log\n\nTuesday: the legacy load balancer on port 8443 answered with "
    "ERR_SSL_PROTOCOL after the firmware upgrade; rolled back at noon. Thursday: disk quota E1042 on the build host.\n",
    "notes/pool.md": "# Database settings\n\nThe connection pool keeps twenty connections open; raise the pool size "
    "when the workers queue.\n",
    "notes/pool-other.md": "# Swimming\n\nThe pool opens at seven. Bring a connection cable for the scoreboard.\n",
}


CJK_CORPUS = {
    "zh/db.txt": "数据库连接池的配置：最大连接数设置为一百，空闲超时为三十秒。\n",
    "zh/park.txt": "今天天气很好，我们去公园散步，看见一只小狗。\n",
    "zh/cat.txt": "我家的猫喜欢在窗台上晒太阳。\n",
    "ja/tokyo.txt": "東京の天気は明日から雨になるでしょう。\n",
    "en/notes.txt": "Plain English notes about gardening and tomatoes.\n",
}


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory):
    """One index of all the test corpora, for the tests that only query it (indexing is the slow part)."""
    from typer.testing import CliRunner

    from semsearch.cli.app import app

    base = tmp_path_factory.mktemp("shared")
    root = write_corpus(base / "docs", {**CORPUS, **ERRORS_CORPUS, **CJK_CORPUS})
    result = CliRunner().invoke(app, ["index", str(root), "--index", str(base / "index"), "-q"])
    assert result.exit_code == 0, result.output
    return root, base / "index"


@pytest.fixture
def ask(cli, shared_index, monkeypatch):
    """Run a command against the shared index, from inside its documents folder (paths print relative)."""
    root, index = shared_index
    monkeypatch.chdir(root)
    return lambda command, *args: cli(command, "--index", index, *args)


# -- the keyword index follows the chunks ---------------------------------------------------------------------------


def test_keyword_index_stays_in_step_through_add_update_and_delete(cli, corpus, isolated_home):
    cli("index", corpus)
    fts_in_step(isolated_home)
    query = ("query", "metronome", "--mode", "keyword", "--json")
    assert hits_json(cli(*query))[0]["path"].endswith("music/guitar.txt")

    (corpus / "music/guitar.txt").write_text("Practising piano\n\nScales with a ticking clock every morning.\n")
    (corpus / "music/drums.txt").write_text("Drumming\n\nKeep time with a metronome at sixty beats per minute.\n")
    cli("index", corpus)
    fts_in_step(isolated_home)
    paths = [h["path"] for h in hits_json(cli(*query))]
    assert paths and all(p.endswith("music/drums.txt") for p in paths)  # the old guitar text is gone
    assert hits_json(cli("query", "ticking clock", "--mode", "keyword", "--json"))[0]["path"].endswith("guitar.txt")

    (corpus / "music/drums.txt").unlink()
    cli("index", corpus)
    fts_in_step(isolated_home)
    assert cli(*query).exit_code == 1

    cli("remove", corpus / "music")
    fts_in_step(isolated_home)
    assert cli("query", "ticking clock", "--mode", "keyword").exit_code == 1


def test_keyword_index_follows_a_model_change(cli, corpus, isolated_home, tmp_path):
    cli("index", corpus)
    other = tmp_path / "other-model"
    shutil.copytree(default_model_path(), other)
    (other / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    assert cli("index", corpus, "--model", other, "--change-model").exit_code == 0
    fts_in_step(isolated_home)
    assert hits_json(cli("query", "metronome", "--mode", "keyword", "--json"))[0]["path"].endswith("guitar.txt")


def test_a_failed_write_leaves_both_indexes_as_they_were(cli, corpus, isolated_home):
    from semsearch.documents import Chunk
    from semsearch.storage.layout import IndexPaths
    from semsearch.storage.store import Store

    cli("index", corpus)
    store = Store.open(IndexPaths(isolated_home))
    with pytest.raises(RuntimeError), store.write() as gen:
        store.replace_file(gen, corpus / "new.txt", 1, 1, "x", [Chunk("zeppelin hangar", 1, 1)])
        raise RuntimeError("crash in the middle of a batch")
    store.close()
    fts_in_step(isolated_home)
    assert cli("query", "zeppelin", "--mode", "keyword").exit_code == 1


def test_an_index_from_before_the_keyword_index_upgrades_itself_on_open(cli, corpus, isolated_home):
    cli("index", corpus)
    with db(isolated_home) as conn:  # make it as the first format wrote it
        conn.execute("DROP TRIGGER chunks_fts_delete")
        conn.execute("DROP TABLE chunks_fts")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'format_version'")
    result = cli("query", "metronome", "--mode", "keyword", "--json")
    assert result.exit_code == 0 and hits_json(result)[0]["path"].endswith("guitar.txt")
    fts_in_step(isolated_home)
    assert json.loads(cli("status", "--json").stdout)["format_version"] == FORMAT_VERSION
    (corpus / "music/guitar.txt").unlink()  # and the upgraded index keeps in step from then on
    cli("index", corpus)
    fts_in_step(isolated_home)


def old_keyword_table(conn: sqlite3.Connection) -> None:
    """The keyword table as formats 2 and 3 made it (two columns, no padding), empty."""
    conn.execute("DROP TRIGGER chunks_fts_delete")
    conn.execute("DROP TABLE chunks_fts")
    conn.execute(f"CREATE VIRTUAL TABLE chunks_fts USING fts5(body, cjk, tokenize = '{lexical.TOKENIZER}')")
    conn.execute(
        "CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN DELETE FROM chunks_fts WHERE rowid = old.id; END"
    )


def test_an_index_from_before_the_padding_gains_it_on_open(cli, corpus, isolated_home):
    """Format 3's keyword table (two columns) is made anew with the padding column on open, and keeps in step."""
    cli("index", corpus)
    with db(isolated_home) as conn:
        old_keyword_table(conn)
        conn.executemany(
            "INSERT INTO chunks_fts (rowid, body, cjk) VALUES (?, ?, ?)",
            [lexical._row(*r)[:3] for r in conn.execute("SELECT id, heading, text FROM chunks").fetchall()],
        )
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'format_version'")
    result = cli("query", "metronome", "--mode", "keyword", "--json")
    assert result.exit_code == 0 and hits_json(result)[0]["path"].endswith("guitar.txt")
    assert json.loads(cli("status", "--json").stdout)["format_version"] == FORMAT_VERSION == 4
    fts_in_step(isolated_home)
    (corpus / "music/guitar.txt").unlink()
    cli("index", corpus)
    fts_in_step(isolated_home)


def test_bm25_counts_every_passage_pad_tokens_longer():
    """FTS5's bm25() with its fixed k1 1.2 and b 0.75, over lengths each PAD tokens longer: BM25 with a softer
    length normalisation, computed here by hand. A passage four times as long as another with the same word
    once loses less to it than plain BM25 would make it."""
    conn = sqlite3.connect(":memory:")
    lexical.create_table(conn)
    texts = ["tuning the engine", "tuning notes: " + " ".join(f"word{i}" for i in range(10))]
    texts += [f"unrelated passage {i} about gardens" for i in range(10)]
    lexical.add_chunks(conn, [(i, "", t) for i, t in enumerate(texts)])
    got = dict(lexical.search(conn, lexical.parse("tuning").match, 5))
    lengths = [len(lexical._WORD.findall(t)) for t in texts]
    n, avg = len(texts), sum(lengths) / len(texts)
    idf = math.log((n - 2 + 0.5) / (2 + 0.5))

    def bm25(dl: int, pad: int) -> float:
        return idf * 1 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * (dl + pad) / (avg + pad)))

    assert got == pytest.approx({0: bm25(lengths[0], lexical.PAD), 1: bm25(lengths[1], lexical.PAD)}, rel=1e-9)
    assert got[1] / got[0] > bm25(lengths[1], 0) / bm25(lengths[0], 0)


def test_no_query_finds_the_padding(cli, tmp_path, isolated_home):
    """The padding tokens ("0") are in every passage's own column, which no query searches: "0" finds only the
    passage that says 0."""
    write_corpus(tmp_path / "src", {"a.txt": "version 0 of the thing\n", "b.txt": "nothing numeric here\n"})
    assert cli("index", tmp_path / "src").exit_code == 0
    for query in ("0", '"0 0"', "0 0 0"):
        hits = hits_json(cli("query", query, "--mode", "keyword", "--all", "--json"))
        assert [Path(h["path"]).name for h in hits] == ["a.txt"], query


def test_camel_case_identifiers_are_found_by_their_words(cli, tmp_path, isolated_home):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/params.js").write_text("function parseParam(text) {\n  return text.split('=');\n}\n")
    (tmp_path / "src/other.js").write_text("function render(view) {\n  return view.html;\n}\n")
    cli("index", tmp_path / "src")
    for query in ("parse param", "parseParam", "ParseParams"):
        hits = hits_json(cli("query", query, "--mode", "keyword", "--json"))
        assert [Path(h["path"]).name for h in hits] == ["params.js"], query


def test_an_index_from_before_identifier_parts_gains_them_on_open(cli, tmp_path, isolated_home):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/params.js").write_text("function parseParam(text) {\n  return text.split('=');\n}\n")
    cli("index", tmp_path / "src")
    with db(isolated_home) as conn:  # the keyword index as format 2 wrote it: the text alone, two columns
        old_keyword_table(conn)
        conn.execute("INSERT INTO chunks_fts (rowid, body, cjk) SELECT id, text, '' FROM chunks")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    assert cli("query", "parse param", "--mode", "keyword", "--json").exit_code == 0
    assert json.loads(cli("status", "--json").stdout)["format_version"] == FORMAT_VERSION
    fts_in_step(isolated_home)


def test_the_query_that_upgrades_an_index_from_before_says_its_keyword_index_is_rebuilt(
    cli, semsearch_cmd, tmp_path, isolated_home
):
    """The upgrade to format 3 rebuilds the keyword index from every passage (minutes on millions of them): the
    query that opens a format-2 index says so on stderr, once; creating an index says nothing."""
    write_corpus(tmp_path / "src", {"params.js": "function parseParam(text) {\n  return text.split('=');\n}\n"})
    created = cli("index", tmp_path / "src")
    assert created.exit_code == 0 and "upgrading" not in created.stderr
    with db(isolated_home) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    first = semsearch_cmd("query", "parse param", "--mode", "keyword")
    assert first.returncode == 0, first.stderr
    notice = [line for line in first.stderr.splitlines() if "upgrading" in line]
    assert notice == [
        "semsearch: upgrading this index for this version of semsearch (once): its keyword index is rebuilt from "
        "1 passage, which can take a few minutes on a large index"
    ]
    again = semsearch_cmd("query", "parse param", "--mode", "keyword")
    assert again.returncode == 0 and "upgrading" not in again.stderr
    assert json.loads(cli("status", "--json").stdout)["format_version"] == FORMAT_VERSION


def test_an_index_opened_without_upgrade_is_read_as_it_is(cli, tmp_path, isolated_home):
    """``Store.open(upgrade=False)`` (the benchmarks' reading of another version's index) writes nothing: a format-2
    index stays format 2 and its metadata reads."""
    from semsearch.storage.layout import IndexPaths
    from semsearch.storage.store import Store

    write_corpus(tmp_path / "src", {"params.js": "function parseParam(text) {\n  return text.split('=');\n}\n"})
    assert cli("index", tmp_path / "src").exit_code == 0
    with db(isolated_home) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    store = Store.open(IndexPaths(isolated_home), upgrade=False)
    try:
        assert store.readonly and store.meta("format_version") == "2" and store.model_ref
        with pytest.raises(sqlite3.OperationalError):
            store.set_meta("format_version", "3")
    finally:
        store.close()
    with db(isolated_home) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()[0] == "2"


# -- what each mode finds -------------------------------------------------------------------------------------------


def test_exact_identifier_is_found_in_hybrid_mode_where_semantic_alone_misses_it(ask):
    semantic = hits_json(ask("query", "ERR_SSL_PROTOCOL", "--mode", "semantic", "--json", "-k", "1"))
    assert semantic[0]["path"] != "ops/incidents.md"
    hybrid = hits_json(ask("query", "ERR_SSL_PROTOCOL", "--json", "--explain"))
    assert hybrid[0]["path"] == "ops/incidents.md"
    assert hybrid[0]["explain"]["exact"] == ["ERR_SSL_PROTOCOL"]
    assert all(h["explain"]["exact"] == [] for h in hybrid[1:])


def test_quoted_phrase_ranks_exact_matches_first(ask):
    hits = hits_json(ask("query", '"connection pool"', "--json", "--explain", "-k", "3"))
    assert hits[0]["path"] == "notes/pool.md" and hits[0]["explain"]["exact"] == ['"connection pool"']
    # the swimming note has both words, but not together: it ranks after the exact match
    assert hits[1]["explain"]["exact"] == []


def test_one_quoted_word_is_a_word_of_the_query():
    """Quotes around one word of a question are emphasis ("restrict this to "extensible" languages", CACM):
    forcing every passage that holds the word first put the answers of two CACM questions out of the first ten.
    The word still counts through BM25; a phrase of two words or more still ranks its passages first, and an
    identifier in quotes is still an identifier."""
    parsed = lexical.parse('languages that allow "extensible" definitions')
    assert parsed.exact == [] and 'body : "extensible"' in parsed.terms
    assert lexical.parse('find "getUserById" now').exact_labels == ["getUserById"]
    assert lexical.parse('"connection pool" sizing').exact_labels == ['"connection pool"']
    assert lexical.parse("“tomato seedlings” in july").exact_labels == ['"tomato seedlings"']


def test_paraphrase_is_found_in_hybrid_mode_where_keyword_alone_misses_it(ask):
    query = "baking a loaf of bread at home"  # none of these words is in kitchen/sourdough.txt
    keyword = hits_json(ask("query", query, "--mode", "keyword", "--json", "-k", "50"))
    assert all(h["path"] != "kitchen/sourdough.txt" for h in keyword)
    assert hits_json(ask("query", query, "--json", "-k", "1"))[0]["path"] == "kitchen/sourdough.txt"


@pytest.mark.parametrize(
    "query, expected",
    [
        ("连接池", "zh/db.txt"),
        ("数据库", "zh/db.txt"),
        ("公园", "zh/park.txt"),
        ("猫", "zh/cat.txt"),
        ("天気", "ja/tokyo.txt"),
    ],
)
def test_chinese_and_japanese_words_are_found_by_keyword(ask, query, expected):
    keyword = hits_json(ask("query", query, "--mode", "keyword", "--json"))
    assert [h["path"] for h in keyword] == [expected]
    assert hits_json(ask("query", query, "--json", "-k", "1"))[0]["path"] == expected


def test_keyword_mode_does_not_load_the_embedding_model(cli, corpus, isolated_home):
    cli("index", corpus)
    code = (
        "import sys; from pathlib import Path; from semsearch.search.engine import search; from semsearch.search.hits import QueryOptions; "
        f"hits = search(Path({str(isolated_home)!r}), QueryOptions('metronome', mode='keyword', show_all=True)); "
        "print(hits[0].path.name, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["guitar.txt", "False", "False"], out.stderr


def test_a_word_the_query_says_twice_weighs_twice():
    """BM25's query-term frequency (as Lucene and bm25s count it): "memory" twice outweighs "pool" once where
    it did not once, in FTS5 itself; each distinct word is still one term of the query."""
    conn = sqlite3.connect(":memory:")
    lexical.create_table(conn)
    texts = [
        "memory allocation in the runtime",
        "a pool of threads for the runtime",
        "some notes on memory for another day",
    ] + [f"another note {i} about other things" for i in range(9)]
    lexical.add_chunks(conn, [(i, "", t) for i, t in enumerate(texts)])

    def best(query: str) -> str:
        return texts[lexical.search(conn, lexical.parse(query).match, 1)[0][0]]

    assert best("pool memory") == texts[1]  # "pool" is the rarer word
    assert best("memory pool, and memory") == texts[0]
    parsed = lexical.parse("memory pool, memory")
    assert parsed.terms == ['body : "memory"', 'body : "pool"'] and parsed.times == {'body : "memory"': 2}
    assert parsed.match.count('"memory"') == 2
    assert parsed.once(['body : "memory"']).match.count('"memory"') == 1


def _common_word_index(cli, tmp_path, rare: int = 0) -> Path:
    """An index of 120 passages (one a file), built by the command line: "bone" in 6 (5%, common),
    "somatotropin" and "marrow" in one each; "tomatoes" in ``rare`` of the fillers."""
    texts = [
        "somatotropin and the growth of the skeleton",  # the answer: the point of the question
        "bone marrow and the density of bone in the aged",
    ] + [f"bone studies, part {i}" for i in range(5)]
    texts += [
        f"filler passage {i} about mulch" + (" and tomatoes" if i < rare else "") for i in range(120 - len(texts))
    ]
    docs = tmp_path / "docs"
    docs.mkdir(parents=True)
    for i, t in enumerate(texts):
        (docs / f"p{i:03}.txt").write_text(t + "\n")
    folder = tmp_path / "index"
    assert cli("index", docs, "--index", folder).exit_code == 0
    return folder


def test_a_repeated_common_word_weighs_once(cli, tmp_path):
    """A word the index holds in 2% of its passages or more (``keywords.COMMON_SHARE``) weighs once however
    often the question says it: the passage about somatotropin ranks first for a question that names bone three
    times, where counting every "bone" put the bone passage first. A rare word said twice still weighs twice."""
    from semsearch.search import engine
    from semsearch.storage.access import open_for_search, open_store

    folder = _common_word_index(cli, tmp_path)
    text = "somatotropin as it affects bone, bone development, bone cells"
    store = open_store(folder)
    try:
        index = open_for_search(store, with_vectors=False)
        parsed = lexical.parse(text)
        assert parsed.times == {'body : "bone"': 3}
        with index.snapshot():
            assert index.common_terms(['body : "bone"', 'body : "somatotropin"'], 0.02) == {'body : "bone"'}
            assert engine.for_index(index, parsed).match.count('"bone"') == 1
            rare = lexical.parse("marrow, marrow and somatotropin")
            assert engine.for_index(index, rare).match.count('"marrow"') == 2
            # counted three times (as before), the bone passage would win: the rule is what changes the order
            by_all = index.keyword_search(parsed.match, 1, [])[0][0][0]
            assert index.chunk_rows([by_all])[by_all].text.startswith("bone marrow")
    finally:
        store.close()
    first = hits_json(cli("query", text, "--index", folder, "--mode", "keyword", "--json", "-k", "1"))[0]
    assert first["path"].endswith("p000.txt")


def test_common_share_counts_passages(cli, tmp_path):
    """A word in 2 of 120 passages (1.7%) is not common, in 3 (2.5%) it is; a phrase is counted alike."""
    from semsearch.storage.access import open_store

    items = ['body : "tomatoes"', 'body : "filler passage"', 'body : "zyxwvut"']
    for rare, common in ((2, {'body : "filler passage"'}), (3, {'body : "tomatoes"', 'body : "filler passage"'})):
        store = open_store(_common_word_index(cli, tmp_path / str(rare), rare))
        try:
            assert lexical.common(store.conn, items) == common
            assert lexical.common(store.conn, items, share=0.5) == {'body : "filler passage"'}
        finally:
            store.close()


# -- no query can break the keyword search --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=40)
    | st.lists(
        st.sampled_from(
            ['"', "*", "(", ")", "NEAR", "AND", "OR", "NOT", ":", "^", "-", "+", "{", "}", "x", "数据", " "]
        ),
        max_size=12,
    ).map("".join)
)
def test_no_query_text_is_an_fts5_syntax_error(text):
    conn = sqlite3.connect(":memory:")
    lexical.create_table(conn)
    lexical.add_chunks(conn, [(1, "", 'near and or not "x" 数据库'), (2, "h", "body text * ^")])
    parsed = lexical.parse(text)
    lexical.search(conn, parsed.match, 10)
    for expression in parsed.exact:
        lexical.matching(conn, expression, limit=10)
        lexical.matching(conn, expression, ids=[1, 2])


@pytest.mark.parametrize(
    "query", ['"', '"unclosed phrase', "NEAR(a b, 2)", "col:value", "a AND", "*", "-x", "^start", "{body}: x"]
)
def test_fts5_operators_in_a_query_are_plain_text(ask, query):
    result = ask("query", "--mode", "keyword", "--", query)
    assert result.exit_code in (0, 1) and result.stderr == ""
    assert ask("query", "--", query).exit_code in (0, 1)


# -- --explain -------------------------------------------------------------------------------------------------------


def test_explain_fields_are_present_and_consistent(ask):
    query = "retry network calls with exponential backoff"
    hybrid = hits_json(ask("query", query, "--json", "--explain", "-k", "6"))
    semantic = {  # (the score is the relevance; the raw cosine and BM25 are in explain)
        (h["path"], h["start_line"]): h["explain"]["dense_score"]
        for h in hits_json(ask("query", query, "--mode", "semantic", "--json", "--explain", "-k", "50"))
    }
    keyword = {
        (h["path"], h["start_line"]): h["explain"]["keyword_score"]
        for h in hits_json(ask("query", query, "--mode", "keyword", "--json", "--explain", "-k", "50"))
    }
    assert hybrid[0]["path"] == "code/retry.py"
    fused = []
    for hit in hybrid:
        e = hit["explain"]
        assert set(e) == {
            "mode",
            "dense_rank",
            "dense_score",
            "keyword_rank",
            "keyword_score",
            "fused_score",
            "exact",
            "rerank_score",
        }
        assert e["mode"] == "hybrid" and e["fused_score"] is not None and 0 <= hit["score"] <= 1  # the relevance
        # the dense and keyword scores are those the single modes give the same chunk
        assert e["dense_score"] == pytest.approx(semantic[(hit["path"], hit["start_line"])], abs=1e-5)
        key = (hit["path"], hit["start_line"])
        assert e["keyword_score"] == pytest.approx(keyword.get(key, 0.0), abs=1e-5)
        assert (e["keyword_rank"] is None) == (key not in keyword)
        fused.append(hit["score"])
    assert fused == sorted(fused, reverse=True)
    ranked = [h for h in hybrid if h["explain"]["dense_rank"] is not None]
    ranked.sort(key=lambda h: h["explain"]["dense_rank"])
    assert [h["explain"]["dense_score"] for h in ranked] == sorted(
        (h["explain"]["dense_score"] for h in ranked), reverse=True
    )
    text = ask("query", query, "--explain", "-k", "1").stdout
    assert "dense #" in text and "keyword #" in text and "fused " in text


# -- batch queries ---------------------------------------------------------------------------------------------------


def test_batch_queries_give_the_same_hits_as_single_queries(ask, tmp_path):
    queries = ["baking bread", "ERR_SSL_PROTOCOL handshake", '"API keys"', "guitar practice routine"]
    plain = tmp_path / "queries.txt"
    plain.write_text("\n".join(queries[:2]) + "\n\n" + "\n".join(queries[2:]) + "\n")
    jsonl = tmp_path / "queries.jsonl"
    jsonl.write_text("".join(json.dumps({"id": f"q{i}", "text": q}) + "\n" for i, q in enumerate(queries)))
    for mode in ("hybrid", "keyword"):
        singles = [hits_json(ask("query", q, "--json", "-k", "3", "--mode", mode)) for q in queries]
        by_line = hits_json(ask("query", "--queries", plain, "-k", "3", "--mode", mode))
        by_id = hits_json(ask("query", "--queries", jsonl, "-k", "3", "--mode", mode))
        for ids, rows in (([1, 2, 4, 5], by_line), ([f"q{i}" for i in range(4)], by_id)):
            for qid, single in zip(ids, singles, strict=True):
                batch = [r for r in rows if r["query_id"] == qid]
                assert [r["rank"] for r in batch] == list(range(1, len(single) + 1))
                assert [{k: v for k, v in r.items() if k not in ("query_id", "rank")} for r in batch] == single


def test_batch_queries_read_standard_input(shared_index):
    from typer.testing import CliRunner

    from semsearch.cli.app import app

    index = str(shared_index[1])
    stdin = '{"id": 7, "text": "metronome"}\n'
    result = CliRunner().invoke(app, ["query", "--index", index, "--queries", "-", "-l", "-k", "1"], input=stdin)
    assert result.exit_code == 0
    (row,) = hits_json(result)
    assert row["query_id"] == 7 and row["rank"] == 1 and row["path"].endswith("music/guitar.txt")


@pytest.mark.parametrize(
    "content, message",
    [("", "holds no queries"), ('{"id": 1, "text": "a"}\nnot json\n', "Line 2"), ('{"id": 1}\n', 'no "text"')],
)
def test_bad_queries_file_is_one_sentence(ask, tmp_path, content, message):
    file = tmp_path / "q.txt"
    file.write_text(content)
    result = ask("query", "--queries", file)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_query_and_queries_file_are_exclusive(ask, tmp_path):
    assert ask("query").exit_code == 2
    file = tmp_path / "q.txt"
    file.write_text("bread\n")
    result = ask("query", "bread", "--queries", file)
    assert result.exit_code == 2 and "either a query or --queries" in result.stderr
    bad_mode = ask("query", "bread", "--mode", "fuzzy")
    assert bad_mode.exit_code == 2 and "'fuzzy'" in bad_mode.stderr and "hybrid, semantic, keyword" in bad_mode.stderr


# -- prefixes for models trained with them ---------------------------------------------------------------------------


def _encode(model_dir, texts):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    return model.encode(texts, normalize_embeddings=True, prompt="")


def test_model_prompts_prefix_queries_and_documents(cli, tmp_path, isolated_home):
    model_dir = tmp_path / "e5-like"
    shutil.copytree(default_model_path(), model_dir)
    config = json.loads((model_dir / "config_sentence_transformers.json").read_text())
    config |= {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": "query"}
    (model_dir / "config_sentence_transformers.json").write_text(json.dumps(config))
    root = write_corpus(tmp_path / "docs", {"a.txt": "The lighthouse keeper logs every passing ship."})
    assert cli("index", root, "--model", model_dir).exit_code == 0
    with db(isolated_home) as conn:
        (text,) = conn.execute("SELECT text FROM chunks").fetchone()
        (blob,) = conn.execute("SELECT vector FROM embeddings").fetchone()
        prefixes = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'model_prefixes'").fetchone()[0])
    assert prefixes == {"query": "query: ", "document": "passage: "}
    stored = np.frombuffer(blob, dtype=np.float32)
    with_prefix, without = _encode(model_dir, ["passage: " + text, text])
    assert np.allclose(stored, with_prefix, atol=1e-5) and not np.allclose(stored, without, atol=1e-3)
    hit = hits_json(cli("query", "ships at sea", "--json", "--explain"))[0]
    (query_vec,) = _encode(model_dir, ["query: ships at sea"])
    assert hit["explain"]["dense_score"] == pytest.approx(float(query_vec @ stored), abs=1e-5)


def test_prefix_options_are_recorded_and_changing_them_needs_change_model(cli, corpus, isolated_home):
    assert cli("index", corpus, "--query-prefix", "query: ", "--document-prefix", "passage: ").exit_code == 0
    with db(isolated_home) as conn:
        meta = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'model_prefixes'").fetchone()[0])
    assert meta == {"query": "query: ", "document": "passage: "}
    assert cli("index", corpus).exit_code == 0  # the recorded prefixes are kept
    assert cli("query", "metronome practice", "-k", "1", "-l").stdout.strip().endswith("guitar.txt")
    before = json.loads(cli("status", "--json").stdout)["generation"]
    refused = cli("index", corpus, "--document-prefix", "doc: ")
    assert refused.exit_code == 2 and "--change-model" in refused.stderr
    assert json.loads(cli("status", "--json").stdout)["generation"] == before
    changed = cli("index", corpus, "--document-prefix", "", "--change-model")
    assert changed.exit_code == 0 and "0 chunks embedded" not in changed.stdout


# -- reranking -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A two-layer BERT cross-encoder with random weights and the packaged model's vocabulary, saved to disk."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = BertTokenizerFast(vocab_file=str(default_model_path() / "vocab.txt"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        num_labels=1,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder / "hf")
    tokenizer.save_pretrained(folder / "hf")
    CrossEncoder(str(folder / "hf"), device="cpu").save(str(folder / "model"))
    return folder / "model"


def test_rerank_reorders_hits_by_the_cross_encoder(ask, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    query = "how do I keep time when practising"
    hits = hits_json(ask("query", query, "--rerank", tiny_cross_encoder, "--json", "--explain", "-k", "4"))
    assert len(hits) == 4
    model = CrossEncoder(str(tiny_cross_encoder), device="cpu")
    expected = model.predict([(query, f"{h['heading']}\n{h['text']}" if h["heading"] else h["text"]) for h in hits])
    for hit, score in zip(hits, expected, strict=True):
        assert hit["explain"]["rerank_score"] == pytest.approx(float(score), abs=1e-5)
        assert hit["explain"]["fused_score"] is not None and 0 <= hit["score"] <= 1  # the score stays the relevance
    scores = [h["explain"]["rerank_score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    # all candidates were re-scored, not only the first k: the best of the top 30 by the cross-encoder leads
    pool = hits_json(ask("query", query, "--json", "-k", "30"))
    best = max(model.predict([(query, f"{h['heading']}\n{h['text']}" if h["heading"] else h["text"]) for h in pool]))
    assert hits[0]["explain"]["rerank_score"] == pytest.approx(float(best), abs=1e-5)


def test_rerank_with_a_missing_model_is_one_sentence(ask, tmp_path):
    result = ask("query", "bread", "--rerank", tmp_path / "no-such-model")
    assert result.exit_code == 2 and "No cross-encoder at" in result.stderr and "Traceback" not in result.stderr


# -- the benchmark's metrics -----------------------------------------------------------------------------------------


def test_benchmark_metrics_are_the_standard_formulas():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from beir_eval import ndcg_at, recall_at

    judged = {"a": 2, "b": 1, "c": 0}
    # gains 0 (x), 1 (b), 2 (a) at ranks 1..3; ideal 2, 1
    dcg = 1 / np.log2(3) + 2 / np.log2(4)
    idcg = 2 / np.log2(2) + 1 / np.log2(3)
    assert ndcg_at(["x", "b", "a"], judged) == pytest.approx(dcg / idcg)
    assert ndcg_at(["a", "b"], judged) == pytest.approx(1.0)
    assert ndcg_at(["b", "a"], judged, k=1) == pytest.approx(0.5)
    assert recall_at(["x", "b", "c"], judged) == 0.5 and recall_at(["a", "b"], judged, k=1) == 0.5
