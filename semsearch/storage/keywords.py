"""The keyword side of search: an SQLite FTS5 (BM25) index of the chunks, and safe FTS5 queries built from user text."""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

# unicode61 splits on anything but letters and digits (so ERR_SSL_PROTOCOL is the tokens err ssl protocol,
# matched in order as a phrase), folds case and diacritics; porter stems English words (measured on SciFact
# train: +0.02 nDCG@10 over no stemming). Text in scripts written without spaces is stored as overlapping
# character bigrams in ``body`` and single characters in ``cjk`` (see ``segment``): unicode61 alone keeps a
# whole run of Chinese as one token, and the trigram tokenizer cannot match two-character words.
TOKENIZER = "porter unicode61 remove_diacritics 2"

# BM25's length normalisation, softened. FTS5's bm25() fixes k1 at 1.2 and b at 0.75, and b 0.75 punishes a
# longer passage too much (the references' BM25 uses 0.4, as Anserini's BEIR runs do). So every passage also
# holds PAD tokens of its own, in a column no query searches: FTS5 then counts it PAD tokens longer, and its
# normalisation 1 - b + b (dl + PAD) / (avgdl + PAD) is BM25's with b = 0.75 avgdl / (avgdl + PAD): 0.41 for
# passages of 90 words on average, 0.34 for 60. The PostgreSQL store adds PAD to its lengths the same way.
# Measured (docs/ranking.md, 2 December 2026; PAD 25 to 200 swept): code 0.879 -> 0.883 (lab, no cut-off), CACM
# 0.550 -> 0.575, MED 0.789 -> 0.786.
PAD = 75
_PAD_TEXT = " ".join(["0"] * PAD)

# A word the query says twice weighs twice (BM25's query-term frequency), unless the index holds it in at least
# this share of its passages: a repeated rare word is the question's point ("texture analysis ... texture
# synthesis ... perception of texture"), a repeated common one its setting ("somatotropin as it affects bone,
# bone development, bone cells"). Measured (docs/ranking.md, 2 December 2026, late morning; 0.5% to 5% swept):
# MED 0.786 -> 0.795, full NPL 0.523 -> 0.528, CACM 0.573 -> 0.568, code 0.883 -> 0.884 (lab, no cut-off).
COMMON_SHARE = 0.02

TABLE = f"CREATE VIRTUAL TABLE chunks_fts USING fts5(body, cjk, pad, tokenize = '{TOKENIZER}')"

SCHEMA = f"""
{TABLE};
-- deletions follow the chunks table by themselves (explicit deletes, cascades from files, anything else)
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    DELETE FROM chunks_fts WHERE rowid = old.id;
END;
"""

# Han, Hiragana, Katakana (full and half width), Hangul, CJK compatibility and extension blocks.
_CJK = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31bf\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0002fa1f\U00030000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(f"[^\\W_{_CJK}]+")  # what unicode61 calls a token, outside CJK runs
_QUOTED = re.compile(r'"([^"]*)"|“([^”]*)”|「([^」]*)」')

# Common English words: left out of the OR query (they match nearly every chunk and only slow BM25 down).
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves""".split()
)


def segment(text: str) -> str:
    """Text as stored in (and queried against) the ``body`` column: CJK runs become overlapping bigrams."""

    def bigrams(match: re.Match) -> str:
        run = match.group()
        if len(run) == 1:
            return f" {run} "
        return " " + " ".join(run[i : i + 2] for i in range(len(run) - 1)) + " "

    return _CJK_RUN.sub(bigrams, text)


def cjk_characters(text: str) -> str:
    """The ``cjk`` column: every CJK character on its own, so a one-character query can match."""
    return " ".join(ch for run in _CJK_RUN.findall(text) for ch in run)


# camelCase and PascalCase words (parseParam, HTTPServer, getUserById): unicode61 keeps each as one token, so
# their parts are added to the ``body`` column after the text (snake_case is split by unicode61 already)
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def identifier_parts(text: str) -> list[str]:
    """The words inside the camelCase and PascalCase identifiers of ``text`` (``parseParam``: parse, param)."""
    out: list[str] = []
    for word in _WORD.findall(text):
        if word.islower() or word.isupper() or not word.isascii():
            continue  # (most words; identifiers are ASCII)
        parts = _CAMEL_PART.findall(word)
        if len(parts) > 1:
            out.extend(p.lower() for p in parts)
    return out


def columns(heading: str, text: str) -> tuple[str, str]:
    """A chunk's (``body``, ``cjk``) column texts: the heading and text (CJK as bigrams), then the parts of
    its camelCase identifiers, so that "parse param" finds ``parseParam``."""
    full = f"{heading}\n{text}" if heading else text
    body = segment(full)
    parts = identifier_parts(full)
    if parts:
        body += "\n" + " ".join(parts)
    return body, cjk_characters(full)


def _row(chunk_id: int, heading: str, text: str) -> tuple[int, str, str, str]:
    return (chunk_id, *columns(heading, text), _PAD_TEXT)


# -- keeping the table in step with ``chunks`` -------------------------------------------------------------------


def create(conn: sqlite3.Connection) -> None:
    """Migration: the FTS table and its trigger made anew (an older one dropped), filled from the chunks stored."""
    conn.execute("DROP TRIGGER IF EXISTS chunks_fts_delete")
    conn.execute("DROP TABLE IF EXISTS chunks_fts")
    for statement in _statements(SCHEMA):
        conn.execute(statement)
    stored = conn.execute("SELECT id, heading, text FROM chunks")
    while rows := stored.fetchmany(2000):
        add_chunks(conn, rows)


def _statements(script: str) -> list[str]:
    """Split SCHEMA into statements (executescript would commit the caller's transaction)."""
    out, current = [], []
    for line in script.strip().splitlines():
        if line.strip().startswith("--"):
            continue
        current.append(line)
        if sqlite3.complete_statement("\n".join(current)):
            out.append("\n".join(current))
            current = []
    return out


def create_table(conn: sqlite3.Connection) -> None:
    """The keyword table alone, empty, without the trigger that ties it to ``chunks`` (a scratch index)."""
    conn.execute(TABLE)


def add_chunks(conn: sqlite3.Connection, rows: Iterable[tuple[int, str, str]]) -> None:
    """Index chunks given as (id, heading, text); call inside the transaction that inserts them."""
    conn.executemany(
        "INSERT INTO chunks_fts (rowid, body, cjk, pad) VALUES (?, ?, ?, ?)", [_row(i, h, t) for i, h, t in rows]
    )


def add_file_chunks(conn: sqlite3.Connection, file_id: int, gen: int) -> None:
    """Index the chunks a write transaction just added for one file."""
    add_chunks(conn, conn.execute("SELECT id, heading, text FROM chunks WHERE file_id = ? AND gen = ?", (file_id, gen)))


# -- queries -------------------------------------------------------------------------------------------------------


@dataclass
class ParsedQuery:
    """A user's query as FTS5 expressions: every string is quoted, so no input can be an FTS5 syntax error."""

    terms: list[str] = field(default_factory=list)  # OR'ed for BM25 ranking, each once
    exact: list[str] = field(default_factory=list)  # quoted phrases and identifiers: each must match as written
    exact_labels: list[str] = field(default_factory=list)  # the same, as the user wrote them
    times: dict[str, int] = field(default_factory=dict)  # how often the query says a term, if more than once

    def once(self, terms: Iterable[str]) -> ParsedQuery:
        """The same query with these terms given once however often it says them."""
        drop = set(terms)
        return replace(self, times={t: n for t, n in self.times.items() if t not in drop})

    @property
    def match(self) -> str:
        """The OR expression ranked by BM25. A word the query says twice is given twice, so it weighs twice
        (BM25's query-term frequency, as Lucene and bm25s count it): FTS5's bm25() sums over the expression's
        items, and the PostgreSQL store's BM25 counts an item given twice twice."""
        repeated = [t for t in self.terms for _ in range(self.times.get(t, 1))]
        return " OR ".join(repeated + [e for e in dict.fromkeys(self.exact) if e not in self.terms])


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


# An identifier: snake_case, camelCase, dotted.names, std::names, or letters mixed with digits
# (ERR_SSL_PROTOCOL, getUserId, os.path.join, BRCA1, 0x8004, IL-6) but not 2nd, 5mg or 100ms.
_IDENTIFIER_PARTS = (
    re.compile(r"[^\W_]_+[^\W_]"),
    re.compile(r"[a-z][A-Z]"),
    re.compile(r"[^\W\d_]{2,}(?:\.|::)[^\W\d_]{2,}"),
)
_MEASURE = re.compile(r"^\d+[a-z]+$")
_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


def is_identifier(token: str) -> bool:
    token = _EDGE_PUNCT.sub("", token)
    if not token or _CJK_RUN.search(token):
        return False
    if any(p.search(token) for p in _IDENTIFIER_PARTS):
        return True
    letters = any(c.isalpha() for c in token)
    digits = any(c.isdigit() for c in token)
    if not (letters and digits):
        return False
    if "-" in token:  # IL-6, COVID-19, ERR-42 but not 5-year or 0-dimensional
        return any(c.isupper() for c in token)
    return not _MEASURE.match(token)


def _body_phrase(text: str) -> str:
    """An FTS5 phrase for ``text``: its tokens in order in ``body``, or a single CJK character in ``cjk``."""
    stripped = text.strip()
    if len(stripped) == 1 and _CJK_RUN.fullmatch(stripped):
        return "cjk : " + _fts_string(stripped)
    return "body : " + _fts_string(" ".join(_tokens(text)))


def _tokens(text: str) -> list[str]:
    """Words and CJK bigrams (or lone characters) in order, as the FTS table stores them."""
    out: list[str] = []
    for piece in re.split(f"([{_CJK}]+)", text):
        if _CJK_RUN.fullmatch(piece or " "):
            out.extend(segment(piece).split())
        else:
            out.extend(_WORD.findall(piece))
    return out


def parse(query: str, identifiers: bool = True) -> ParsedQuery:
    """Quoted phrases ("connection pool") and identifiers (ERR_SSL_PROTOCOL) become exact terms; every word
    (stopwords left out unless there is nothing else) and CJK bigram becomes an OR term."""
    parsed = ParsedQuery()
    rest_parts: list[str] = []
    last = 0
    for m in _QUOTED.finditer(query):
        phrase = next(g for g in m.groups() if g is not None)
        rest_parts.append(query[last : m.start()])
        last = m.end()
        if len(_tokens(phrase)) > 1:
            parsed.exact.append(_body_phrase(phrase))
            parsed.exact_labels.append(f'"{phrase.strip()}"')
        else:  # one word in quotes is a word of the query (quotes around a word in a question are emphasis)
            rest_parts.append(f" {phrase} ")
    rest_parts.append(query[last:])
    rest = " ".join(rest_parts).replace('"', " ")
    if identifiers:
        for token in rest.split():
            if is_identifier(token):
                clean = _EDGE_PUNCT.sub("", token)
                parsed.exact.append(_body_phrase(clean))
                parsed.exact_labels.append(clean)
    words: list[str] = []
    said: list[str] = []  # every term, as often as the query says it
    for piece in re.split(f"([{_CJK}]+)", query.replace('"', " ")):
        if _CJK_RUN.fullmatch(piece or " "):
            if len(piece) == 1:
                said.append("cjk : " + _fts_string(piece))
            else:
                said.extend("body : " + _fts_string(b) for b in segment(piece).split())
        else:
            for w in _WORD.findall(piece):
                words.append(w.lower())
                words.extend(identifier_parts(w))  # getUserById also finds get_user_by_id and "user id"
    content = [w for w in words if w not in STOPWORDS] or words
    said.extend("body : " + _fts_string(w) for w in content)
    counts = Counter(said)
    parsed.terms = list(counts)
    parsed.times = {t: n for t, n in counts.items() if n > 1}
    parsed.exact = list(dict.fromkeys(parsed.exact))
    parsed.exact_labels = list(dict.fromkeys(parsed.exact_labels))
    return parsed


def search(conn: sqlite3.Connection, expression: str, limit: int) -> list[tuple[int, float]]:
    """(chunk id, BM25 score) best first; scores are positive (FTS5's bm25() negated)."""
    if not expression:
        return []
    rows = conn.execute(
        "SELECT rowid, -bm25(chunks_fts) AS score FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY score DESC LIMIT ?",
        (expression, limit),
    ).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def search_and_score(
    conn: sqlite3.Connection, expression: str, limit: int, ids: list[int]
) -> tuple[list[tuple[int, float]], dict[int, float]]:
    """``search`` and the BM25 scores of ``ids`` (left out when they match no term), from one pass over the
    matching chunks: FTS5 scores every match of a query either way, and common words match tens of thousands
    of chunks in a large index (a scan of 40 ms at 100k chunks, where two passes took 120 ms)."""
    if not expression:
        return [], {}
    if not ids or len(ids) > 500:
        return search(conn, expression, limit), scores_for(conn, expression, ids)
    marks = ",".join("?" * len(ids))
    rows = conn.execute(
        "WITH m AS MATERIALIZED"
        " (SELECT rowid AS id, -bm25(chunks_fts) AS score FROM chunks_fts WHERE chunks_fts MATCH ?)"
        " SELECT * FROM (SELECT id, score, 1 FROM m ORDER BY score DESC LIMIT ?)"
        f" UNION ALL SELECT id, score, 0 FROM m WHERE id IN ({marks})",
        (expression, limit, *ids),
    ).fetchall()
    best = [(int(r[0]), float(r[1])) for r in rows if r[2] == 1]
    return best, {int(r[0]): float(r[1]) for r in rows if r[2] == 0}


def scores_for(conn: sqlite3.Connection, expression: str, ids: list[int]) -> dict[int, float]:
    """BM25 scores of the given chunks (those that match no term are left out: their score is 0)."""
    out: dict[int, float] = {}
    if not expression or not ids:
        return out
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ",".join("?" * len(part))
        for rowid, score in conn.execute(
            f"SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid IN ({marks})",
            (expression, *part),
        ):
            out[int(rowid)] = float(score)
    return out


def matching(conn: sqlite3.Connection, expression: str, ids: list[int] | None = None, limit: int = 1000) -> set[int]:
    """Chunks matching one exact term: among ``ids`` when given, else the first ``limit`` by BM25."""
    if ids is None:
        return {i for i, _ in search(conn, expression, limit)}
    return set(scores_for(conn, expression, ids))


def common(conn: sqlite3.Connection, expressions: list[str], share: float = COMMON_SHARE) -> set[str]:
    """The keyword items that occur in at least ``share`` of the chunks (reading no more matches than that)."""
    if not expressions:
        return set()
    total = conn.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()[0]
    enough = max(1, math.ceil(share * total))
    found = set()
    for expression in dict.fromkeys(expressions):
        held = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)", (expression, enough)
        ).fetchone()[0]
        if held >= enough:
            found.add(expression)
    return found


def present(conn: sqlite3.Connection, expressions: list[str]) -> set[str]:
    """The keyword items (a word, or a phrase) that occur in at least one chunk: one index look-up each."""
    found = set()
    for expression in dict.fromkeys(expressions):
        if conn.execute("SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1", (expression,)).fetchone():
            found.add(expression)
    return found
