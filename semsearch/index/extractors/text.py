"""Plain text, Markdown and reStructuredText: decode the bytes and keep line numbers and headings."""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path

from semsearch.documents import CODE_SUFFIXES as _CODE_SUFFIXES
from semsearch.documents import Block, Document
from semsearch.errors import ExtractError

_UNICODE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def looks_binary(data: bytes, sniff: int = 8192) -> bool:
    """A NUL byte early on means binary, unless a UTF-16/32 byte-order mark says the NULs are text."""
    return b"\x00" in data[:sniff] and not data.startswith(_UNICODE_BOMS)


def decode(data: bytes) -> str:
    """Decode text bytes: BOMs first, then UTF-8, then the most plausible legacy encoding.

    Never raises for bytes that look like text: a UTF-8 file with a few broken bytes keeps its
    UTF-8 (the broken bytes become U+FFFD), and among legacy encodings that read equally well
    cp1252 (the Windows superset of latin-1) wins, as it is by far the most common. Raises
    ExtractError only when no encoding makes sense of the bytes (binary data).
    """
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    broken = lenient.count("\ufffd")
    non_ascii = len(lenient) - len(lenient.encode("ascii", errors="ignore"))
    if non_ascii - broken > broken:
        return lenient  # mostly UTF-8: more valid multi-byte characters than broken bytes
    return _decode_legacy(data)


# charset-normalizer sees equally little "mess" in many 8-bit code pages for short or plain
# Latin text; these are the ones to prefer, in order, when they are among the best.
_PREFERRED_LEGACY = ("cp1252",)


def _mostly_latin(data: bytes) -> bool:
    """Mostly ASCII with a few accented letters: cp1252, whatever a detector makes of the few high bytes.

    (charset-normalizer reads short French or German text in cp1252 as Big5 or Shift-JIS.)
    """
    high = sum(1 for b in data if b >= 0x80)
    if not high or high > len(data) // 5:
        return False
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return all(ch.isalpha() or unicodedata.category(ch)[0] in "PSZ" for ch in text if ord(ch) >= 0x80)


def _decode_legacy(data: bytes) -> str:
    from charset_normalizer import from_bytes

    if _mostly_latin(data):
        return data.decode("cp1252")

    wide = b"\x00" in data  # UTF-16/32 without a BOM are plausible only with NUL bytes
    matches = [m for m in from_bytes(data) if wide or not m.encoding.startswith(("utf_16", "utf_32"))]
    if not matches:
        raise ExtractError("its encoding could not be recognised")
    least_mess = min(m.chaos for m in matches)
    best_sense = max(m.coherence for m in matches if m.chaos <= least_mess + 0.01)
    tied = [m for m in matches if m.chaos <= least_mess + 0.01 and m.coherence >= best_sense - 0.05]
    for preferred in _PREFERRED_LEGACY:
        for m in tied:
            if m.encoding == preferred or preferred in m.could_be_from_charset:
                return data.decode(preferred, errors="replace")
    return str(tied[0])


def _lines(data: bytes) -> list[str]:
    text = decode(data).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.split("\n")


def extract_text(path: Path, data: bytes) -> Document:
    lines = _lines(data)
    kind = "code" if path.suffix.lower() in _CODE_SUFFIXES else "text"
    return Document(blocks=[Block("\n".join(lines), start_line=1, kind=kind)])


_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def _sections(lines: list[str], headings: list[tuple[int, int, str]], skip: set[int]) -> Document:
    """Cut ``lines`` at ``headings`` ((line index, level, title)) into blocks carrying their heading path."""
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    starts = [0] + [i for i, _, _ in headings] + [len(lines)]
    bounds = list(zip(starts, starts[1:]))
    heading_at = {i: (level, title) for i, level, title in headings}
    title = ""
    for begin, end in bounds:
        if begin in heading_at:
            level, name = heading_at[begin]
            if not title:
                title = name
            path = [(lv, t) for lv, t in path if lv < level] + [(level, name)]
        body = [ln for j, ln in enumerate(lines[begin:end], begin) if j not in skip]
        if "\n".join(body).strip():
            blocks.append(
                Block(
                    "\n".join(lines[begin:end]),
                    start_line=begin + 1,
                    heading=" > ".join(t for _, t in path),
                    kind="prose",
                )
            )
    return Document(blocks=blocks, title=title)


def extract_markdown(path: Path, data: bytes) -> Document:
    lines = _lines(data)
    return _sections(lines, markdown_headings(lines), set())


def markdown_headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """The ATX and setext headings of Markdown ``lines``, outside fenced code: (line index, level, title)."""
    headings: list[tuple[int, int, str]] = []
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        m = _ATX.match(line)
        if m and m.group(2):
            headings.append((i, len(m.group(1)), m.group(2)))
        elif (
            i > 0 and lines[i - 1].strip() and re.fullmatch(r"\s{0,3}(=+|-+)\s*", line) and not _ATX.match(lines[i - 1])
        ):
            # setext heading: the title is on the line before
            if headings and headings[-1][0] == i - 1:
                continue
            headings.append((i - 1, 1 if "=" in line else 2, lines[i - 1].strip()))
    return headings


_RST_ADORN = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")


def extract_rst(path: Path, data: bytes) -> Document:
    """reST headings are underlined (optionally overlined); levels follow the order styles first appear."""
    lines = _lines(data)
    styles: list[tuple[str, bool]] = []
    headings: list[tuple[int, int, str]] = []
    adornments: set[int] = set()
    i = 0
    while i < len(lines) - 1:
        over = bool(_RST_ADORN.match(lines[i])) and i + 2 < len(lines) and _RST_ADORN.match(lines[i + 2] or "")
        if over and lines[i + 1].strip() and lines[i][0] == lines[i + 2][0]:
            style, title_at = (lines[i][0], True), i + 1
            adornments.update({i, i + 2})
            start = i
            i += 3
        elif (
            lines[i].strip()
            and not _RST_ADORN.match(lines[i])
            and _RST_ADORN.match(lines[i + 1])
            and len(lines[i + 1].rstrip()) >= len(lines[i].rstrip())
        ):
            style, title_at = (lines[i + 1][0], False), i
            adornments.add(i + 1)
            start = i
            i += 2
        else:
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        headings.append((start, styles.index(style) + 1, lines[title_at].strip()))
    return _sections(lines, headings, adornments)
