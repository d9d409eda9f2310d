"""The ranking layer (file names, definitions of named symbols, code before its documentation, one file not filling
the page): its rules, and what they do to real queries over a small project indexed with the real model."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO, write_corpus

from semsearch.search import ranking

PROJECT = {
    "src/shop/session.py": 'class Session:\n    """Keeps cookies and connection settings across requests."""\n\n'
    "    def __init__(self, timeout=30):\n        self.cookies = {}\n        self.timeout = timeout\n",
    "src/shop/retry.py": 'def backoff_delays(attempts, base=0.5):\n    """Delays between attempts, doubling each '
    'time."""\n    return [base * 2**n for n in range(attempts)]\n',
    "src/shop/client.py": "from .session import Session\n\n\ndef fetch(url, session=None):\n    session = session or "
    "Session()\n    return session.get(url)\n",
    "src/shop/payments.py": 'def charge_card(card, amount):\n    """Charge a credit card through the payment '
    'gateway and return the receipt."""\n    return gateway.charge(card.number, amount)\n',
    "README.md": "# shop\n\nA Session keeps cookies between requests. Every Session retries failed requests with a "
    "delay that doubles after each attempt, so a Session survives a flaky network.\n\n## Sessions\n\nCreate one "
    "Session per user. The Session object holds cookies. Reuse the Session.\n\n## Retries\n\nFailed requests are "
    "retried: the retry delay doubles after each attempt, starting at half a second.\n",
    "tests/test_session.py": "from shop.session import Session\n\n\ndef test_session_keeps_cookies():\n    s = "
    "Session()\n    s.cookies['a'] = 1\n    assert s.cookies == {'a': 1}\n",
}


def test_query_symbols_are_identifiers_and_single_capitalised_words():
    assert ranking.query_symbols("Session") == ("Session",)
    assert ranking.query_symbols("how getUserById reads the cache") == ("getUserById",)
    assert ranking.query_symbols("where flat_hash_map grows") == ("flat_hash_map",)
    assert ranking.query_symbols("Sinatra::Base routing") == ("Base",)
    assert ranking.query_symbols("how sessions keep cookies") == ()
    assert ranking.query_symbols("session") == ()


@pytest.mark.parametrize(
    "text, name, expected",
    [
        ("class Session:\n    pass", "Session", True),
        ("pub struct Router<S> {", "Router", True),
        ("func (e *Engine) ServeHTTP(w http.ResponseWriter) {", "ServeHTTP", True),
        ("export function createRouter(opts) {", "createRouter", True),
        ("defmodule Plug.Conn do", "Conn", True),
        ("session = Session()", "Session", False),
        ("class SessionFactory:", "Session", False),
    ],
)
def test_definitions_are_recognised_across_languages(text, name, expected):
    assert ranking.defines(text, name) is expected


def test_path_share_matches_split_names_and_word_starts():
    words = ranking.query_evidence("exception types for user errors").words
    # four words: one in the name counts 1/sqrt(4), two count in full
    assert ranking.path_share("/p/click/exceptions.py", words) == pytest.approx(1 / 2)
    assert ranking.path_share("/p/src/UserErrors.swift", words) == pytest.approx(1.0)
    assert ranking.path_share("/p/docs/1234.md", words) == 0.0


def test_a_file_named_after_one_word_of_a_long_question_still_counts():
    question = "how does the streaming parser process arguments one token at a time"
    evidence = ranking.query_evidence(question)
    assert len(evidence.words) == 7
    assert ranking.path_share("/p/clap/streaming.zig", evidence.words) == pytest.approx(1 / 7**0.5)
    # the big module a little ahead on the two scores no longer beats the file the question names
    items = [(1.2, "/p/clap.zig", None), (0.6, "/p/clap/streaming.zig", None), (0.4, "/p/clap/args.zig", None)]
    scores = ranking.adjust(items, evidence)
    assert scores[1] > scores[0] > scores[2]


def test_repeated_passages_of_one_file_yield_to_other_files():
    # b.py's only passage, 0.9 under a.py's second, comes before it: a file's second passage loses 1.5
    scores = [3.0, 2.9, 2.8, 2.0]
    files = ["a.py", "a.py", "a.py", "b.py"]
    assert ranking.spread([0, 1, 2, 3], scores, files) == [0, 3, 1, 2]
    # a second passage far above the next file's best keeps its place
    assert ranking.spread([0, 1, 2, 3], [3.0, 2.9, 2.8, 1.0], files) == [0, 1, 3, 2]


def test_in_code_the_file_with_most_evidence_gains_at_its_best_passage():
    # b.py has one passage a little above a.py's best, but a.py has three good ones
    items = [(2.0, "/p/a.py", None), (1.8, "/p/a.py", None), (1.5, "/p/a.py", None), (2.2, "/p/b.py", None)]
    evidence = ranking.query_evidence("what parses the options")
    scores = ranking.adjust(items, evidence)
    assert scores[0] > scores[3]  # a.py's best passage now leads
    assert scores[1:3] == [1.8, 1.5]  # its other passages keep their scores
    prose = [(f, p.replace(".py", ".md"), t) for f, p, t in items]  # documents: nothing changes
    assert ranking.adjust(prose, evidence) == [f for f, _, _ in prose]


def test_supporting_files_are_documentation_tests_and_examples():
    assert ranking.supporting("/p/README.md") and ranking.supporting("/p/tests/test_x.py")
    assert ranking.supporting("/p/example/simple.zig") and ranking.supporting("/p/src/session_test.go")
    assert not ranking.supporting("/p/src/session.py") and not ranking.supporting("/p/src/contest.py")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from typer.testing import CliRunner

    from semsearch.cli.app import app

    base = tmp_path_factory.mktemp("project")
    root = write_corpus(base / "shop", PROJECT)
    result = CliRunner().invoke(app, ["index", str(root), "--index", str(base / "index"), "-q"])
    assert result.exit_code == 0, result.output
    return root, base / "index"


def top(cli, project, query: str, *args: str) -> list[dict]:
    root, index = project
    result = cli("query", query, "--index", index, "--json", "-k", "5", *args)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_a_named_class_is_found_at_its_definition_before_the_readme_that_repeats_it(cli, project):
    hits = top(cli, project, "Session")
    assert hits[0]["path"].endswith("src/shop/session.py") and hits[0]["start_line"] == 1
    plain = top(cli, project, "Session", "--mode", "keyword")  # BM25 alone: files that use Session more often
    assert not plain[0]["path"].endswith("session.py")


def test_the_file_named_for_the_subject_comes_first(cli, project):
    hits = top(cli, project, "retry delay that doubles after each attempt")
    assert hits[0]["path"].endswith("src/shop/retry.py")


def test_hybrid_hits_keep_the_raw_fused_score(cli, project):
    hits = top(cli, project, "Session", "--explain", "--all")
    assert hits[0]["path"].endswith("src/shop/session.py")
    fused = [h["explain"]["fused_score"] for h in hits]
    assert all(isinstance(f, float) for f in fused)
    # the layer, not the raw fused score, put the definition first: another passage fused higher
    assert max(fused) > fused[0]


def test_code_eval_metric_is_sembles():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from code_eval import ndcg10

    targets = [{"path": "core.py"}, {"path": "types.py", "start_line": 10, "end_line": 20}]
    # rank 1 misses, rank 2 matches core.py (by suffix), rank 3 is types.py outside the span, rank 4 inside it
    items = [("x.py", 1, 5), ("src/core.py", 1, 9), ("types.py", 30, 40), ("types.py", 15, 25)]
    dcg = 1 / 1.584962500721156 + 1 / 2.321928094887362
    idcg = 1 + 1 / 1.584962500721156
    assert ndcg10(items, targets) == pytest.approx(dcg / idcg)
    assert ndcg10([("types.py", None, None)], targets[1:]) == pytest.approx(1.0)  # file protocol: any span


def test_the_indexed_folders_own_name_is_no_files_evidence():
    # every candidate sits in zig-clap/: that name is the project's, not the README's at its top
    evidence = ranking.query_evidence("how zig-clap streaming works")
    names = ["README.md", "clap/streaming.zig", "example/usage.zig"]

    def scores(folder):
        return ranking.adjust([(1.0, f"/p/{folder}/{n}", None) for n in names], evidence)

    assert scores("zig-clap") == pytest.approx(scores("project"))
    top = "/p/zig-clap"
    assert ranking.path_share("/p/zig-clap/README.md", evidence.words, top) == 0.0
    assert ranking.path_share("/p/zig-clap/clap/streaming.zig", evidence.words, top) > 0.0
