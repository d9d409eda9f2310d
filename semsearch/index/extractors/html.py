"""HTML pages: the visible text, with headings h1-h6 as the heading path and the source line of each block.

Blocks: the text is cut into lines where the source has a line break in text, and at block
elements (p, div, li, tr, br, headings...); table cells of a row share a line, joined by " | ".
Lines that start on the same source line (``<h2>A</h2><p>B</p>``, or a whole minified page) are
joined into one, with a space. A block is a run of such lines under one heading path whose source
lines follow each other, with at most ``MAX_BLANK_LINES`` markup-only lines between them (kept as
empty lines), so that line k of a block's text (0-based) starts on source line ``start_line + k``;
a longer gap (a stretch of script, say) starts a new block. ``start_line`` is the 1-based source
line of the block's first visible character.
``heading`` is the path of h1-h6 titles, "Install > Linux"; a heading's own line carries its
path, as in Markdown. kind is "code" for text inside <pre>, "prose" otherwise.
Document.title is the <title>, or the first heading when there is none.

Not shown, so not extracted: script, style, noscript, template, iframe, svg, math and the
<head> (except its <title>). The tokenizer is our own, linear in the size of the input and
without recursion: html.parser before the 2025 patch releases takes quadratic time on some
malformed input (CVE-2025-6069, CPython issue 135462: 200 KB of "<a" took 30 s on Python
3.11.7), and a parse inside it cannot be interrupted. It needs Python 3.11 (possessive regexes).
"""

from __future__ import annotations

import codecs
import html
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from semsearch.documents import Block, Document
from semsearch.errors import ExtractError
from semsearch.index.extractors.text import decode

MAX_SECONDS = 30.0  # the most time spent on one file before it is skipped
MAX_BLANK_LINES = 3  # markup-only source lines a block may span (as empty lines)
MAX_HEADING_CHARS = 200  # a heading longer than this is cut in the heading path

# What a browser does not show. Elements in _RAW_TEXT hold text that is not markup.
_HIDDEN = frozenset("head script style noscript template iframe noembed noframes svg math object datalist".split())
_RAW_TEXT = frozenset("script style xmp iframe noembed noframes noscript plaintext".split())
_RCDATA = frozenset({"title", "textarea"})  # text with character references, but no markup
_HEAD_CONTENT = frozenset("title meta link style script noscript base template".split())
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_BREAKS = frozenset(
    "address article aside blockquote body br caption center dd details dialog dir div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html legend li listing main menu nav ol optgroup option "
    "p pre section summary ul".split()
)
_CELLS = frozenset({"td", "th"})
_ROWS = frozenset({"tr", "table", "thead", "tbody", "tfoot", "caption"})  # each starts and ends a row
_FOREIGN = frozenset({"svg", "math"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}

_NAME = re.compile(r"[A-Za-z][^\t\n\f\r />]*")
# the rest of a tag after its name, up to its ">"; quotes only count after "=", as in browsers.
# Possessive quantifiers: a tag that never ends fails after one linear scan.
_TAG_REST = re.compile(r"""(?:[^>=]++|=\s*+"[^"]*+"|=\s*+'[^']*+'|=)*+>""")
_SPACES = " \t\n\f\r\u00a0"
_SPACE = re.compile(f"[{_SPACES}]+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def extract_html(path: Path, data: bytes) -> Document:
    text = _decode_html(data).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    builder = _Builder()
    _tokenize(text, builder)
    return builder.document()


def _decode_html(data: bytes) -> str:
    """A BOM, else the <meta charset> of the first 4 KB (when the bytes agree), else text.decode."""
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return decode(data)
    m = _META_CHARSET.search(data[:4096])
    if m:
        try:
            encoding = codecs.lookup(m.group(1).decode("ascii")).name
        except (LookupError, UnicodeDecodeError):
            encoding = ""
        # as browsers do (WHATWG Encoding): latin-1 and ASCII labels mean windows-1252,
        # and a UTF-16 label in an ASCII-compatible document means UTF-8
        encoding = {"latin-1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252"}.get(encoding, encoding)
        if encoding and not encoding.startswith(("utf-16", "utf-32")):
            try:
                return data.decode(encoding)
            except (UnicodeDecodeError, LookupError):
                pass
    return decode(data)


class _Lines:
    """Maps offsets in the text to 1-based line numbers; the offsets asked for only grow."""

    def __init__(self, text: str):
        self.text, self.pos, self.line = text, 0, 1

    def at(self, pos: int) -> int:
        if pos > self.pos:
            self.line += self.text.count("\n", self.pos, pos)
            self.pos = pos
        return self.line


def _tokenize(text: str, out: _Builder) -> None:
    """Feed ``text`` to ``out`` as start tags, end tags and text, in one pass."""
    lines = _Lines(text)
    n = len(text)
    pos = 0
    deadline = time.monotonic() + MAX_SECONDS
    steps = 0
    while pos < n:
        steps += 1
        if not steps % 4096 and time.monotonic() > deadline:
            raise ExtractError(f"it took too long to read (more than {MAX_SECONDS:g} s)")
        lt = text.find("<", pos)
        if lt < 0:
            lt = n
        if lt > pos:
            out.text(text[pos:lt], lines.at(pos))
        if lt >= n:
            return
        nxt = text[lt + 1 : lt + 2]
        if (
            nxt.isascii()
            and nxt.isalpha()
            or nxt == "/"
            and text[lt + 2 : lt + 3].isascii()
            and text[lt + 2 : lt + 3].isalpha()
        ):
            closing = nxt == "/"
            m = _NAME.match(text, lt + 1 + closing)
            name = m.group().lower()
            rest = _TAG_REST.match(text, m.end())
            if rest is None:
                return  # a tag cut off by the end of the file: the rest is not text
            pos = rest.end()
            line = lines.at(lt)
            if closing:
                out.end(name, line)
                continue
            out.start(name, line, self_closing=text[pos - 2] == "/")
            if name in _RAW_TEXT or name in _RCDATA:
                if name == "plaintext":
                    close = None
                else:
                    close = re.compile(r"</" + re.escape(name) + r"(?=[\t\n\f /> ])", re.I).search(text, pos)
                end = close.start() if close else n
                if end > pos:
                    content = text[pos:end]
                    out.raw(name, html.unescape(content) if name in _RCDATA else content, lines.at(pos))
                pos = end  # the end tag is read as any other
        elif text.startswith("<!--", lt):
            if text.startswith(("<!-->", "<!--->"), lt):
                pos = text.index(">", lt) + 1
                continue
            end = text.find("-->", lt + 4)
            if end < 0:
                return  # a comment running to the end of the file
            pos = end + 3
        elif nxt in ("!", "?", "/"):
            # doctype, CDATA, processing instruction, "</>" or a bogus comment: up to the next ">"
            end = text.find(">", lt + 2)
            if end < 0:
                return
            pos = end + 1
        else:
            out.text("<", lines.at(lt))  # a "<" that opens nothing is text
            pos = lt + 1


@dataclass
class _Line:
    source: int  # 1-based source line of its first character
    text: str
    heading: str
    kind: str


class _Builder:
    """Turns the tokens into lines of visible text, then the lines into blocks."""

    def __init__(self) -> None:
        self.title: str | None = None
        self.first_heading = ""
        self.lines: list[_Line] = []
        self.parts: list[str] = []  # the line being built
        self.part_line = 0  # source line of its first visible character; 0 while it has none
        self.space = False  # a collapsed space is due before the next text on this line
        self.hidden: Counter[str] = Counter()
        self.hidden_depth = 0
        self.pre = 0  # depth of <pre>
        self.row = False  # inside a table row: one line, cells joined by " | "
        self.path: list[tuple[int, str]] = []
        self.heading: tuple[int, int] | None = None  # (level, index in self.lines) of the open heading

    # --- the tokens

    def start(self, name: str, line: int, self_closing: bool = False) -> None:
        # "<x/>" closes x only in SVG and MathML; in HTML the "/" is ignored
        opens = name not in _VOID and not (
            self_closing and (name in _FOREIGN or self.hidden["svg"] or self.hidden["math"])
        )
        if self.hidden_depth:
            if self.hidden_depth == self.hidden["head"] and name not in _HEAD_CONTENT:
                self._unhide("head")  # content in the head: the head has ended, as in browsers
            else:
                if name in _HIDDEN and opens:
                    self._hide(name)
                return
        if name in _HIDDEN:
            if opens:
                self._hide(name)
            return
        if name in _HEADINGS:
            if self.heading is not None:
                self._close_heading()
            self._break()
            self.heading = (_HEADINGS[name], len(self.lines))
        elif name in _ROWS:
            self._break()
            self.row = name == "tr"
        elif name in _BREAKS and not self.row:
            self._break()
            if name == "pre":
                self.pre += 1
        elif name in _CELLS and self.parts:
            self.parts.append(" | ")
            self.space = False
        elif self.row and (name in _BREAKS or name in _CELLS):
            self.space = True

    def end(self, name: str, line: int) -> None:
        if self.hidden[name]:
            self._unhide(name)
            return
        if self.hidden_depth:
            return
        if name in _HEADINGS and self.heading is not None:
            self._close_heading()
        elif name in _ROWS:
            self._break()
            self.row = False
        elif name in _BREAKS and not self.row:
            self._break()
            if name == "pre" and self.pre:
                self.pre -= 1

    def raw(self, name: str, content: str, line: int) -> None:
        if name == "title":
            if self.title is None and self.hidden_depth == self.hidden["head"]:
                self.title = _SPACE.sub(" ", content).strip()
            return
        if self.hidden_depth or name in _HIDDEN:
            return
        self.text(content, line, escaped=False)  # xmp, plaintext, textarea: shown as they are

    def text(self, data: str, line: int, escaped: bool = True) -> None:
        if self.hidden_depth:
            if self.hidden_depth == self.hidden["head"] and data.strip():
                self._unhide("head")  # text in the head: the head has ended
            else:
                return
        for i, piece in enumerate(data.split("\n")):
            if i and self.row:
                self.space = True  # a table row is one line, however it is laid out
            elif i:
                self._break()
            if escaped and "&" in piece:
                piece = html.unescape(piece)
            self._add(piece, line + i)

    # --- lines

    def _add(self, piece: str, line: int) -> None:
        if self.pre and not self.row:  # as it is, indentation too
            self.parts.append(piece)
            if not self.part_line and piece.strip():
                self.part_line = line
            return
        if not piece:
            return
        if piece[0] in _SPACES:
            self.space = True
        words = _SPACE.sub(" ", piece).strip()
        if words:
            if not self.part_line:
                self.part_line = line
            if self.space and self.parts:
                self.parts.append(" ")
            self.parts.append(words)
            self.space = piece[-1] in _SPACES

    def _break(self) -> None:
        text = "".join(self.parts).rstrip()
        if self.part_line:
            heading = " > ".join(t for _, t in self.path)
            self.lines.append(_Line(self.part_line, text, heading, "code" if self.pre else "prose"))
        self.parts, self.space, self.part_line = [], False, 0

    def _close_heading(self) -> None:
        assert self.heading is not None
        self._break()
        level, first = self.heading
        self.heading = None
        title = " ".join(line.text.strip() for line in self.lines[first:])
        if not title:
            return
        if len(title) > MAX_HEADING_CHARS:
            title = title[:MAX_HEADING_CHARS].rstrip() + "…"
        self.first_heading = self.first_heading or title
        self.path = [(lv, t) for lv, t in self.path if lv < level] + [(level, title)]
        heading = " > ".join(t for _, t in self.path)
        for line in self.lines[first:]:
            line.heading = heading

    def _hide(self, name: str) -> None:
        self._break()
        self.hidden[name] += 1
        self.hidden_depth += 1

    def _unhide(self, name: str) -> None:
        self.hidden_depth -= self.hidden[name] if name == "head" else 1
        self.hidden[name] = 0 if name == "head" else self.hidden[name] - 1

    # --- the result

    def document(self) -> Document:
        if self.heading is not None:
            self._close_heading()
        self._break()
        blocks: list[Block] = []
        group: list[_Line] = []
        for line in self.lines:
            if group:
                prev = group[-1]
                gap = line.source - prev.source
                if (line.heading, line.kind) == (prev.heading, prev.kind) and gap == 0:
                    prev.text += " " + line.text  # blocks side by side on one source line share it
                    continue
                if (line.heading, line.kind) == (prev.heading, prev.kind) and 1 <= gap <= MAX_BLANK_LINES + 1:
                    group.extend(_Line(prev.source + k, "", "", "") for k in range(1, gap))
                    group.append(line)
                    continue
                blocks.append(_block(group))
            group = [line]
        if group:
            blocks.append(_block(group))
        return Document(blocks=blocks, title=self.title or self.first_heading)


def _block(lines: list[_Line]) -> Block:
    first = lines[0]
    return Block(
        "\n".join(line.text for line in lines), start_line=first.source, heading=first.heading, kind=first.kind
    )
