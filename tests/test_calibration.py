"""Scores people can read: every hit's score is a calibrated relevance in [0, 1], monotone in the raw evidence; a
query with nothing relevant in the index says so (exit 1, one sentence on stderr) unless --all asks for the closest
passages anyway. The real model and a real index of real files, through the CLI in-process, the installed command
and the MCP SDK's own client."""

from __future__ import annotations

import dataclasses
import json
import math

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.search import calibration
from semsearch.search.calibration import Evidence

pytestmark = pytest.mark.default_cutoff

FOREIGN = "zebra migration patterns across the african savanna"
ANSWERED = "how do I rotate the api keys"
NO_MATCH = "no passage matches this query well"


def hits_of(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_the_shipped_calibration_is_complete():
    cal = calibration.load()
    assert set(cal.models) == {"hybrid", "semantic", "keyword"}
    assert 0 < cal.threshold < 1
    for model in cal.models.values():
        assert model.names and len(model.names) == len(model.coef)
        assert set(model.names) <= set(calibration.FEATURES)
        assert all(math.isfinite(c) for c in [*model.coef, model.intercept])


evidence = st.builds(
    Evidence,
    rank=st.integers(1, 300),
    dense=st.floats(-0.3, 1.0),
    keyword=st.floats(0.0, 60.0),
    fused=st.floats(-4.0, 8.0),
    exact=st.integers(0, 3),
    top_dense=st.floats(-0.3, 1.0),
    top_keyword=st.floats(0.0, 60.0),
    mean_dense=st.floats(-0.3, 1.0),
    terms=st.integers(0, 12),
    coverage=st.one_of(st.none(), st.floats(0.0, 1.0)),
)


def consistent(e: Evidence) -> Evidence:
    """The best candidate's cosine and BM25 are at least this hit's; the mean cosine at most the best."""
    top_dense = max(e.top_dense, e.dense)
    return dataclasses.replace(
        e, top_dense=top_dense, top_keyword=max(e.top_keyword, e.keyword), mean_dense=min(e.mean_dense, top_dense)
    )


@settings(max_examples=400, deadline=None)
@given(evidence, st.sampled_from(["hybrid", "semantic", "keyword"]), st.floats(0.0, 0.5), st.floats(0.0, 20.0))
def test_relevance_is_a_probability_monotone_in_the_hits_own_evidence(e, mode, more_cosine, more_bm25):
    cal = calibration.load()
    e = consistent(e)
    p = cal.relevance(mode, e)
    assert 0.0 <= p <= 1.0
    # more cosine, more BM25, a better fused score: never a lower relevance
    better = consistent(
        dataclasses.replace(
            e, dense=e.dense + more_cosine, keyword=e.keyword + more_bm25, fused=e.fused + more_cosine + more_bm25
        )
    )
    assert cal.relevance(mode, better) >= p - 1e-12
    # a worse place, or an exact term fewer: never a higher one
    assert cal.relevance(mode, dataclasses.replace(e, rank=e.rank + 7)) <= p + 1e-12
    assert cal.relevance(mode, dataclasses.replace(e, exact=e.exact + 1)) >= p - 1e-12


@settings(max_examples=400, deadline=None)
@given(evidence, st.sampled_from(["hybrid", "semantic", "keyword"]), st.floats(0.0, 0.5), st.floats(0.0, 1.0))
def test_the_gate_is_a_probability_monotone_in_the_querys_evidence(e, mode, more_cosine, more_coverage):
    """More cosine for the best candidate, more BM25, more of the query's words in the index: never less likely
    to be answered; a hit at least ``sure`` is shown whatever the gate says."""
    cal = calibration.load()
    assert cal.gates, "the shipped calibration has a gate"
    e = consistent(e)
    p = cal.answerable(mode, e)
    assert 0.0 <= p <= 1.0
    better = dataclasses.replace(
        e,
        top_dense=e.top_dense + more_cosine,
        top_keyword=e.top_keyword + 10 * more_coverage,
        coverage=min(1.0, (1.0 if e.coverage is None else e.coverage) + more_coverage),
    )
    assert cal.answerable(mode, better) >= p - 1e-12
    assert cal.answers(mode, e, cal.sure)
    assert cal.answers(mode, e, 0.0) == (p >= cal.gates[mode].threshold)


def test_the_gate_turns_away_a_query_whose_words_the_index_lacks():
    """The same best cosine, with every word of the query in the index or none: only the first is answered."""
    cal = calibration.load()
    for mode in ("hybrid", "semantic"):
        cut = cal.gates[mode].threshold
        cosines = [c / 100 for c in range(0, 100)]
        at = [c for c in cosines if cal.answerable(mode, Evidence(rank=1, top_dense=c, coverage=1.0)) >= cut]
        assert at, "a close enough passage is answered"
        lowest = at[0]
        assert cal.answerable(mode, Evidence(rank=1, top_dense=lowest, coverage=0.0)) < cut


def test_relevance_moves_with_each_raw_signal_of_the_mode():
    """Not a constant: the cosine moves hybrid and semantic relevance, BM25 moves keyword relevance."""
    cal = calibration.load()
    weak = Evidence(rank=1, dense=0.1, keyword=0.5, fused=0.1, top_dense=0.1, top_keyword=0.5, mean_dense=0.05, terms=3)
    strong = Evidence(
        rank=1, dense=0.7, keyword=15.0, fused=3.0, top_dense=0.7, top_keyword=15.0, mean_dense=0.2, terms=3
    )
    for mode in ("hybrid", "semantic", "keyword"):
        assert cal.relevance(mode, strong) > cal.relevance(mode, weak) + 0.3
    assert cal.relevance("hybrid", weak) < cal.threshold < cal.relevance("hybrid", strong)


def test_a_query_that_matches_shows_its_relevant_hits_with_readable_scores(cli, index_dir):
    result = cli("query", ANSWERED, "--index", index_dir, "--json")
    assert result.exit_code == 0
    hits = hits_of(result)
    assert hits[0]["path"].endswith("ops/credentials.md")
    assert hits[0]["score"] >= calibration.load().threshold
    assert all(0.0 <= h["score"] <= 1.0 for h in hits)
    assert not any(h["path"].endswith("sourdough.txt") for h in hits)  # nothing to do with api keys: left out
    every = hits_of(cli("query", ANSWERED, "--index", index_dir, "--json", "--all"))
    assert len(every) == 6 and any(h["path"].endswith("sourdough.txt") for h in every)  # one passage per file
    assert all(0.0 <= h["score"] <= 1.0 for h in every)
    assert every[: len(hits)] == hits  # the same hits, the same scores; --all only adds the weak ones


def test_each_store_says_which_of_the_querys_words_it_holds(index_dir):
    """The gate's coverage: a word of the corpus is found (stemmed as the index stems it), a made-up one not."""
    from semsearch.storage import keywords as lexical
    from semsearch.storage.access import open_for_search, open_store

    store = open_store(index_dir)
    try:
        index = open_for_search(store, with_vectors=False)
        parsed = lexical.parse("rotated keys zyxwvut sourdough with_backoff")  # "rotated": stemmed as "Rotating"
        items = parsed.terms + parsed.exact
        assert 'body : "zyxwvut"' in items and 'body : "with backoff"' in items  # (a phrase: the identifier)
        with index.snapshot():
            found = index.present_terms(items)
        assert found == set(items) - {'body : "zyxwvut"'}
    finally:
        store.close()


def test_a_query_about_another_project_says_no_match_where_the_cut_off_alone_would_not(cli, index_dir):
    """Close in meaning to the retry code, but in words of another project the folder does not hold: the gate
    answers "no match", where the hits' cut-off alone (``--min-score`` at its value) would show the retry code."""
    other = "polly wait and retry policy in dotnet"
    result = cli("query", other, "--index", index_dir)
    assert result.exit_code == 1 and result.stdout == "" and NO_MATCH in result.stderr
    cut_off = str(calibration.load().threshold)
    alone = hits_of(cli("query", other, "--index", index_dir, "--json", "--min-score", cut_off))
    assert alone and alone[0]["path"].endswith("code/retry.py")
    every = hits_of(cli("query", other, "--index", index_dir, "--all", "--json"))
    assert every[: len(alone)] == alone and all(h["score"] < calibration.load().sure for h in every)


def test_explain_still_shows_the_raw_parts(cli, index_dir):
    (hit,) = hits_of(cli("query", ANSWERED, "--index", index_dir, "--json", "--explain", "-k", "1"))
    raw = hit["explain"]
    assert raw["dense_score"] > 0.3 and raw["keyword_score"] > 0 and raw["fused_score"] is not None
    assert raw["fused_score"] != hit["score"]
    text = cli("query", ANSWERED, "--index", index_dir, "--explain", "-k", "1").stdout
    assert "dense #1" in text and "keyword #1" in text and "fused" in text


def test_a_foreign_query_says_no_match_on_stderr_and_exits_1(cli, index_dir):
    for extra in ([], ["--json"], ["-l"], ["--format", "vimgrep"]):
        result = cli("query", FOREIGN, "--index", index_dir, *extra)
        assert result.exit_code == 1
        assert result.stdout == ""
        (line,) = result.stderr.strip().splitlines()
        assert NO_MATCH in line and "--all" in line
    shown = cli("query", FOREIGN, "--index", index_dir, "--all", "-k", "3", "--json")
    assert shown.exit_code == 0 and shown.stderr == ""
    scores = [h["score"] for h in hits_of(shown)]
    assert len(scores) == 3 and all(0.0 <= s < calibration.load().threshold for s in scores)


def test_min_score_is_a_floor_on_the_relevance(cli, index_dir):
    def scores(*extra):
        return [h["score"] for h in hits_of(cli("query", ANSWERED, "--index", index_dir, "--json", *extra))]

    every = scores("--all")
    assert scores("--min-score", "0") == every  # a floor of 0: the best k whatever their score
    distinct = sorted(set(every))
    floor = (distinct[len(distinct) // 2 - 1] + distinct[len(distinct) // 2]) / 2  # between two scores
    assert scores("--min-score", str(floor)) == [s for s in every if s >= floor]
    above = cli("query", ANSWERED, "--index", index_dir, "--min-score", "0.99999")
    assert above.exit_code == 1 and above.stdout == ""
    (line,) = above.stderr.strip().splitlines()
    assert "relevance of 0.99999 or more" in line and "--min-score" in line and "--all" in line


def test_the_installed_command_abstains_and_shows_all(semsearch_cmd, index_dir):
    none = semsearch_cmd("query", FOREIGN, "--index", index_dir)
    assert none.returncode == 1 and none.stdout == ""
    assert NO_MATCH in none.stderr and "--all" in none.stderr and "Traceback" not in none.stderr
    every = semsearch_cmd("query", FOREIGN, "--index", index_dir, "--all", "--json")
    assert every.returncode == 0
    hits = [json.loads(line) for line in every.stdout.splitlines()]
    assert len(hits) == 6 and all(0 <= h["score"] < calibration.load().threshold for h in hits)
    good = semsearch_cmd("query", ANSWERED, "--index", index_dir)
    assert good.returncode == 0 and good.stdout.startswith(str(index_dir.parent / "docs" / "ops" / "credentials.md"))


def test_the_mcp_search_abstains_unless_asked_for_all(index_dir, corpus, tmp_path):
    from test_mcp import _session

    calls = {
        "none": ("search", {"query": FOREIGN, "k": 3}),
        "all": ("search", {"query": FOREIGN, "k": 3, "all": True}),
        "good": ("search", {"query": ANSWERED, "k": 3}),
    }
    with open(tmp_path / "server-stderr.txt", "w") as errlog:
        results = anyio.run(_session, index_dir, corpus, errlog, calls)
    schema = next(t for t in results["tools"].tools if t.name == "search").input_schema
    assert schema["properties"]["all"]["type"] == "boolean"
    none = results["none"].structured_content
    assert not results["none"].is_error and none["hits"] == [] and "No passage matches" in none["note"]
    every = results["all"].structured_content
    assert len(every["hits"]) == 3 and "note" not in every
    assert all(0 <= h["score"] < calibration.load().threshold for h in every["hits"])
    good = results["good"].structured_content["hits"]
    assert good[0]["abspath"].endswith("ops/credentials.md") and calibration.load().threshold <= good[0]["score"] <= 1


def test_the_min_score_setting_replaces_the_cut_off(cli, index_dir, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_MIN_SCORE", "0")  # every hit, as --all
    shown = cli("query", FOREIGN, "--index", index_dir, "--json", "-k", "2")
    assert shown.exit_code == 0 and len(hits_of(shown)) == 2
    assert cli("query", FOREIGN, "--index", index_dir, "--min-score", "0.5").exit_code == 1  # the flag wins
    monkeypatch.setenv("SEMSEARCH_MIN_SCORE", "2")
    bad = cli("query", FOREIGN, "--index", index_dir)
    assert bad.exit_code == 2 and "SEMSEARCH_MIN_SCORE" in bad.stderr and "0 to 1" in bad.stderr


def test_text_output_shows_the_passages_of_one_file_under_it(cli, tmp_path):
    from conftest import write_corpus

    sections = "\n\n".join(
        f"## Brewing step {i}\n\nGrind the coffee beans, heat the water to {90 + i} degrees and pour slowly."
        for i in range(5)
    )
    docs = write_corpus(
        tmp_path / "docs", {"coffee.md": "# Coffee\n\n" + sections + "\n", "tea.md": "# Tea\n\nSteep green tea.\n"}
    )
    index = tmp_path / "index"
    assert cli("index", docs, "--index", index, "--chunk-size", "32").exit_code == 0
    hits = hits_of(cli("query", "brewing coffee", "--index", index, "--all", "--json"))
    coffee = [h for h in hits if h["path"].endswith("coffee.md")]
    assert len(coffee) >= 4  # JSON: one object per passage
    text = cli("query", "brewing coffee", "--index", index, "--all").stdout.splitlines()
    assert sum(line.startswith(str(docs / "coffee.md")) for line in text) == 1  # the file once
    assert sum(line.startswith("  :") for line in text) == 1  # its second passage under it, lines only
    (more,) = [line for line in text if "more in this file" in line]
    assert more.strip().startswith(f"+{len(coffee) - 2} more in this file: ")
    assert more.count("(0.") + more.count("(1.") == len(coffee) - 2
