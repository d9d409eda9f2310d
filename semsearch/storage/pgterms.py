"""Keyword terms for the PostgreSQL store, cut as SQLite FTS5's ``porter unicode61 remove_diacritics 2`` cuts them.

The embedded store ranks keywords with FTS5's BM25; the PostgreSQL store computes the same BM25 in SQL from
postings it keeps (term, chunk, frequency, chunk length). For the two to rank alike, a chunk must become the
same terms: unicode61 tokens (runs of letters and digits, case and diacritics folded), each Porter-stemmed
(FTS5 stems tokens of 3 to 64 bytes), CJK text as the bigrams and single characters ``lexical`` makes.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

from semsearch.storage import keywords as lexical

_TOKEN = re.compile(r"[^\W_]+")  # letters and digits (unicode61's token characters, near enough)
CJK_PREFIX = "\x01"  # terms of the ``cjk`` column, kept apart from ``body`` terms (FTS5's column filter)
MAX_TERM_BYTES = 512  # longer tokens (base64 blobs...) are left out of the postings


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # pystemmer: Martin Porter's original algorithm, as FTS5's porter tokenizer

    return Stemmer.Stemmer("porter")


@lru_cache(maxsize=200_000)
def _fold(token: str) -> str:
    if token.isascii():
        folded = token.lower()
    else:
        folded = "".join(c for c in unicodedata.normalize("NFD", token) if not unicodedata.combining(c)).lower()
    n = len(folded.encode("utf-8"))
    if 3 <= n <= 64:
        return _stemmer().stemWord(folded)
    return folded


def tokens(text: str) -> list[str]:
    """The terms of ``text`` in order, as FTS5 would index (or query) it."""
    return [_fold(t) for t in _TOKEN.findall(text)]


def chunk_terms(heading: str, text: str) -> tuple[list[str], list[str]]:
    """(body terms in order, cjk-column terms) of one chunk, as lexical stores it in FTS5."""
    full = f"{heading}\n{text}" if heading else text
    body = tokens(lexical.segment(full))
    cjk = [CJK_PREFIX + c for c in lexical.cjk_characters(full).split()]
    return body, cjk


def postings(body: list[str], cjk: list[str]) -> tuple[dict[str, int], int]:
    """Each term's frequency in the chunk, and the chunk's length in terms (both columns, as FTS5 counts)."""
    counts = Counter(t for t in body + cjk if len(t.encode("utf-8")) <= MAX_TERM_BYTES)
    return dict(counts), len(body) + len(cjk)


def tsvector_literal(body: list[str]) -> str:
    """A tsvector literal of the body terms with their positions (no text-search parser in between)."""
    places: dict[str, list[int]] = {}
    for pos, term in enumerate(body[:16383], 1):
        if len(term.encode("utf-8")) <= MAX_TERM_BYTES:
            places.setdefault(term, []).append(pos)
    return " ".join(f"{_quote(t)}:{','.join(map(str, p[:256]))}" for t, p in places.items())


def _quote(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


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
