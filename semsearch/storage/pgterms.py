"""Keyword terms for the PostgreSQL store, cut exactly as the embedded store's FTS5 index cuts them.

The embedded store ranks keywords with FTS5's BM25; the PostgreSQL store computes the same BM25 in SQL from
postings it keeps (term, chunk, frequency, chunk length). For the two to rank alike, a chunk must become the
same terms, so they are cut by FTS5 itself: SQLite's ``porter unicode61 remove_diacritics 2`` tokenizer, in
a private in-memory table (one per thread), read back through ``fts5vocab``. (A separate Porter stemmer
would not do: FTS5 follows Porter's C code, which stems "etiology" to "etiolog" where the Snowball version
of the algorithm keeps "etiologi"; measured on MED that cost 0.009 nDCG@10 in keyword mode.)
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter

from semsearch.storage import keywords as lexical

CJK_PREFIX = "\x01"  # terms of the ``cjk`` column, kept apart from ``body`` terms (FTS5's column filter)
MAX_TERM_BYTES = 512  # longer tokens (base64 blobs...) are left out of the postings

_local = threading.local()


def _cutter() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(":memory:")
        conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, cjk, tokenize = '{lexical.TOKENIZER}')")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        _local.conn = conn
    return conn


def cut(rows: list[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
    """For each (body, cjk) pair of column texts: (body terms in order, cjk-column terms), as FTS5 indexes them."""
    conn = _cutter()
    out: list[tuple[list[str], list[str]]] = [([], []) for _ in rows]
    with conn:
        conn.execute("DELETE FROM t")
        conn.executemany(
            "INSERT INTO t (rowid, body, cjk) VALUES (?, ?, ?)", [(i, b, c) for i, (b, c) in enumerate(rows)]
        )
        # in each chunk's order (SQLite sorts); body terms in order, cjk terms after them
        for doc, body, term in conn.execute("SELECT doc, col = 'body', term FROM v ORDER BY doc, offset"):
            if body:
                out[doc][0].append(term)
            else:
                out[doc][1].append(CJK_PREFIX + term)
        conn.execute("DELETE FROM t")
    return out


def tokens(text: str) -> list[str]:
    """The terms of ``text`` in order, as FTS5 would index (or query) it in the ``body`` column."""
    return cut([(text, "")])[0][0]


def chunks_terms(chunks: list[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
    """(body terms in order, cjk-column terms) of each (heading, text), as ``keywords`` stores them in FTS5."""
    return cut([lexical.columns(heading, text) for heading, text in chunks])


def chunk_terms(heading: str, text: str) -> tuple[list[str], list[str]]:
    return chunks_terms([(heading, text)])[0]


def postings(body: list[str], cjk: list[str]) -> tuple[dict[str, int], int]:
    """Each term's frequency in the chunk, and the chunk's length in terms (both columns, as FTS5 counts)."""
    counts = Counter(body)
    counts.update(cjk)
    for term in [t for t in counts if _too_long(t)]:
        del counts[term]
    return dict(counts), len(body) + len(cjk)


def _too_long(term: str) -> bool:
    return len(term) * 4 > MAX_TERM_BYTES and len(term.encode("utf-8")) > MAX_TERM_BYTES


def tsvector_literal(body: list[str]) -> str:
    """A tsvector literal of the body terms with their positions (no text-search parser in between)."""
    places: dict[str, list[str]] = {}
    for pos, term in enumerate(body[:16383], 1):
        if term in places:
            places[term].append(str(pos))
        elif not _too_long(term):
            places[term] = [str(pos)]
    return " ".join(f"{_quote(t)}:{','.join(p[:256])}" for t, p in places.items())


def _quote(term: str) -> str:
    if "\\" in term or "'" in term:
        term = term.replace("\\", "\\\\").replace("'", "''")
    return "'" + term + "'"


# -- queries: the FTS5 expressions of lexical.parse as terms ----------------------------------------------------

_ITEM = re.compile(r'^(body|cjk) : "((?:[^"]|"")*)"$')


def expression_items(expression: str) -> list[list[str]]:
    """The OR'ed items of a ``lexical`` match expression, each as its list of terms (a phrase when several)."""
    items: list[list[str]] = []
    for part in expression.split(" OR ") if expression else []:
        item = expression_item(part)
        if item:
            items.append(item)
    return items


def expression_item(part: str) -> list[str]:
    m = _ITEM.match(part.strip())
    if not m:
        return []
    column, text = m.group(1), m.group(2).replace('""', '"')
    if column == "cjk":
        return [CJK_PREFIX + text]
    return [t for t in tokens(text) if len(t.encode("utf-8")) <= MAX_TERM_BYTES]


def tsquery_literal(phrase: list[str]) -> str:
    """A tsquery literal matching the terms in this order, next to each other."""
    return " <-> ".join(_quote(t) for t in phrase)
