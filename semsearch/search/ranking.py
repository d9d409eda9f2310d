"""Evidence beyond the two scores: what a file's name says, where a named symbol is defined, and one file not
filling the whole page.

Applied to the fused candidates of a hybrid (or keyword) query, in the units of the fused score (standard
deviations): a candidate gains

- up to ``PATH_WEIGHT`` for the query's words found in its file's name or folder (``termui.py`` for "terminal
  prompts", ``exceptions.py`` for "exception types"): the count of such words over the square root of the
  query's word count, at most 1 (one word of four names the file: half; two: all), words matched as identifiers
  split at ``snake_case`` and ``camelCase`` boundaries, a word matching a name that starts with it
  (``exception`` in ``exceptions``);
- ``DEFINITION_WEIGHT`` when it defines a symbol the query names (``class Session``, ``def get_user``,
  ``func (e *Engine) ServeHTTP``), and ``STEM_WEIGHT`` when its file is named after that symbol;

in a folder of code, documentation, tests and examples lose ``SUPPORT_PENALTY`` unless the query asks for them,
and each file's best passage gains up to ``COHERENCE_WEIGHT``, in proportion to the evidence all its passages
gathered against the best file's (an answer usually spans several passages of one file, where a lone passage that
happens to share words with the query does not); then each further passage of a file already ranked loses
``REPEAT_PENALTY`` (one file's many passages no longer push every other file off the first page). Measured on all
of ../shared/eval (docs/ranking.md); one setting for every language and kind of folder.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from semsearch.documents import CODE_SUFFIXES

PATH_WEIGHT = 2.0
DEFINITION_WEIGHT = 1.0
STEM_WEIGHT = 1.0
REPEAT_PENALTY = 1.5  # each further passage of a file in the hits (0.5 before 2 December 2026: docs/ranking.md)
SUPPORT_PENALTY = 1.5
COHERENCE_WEIGHT = 2.0
COHERENCE_CODE_ONLY = True  # prose documents gain nothing from it (measured: docs/ranking.md)

_STOP = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers how
    i if in into is it its itself just me more most my no nor not now of off on once only or other our out over own
    same she should so some such than that the their them then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your""".split()
)
_WORD = re.compile(r"[^\W_]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:(?:::|\.|->)[A-Za-z_][A-Za-z0-9_]*)*")
_QUALIFIER = re.compile(r"::|\.|->")
_SHAPED = re.compile(r"[a-z][A-Z]|[A-Z][a-z]+[A-Z]|[A-Za-z0-9]_[A-Za-z0-9]|^_")
_DEFINERS = (
    "class|module|defmodule|def|defp|defmacro|interface|struct|enum|trait|type|typealias|typedef|func|function|fn|"
    "fun|object|protocol|record|impl|extension|namespace|macro|union|data|newtype|sub|proc|let|const|var|val"
)


def split_words(text: str) -> list[str]:
    """Lower-case words of ``text``, identifiers also split at their snake_case and camelCase boundaries."""
    out: list[str] = []
    for token in _WORD.findall(text):
        out.append(token.lower())
        parts = _CAMEL.findall(token)
        if len(parts) > 1:
            out.extend(p.lower() for p in parts)
    return out


@dataclass(frozen=True)
class QueryEvidence:
    words: frozenset[str]  # content words (no stopwords, at least 3 letters), identifiers split
    symbols: tuple[str, ...]  # identifiers the query names (getUserById, flat_hash_map, Sinatra::Base -> Base)

    @property
    def empty(self) -> bool:
        return not self.words and not self.symbols


def query_evidence(text: str) -> QueryEvidence:
    words = frozenset(w for w in split_words(text) if len(w) >= 3 and w not in _STOP)
    return QueryEvidence(words, query_symbols(text))


def query_symbols(text: str) -> tuple[str, ...]:
    """Identifiers a query names: camelCase, PascalCase, snake_case or qualified (a.b, A::B, a->b), or a query
    that is one word not all in lower case (``Session``, ``URL``)."""
    stripped = text.strip()
    out: list[str] = []
    for token in _IDENT.findall(text):
        last = _QUALIFIER.split(token)[-1]
        if len(last) < 3:
            continue
        if _SHAPED.search(last) or _QUALIFIER.search(token) or (token == stripped and not last.islower()):
            out.append(last)
    return tuple(dict.fromkeys(out))


@functools.lru_cache(maxsize=4096)
def _path_words(path: str, top: str | None = None) -> frozenset[str]:
    """The words of a file's name and of its folder's name, unless that folder is ``top`` (the folder that holds
    every candidate: the indexed folder itself, whose name is the project's, not this file's)."""
    p = PurePath(path)
    folder = p.parent.name if top is None or str(p.parent) != top else ""
    return frozenset(split_words(p.stem + " " + folder))


def _word_matches(word: str, parts: frozenset[str]) -> bool:
    """A query word names a part of a file name when they are equal or share most of their letters from the
    start (router and routers, formatting and formatter, serialization and serialize)."""
    if word in parts:
        return True
    for part in parts:
        shorter = min(len(word), len(part))
        if shorter < 4:
            continue
        common = 0
        for a, b in zip(word, part):
            if a != b:
                break
            common += 1
        if common == shorter or (common >= 5 and common >= 0.75 * shorter):
            return True
    return False


def path_share(path: str, words: frozenset[str], top: str | None = None) -> float:
    """How much of the query the file's name or its folder's name holds: the count of the query's words found
    there over the square root of the query's word count, at most 1.

    A plain share (count over count) made a file named after one word of a long question ("how does the
    streaming parser process arguments" and ``streaming.zig``) count for little; measured over the 19
    repositories of ../shared/eval/code, the square root gains 0.011 nDCG@10 (docs/ranking.md)."""
    if not words:
        return 0.0
    parts = _path_words(path, top)
    return min(1.0, sum(1 for w in words if _word_matches(w, parts)) / math.sqrt(len(words)))


@functools.lru_cache(maxsize=256)
def _definition(name: str) -> re.Pattern:
    return re.compile(
        r"(?:^|\s)(?:"
        + _DEFINERS
        + r")\s+(?:[*&]?\s*\(?[^()\n]{0,40}?\)\s*)?(?:[A-Za-z_][A-Za-z0-9_]*(?:\.|::))*"
        + re.escape(name)
        + r"(?:\s|[<({:\[;=,]|$)",
        re.MULTILINE,
    )


def defines(text: str, name: str) -> bool:
    """Whether ``text`` holds a definition of ``name`` (a keyword such as class, def, fn or func before it)."""
    return name in text and _definition(name).search(text) is not None


def named_after(path: str, symbols: Sequence[str]) -> bool:
    stem = PurePath(path).stem.lower().replace("_", "").replace("-", "")
    return any(stem in (s.lower().replace("_", ""), s.lower().replace("_", "") + "s") for s in symbols)


_ASKS_SUPPORT = frozenset(
    "doc docs documentation documented readme example examples sample samples demo test tests testing spec specs "
    "tutorial guide changelog changes release notes benchmark benchmarks".split()
)
_PROSE_SUFFIXES = frozenset(".md .markdown .rst .txt .text .adoc .asciidoc .org .tex .html .htm".split())
_SUPPORT_DIR = re.compile(r"(?:^|/)(?:tests?|__tests__|specs?|testing|examples?|samples?|demos?|benchmarks?|docs?)/")
_SUPPORT_NAME = re.compile(r"^(?:tests?|specs?)(?:[._-]|$)|[._-](?:tests?|specs?)$|(?<=[a-z0-9])(?:Tests?|Spec|Suite)$")


def is_code(path: str) -> bool:
    return PurePath(path).suffix.lower() in CODE_SUFFIXES


def supporting(path: str) -> bool:
    """Documentation, tests and examples: files about the code rather than the code itself."""
    p = PurePath(path)
    if p.suffix.lower() in _PROSE_SUFFIXES or not p.suffix and p.name.upper().startswith(("README", "CHANGELOG")):
        return True
    return bool(_SUPPORT_DIR.search(path.replace("\\", "/")) or _SUPPORT_NAME.search(p.stem))


def adjust(items: Sequence[tuple[float, str, str | None]], evidence: QueryEvidence) -> list[float]:
    """Scores of ``items`` (fused score, file path, passage text or None when the query names no symbol) with the
    path and definition evidence added."""
    out = []
    files = {path for _, path, _ in items}
    top = _common_folder(files)
    words = evidence.words
    if words and len(files) > 1:  # a word in most file names (the project's own name) tells them apart no more
        words = frozenset(
            w for w in words if sum(_word_matches(w, _path_words(f, top)) for f in files) <= len(files) / 2
        )
    # in a folder of code, passages about the code (documentation, tests, examples) yield to the code itself,
    # unless the query asks for them
    in_code = sum(1 for f in files if is_code(f)) * 2 >= len(files)
    code = in_code and not evidence.words & _ASKS_SUPPORT
    by_file = {}  # what a file's name and place say, once per file (a query's candidates share a few dozen)
    for f in files:
        gain = PATH_WEIGHT * path_share(f, words, top) if words else 0.0
        if code and SUPPORT_PENALTY and supporting(f):
            gain -= SUPPORT_PENALTY
        if evidence.symbols and named_after(f, evidence.symbols):
            gain += STEM_WEIGHT
        by_file[f] = gain
    for fused, path, text in items:
        score = fused + by_file[path]
        if evidence.symbols and text is not None and any(defines(text, s) for s in evidence.symbols):
            score += DEFINITION_WEIGHT
        out.append(score)
    if COHERENCE_WEIGHT and (in_code or not COHERENCE_CODE_ONLY):
        out = coherence(out, [path for _, path, _ in items])
    return out


def _common_folder(files: set[str]) -> str | None:
    """The deepest folder holding every one of ``files`` (None when they share none, or there is one file)."""
    if len(files) < 2:
        return None
    try:
        return os.path.commonpath(list(files))
    except ValueError:  # absolute and relative paths, or different drives
        return None


def coherence(scores: Sequence[float], files: Sequence[str]) -> list[float]:
    """Each file's best passage gains up to COHERENCE_WEIGHT, in proportion to its file's summed positive
    evidence against the best file's: a file with several good passages is a likelier answer."""
    total: dict[str, float] = {}
    best: dict[str, int] = {}
    for i, (s, f) in enumerate(zip(scores, files)):
        total[f] = total.get(f, 0.0) + max(s, 0.0)
        if f not in best or s > scores[best[f]]:
            best[f] = i
    top = max(total.values(), default=0.0)
    out = list(scores)
    if top > 0:
        for f, i in best.items():
            out[i] += COHERENCE_WEIGHT * total[f] / top
    return out


def spread_scores(order: Sequence[int], scores: Sequence[float], files: Sequence[str]) -> list[float]:
    """``scores`` after each further passage of a file (in ``order``, best first) loses REPEAT_PENALTY."""
    seen: dict[str, int] = {}
    out = list(scores)
    for i in order:
        n = seen.get(files[i], 0)
        out[i] = scores[i] - REPEAT_PENALTY * n
        seen[files[i]] = n + 1
    return out


def spread(order: Sequence[int], scores: Sequence[float], files: Sequence[str]) -> list[int]:
    """``order`` (indices, best first) re-sorted after each further passage of a file loses REPEAT_PENALTY."""
    effective = spread_scores(order, scores, files)
    return sorted(order, key=lambda i: -effective[i])
