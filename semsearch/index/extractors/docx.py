"""Word documents (.docx): the text of the paragraphs and tables, with headings as the heading path.

The body is read as a list of units in document order: each paragraph of the body is one unit,
and each row of a table is one unit (its cells' text joined by " | "; a nested table's text goes
into its cell). Blocks: one per section, a section being a heading and the units up to the next
heading (or the units before the first heading); line k (0-based) of a block's text is unit
``start_line + k``, so ``start_line`` is the 1-based number of the block's first unit, counting
empty paragraphs too. A unit is one line: line breaks inside a paragraph become spaces.
``heading`` is the path of heading titles: the Title style is level 0, Heading 1-9 (found by the
style's name, its outline level or the style it is based on, so localized and custom heading
styles count too) are levels 1-9. Document.title is the first Title paragraph, else the first
heading. Headers, footers, footnotes and comments are not read.

The XML is read with the standard expat parser, streaming, with DTDs refused outright (so no
entity can be declared, let alone expanded). The zip is checked before anything is unpacked:
the parts read may unpack to ``MAX_UNPACKED_BYTES`` in all, whatever sizes they declare.
"""

from __future__ import annotations

import io
import posixpath
import re
import time
import zipfile
from pathlib import Path
from xml.parsers import expat

from semsearch.documents import Block, Document
from semsearch.errors import ExtractError

MAX_UNPACKED_BYTES = 50 * 1024 * 1024  # the parts read from one file, unpacked, in all
MAX_SECONDS = 30.0  # the most time spent on one file before it is skipped

CORRUPT = "it is truncated or corrupt"
ENCRYPTED = "it is encrypted"
TOO_BIG = f"it unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)} MB (a zip bomb?)"

_W_NAMESPACES = (
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",  # ISO 29500 strict
)
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a compound file: an encrypted OOXML package, or a .doc

_HEADING_NAME = re.compile(r"heading\s*([1-9])")


def _w(local: str) -> frozenset[str]:
    return frozenset(f"{ns}}}{local}" for ns in _W_NAMESPACES)


_P, _TBL, _TR, _TC, _T, _R = _w("p"), _w("tbl"), _w("tr"), _w("tc"), _w("t"), _w("r")
_PPR, _PSTYLE, _OUTLINE = _w("pPr"), _w("pStyle"), _w("outlineLvl")
_TAB, _BREAKS, _HYPHEN = _w("tab"), _w("br") | _w("cr"), _w("noBreakHyphen")
_VAL = frozenset(f"{ns}}}val" for ns in _W_NAMESPACES)
# text in these is a duplicate of text elsewhere: the old place of moved text, and the
# fallback rendering of content that has a newer form beside it
_DUPLICATES = _w("moveFrom") | {f"{_MC}}}Fallback"}


class _Abort(Exception):
    """Raised from inside a parser callback to stop the parse with ``reason``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def extract_docx(path: Path, data: bytes) -> Document:
    if data.startswith(_OLE_SIGNATURE):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise ExtractError(ENCRYPTED)
        raise ExtractError("it is not a DOCX file (an old Word .doc?)")
    deadline = time.monotonic() + MAX_SECONDS
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            budget = [MAX_UNPACKED_BYTES]
            main = _target(zf, "_rels/.rels", "/officeDocument", budget) or "word/document.xml"
            styles_part = _target(zf, _rels_of(main), "/styles", budget) or posixpath.join(
                posixpath.dirname(main), "styles.xml"
            )
            levels = _style_levels(_read(zf, styles_part, budget), deadline)
            body = _read(zf, main, budget)
            if body is None:
                raise ExtractError("it is not a Word document (no word/document.xml)")
            units = _units(body, levels, deadline)
    except ExtractError:
        raise
    except _Abort as e:
        raise ExtractError(e.reason) from None
    except RecursionError:
        raise ExtractError("its structure is too deeply nested") from None
    except MemoryError:
        raise ExtractError(TOO_BIG) from None
    except RuntimeError as e:  # zipfile: "File ... is encrypted, password required for extraction"
        raise ExtractError(ENCRYPTED if "encrypted" in str(e) else CORRUPT) from None
    except Exception:
        # zipfile and expat raise many kinds of exception on damaged input (BadZipFile,
        # ExpatError, ValueError, EOFError, zlib.error, NotImplementedError...): all mean that
        # the file cannot be read as a DOCX.
        raise ExtractError(CORRUPT) from None
    return _document(units)


# --- the package -----------------------------------------------------------------------------


def _read(zf: zipfile.ZipFile, name: str, budget: list[int]) -> bytes | None:
    """The unpacked bytes of member ``name`` (None if there is none), within what is left of ``budget``."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    if info.file_size > budget[0]:
        raise ExtractError(TOO_BIG)
    with zf.open(info) as member:
        data = member.read(budget[0] + 1)  # zipfile stops at the declared size and checks the CRC
    if len(data) > budget[0]:
        raise ExtractError(TOO_BIG)
    budget[0] -= len(data)
    return data


def _rels_of(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


def _target(zf: zipfile.ZipFile, rels: str, type_suffix: str, budget: list[int]) -> str | None:
    """The part that relationship file ``rels`` points to with a type ending in ``type_suffix``."""
    data = _read(zf, rels, budget)
    if not data:
        return None
    found: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == f"{_REL}}}Relationship" and attrs.get("Type", "").endswith(type_suffix) and not found:
            if attrs.get("TargetMode") != "External":
                found.append(attrs.get("Target", ""))

    _parse(data, start, None, None)
    if not found or not found[0]:
        return None
    target = found[0]
    if target.startswith("/"):
        return posixpath.normpath(target).lstrip("/")
    source_folder = posixpath.dirname(posixpath.dirname(rels))  # "word/_rels/x.rels" -> "word"
    return posixpath.normpath(posixpath.join(source_folder, target)).lstrip("/")


def _parse(data: bytes, start, end, chars, deadline: float | None = None) -> None:
    """Stream ``data`` through expat with these callbacks; a DOCTYPE (and so any entity) is refused."""
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.buffer_size = 1 << 16

    def refuse(*_args: object) -> None:
        raise _Abort("its XML has a document type declaration (refused, as Word never writes one)")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    if deadline is not None and start is not None:
        count = [0]
        inner = start

        def start(name: str, attrs: dict[str, str]) -> None:  # noqa: F811  (the same, with a clock)
            count[0] += 1
            if not count[0] % 4096 and time.monotonic() > deadline:
                raise _Abort(f"it took too long to read (more than {MAX_SECONDS:g} s)")
            inner(name, attrs)

    if start is not None:
        parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if chars is not None:
        parser.CharacterDataHandler = chars
    parser.Parse(data, True)


# --- styles ----------------------------------------------------------------------------------


def _style_levels(data: bytes | None, deadline: float) -> dict[str, int | None]:
    """Paragraph style id -> heading level (0 for Title, 1-9 for headings, None for others), from styles.xml."""
    if not data:
        return {}
    styles: dict[str, dict[str, str]] = {}
    current: list[dict[str, str]] = []
    w_style, w_name, w_based = _w("style"), _w("name"), _w("basedOn")

    def start(name: str, attrs: dict[str, str]) -> None:
        if name in w_style:
            style = {"type": _attr(attrs, "type") or "paragraph"}
            styles[_attr(attrs, "styleId")] = style
            current[:] = [style]
        elif current and name in w_name:
            current[0]["name"] = _val(attrs)
        elif current and name in w_based:
            current[0]["based"] = _val(attrs)
        elif current and name in _OUTLINE:
            current[0]["outline"] = _val(attrs)

    def end(name: str) -> None:
        if name in w_style:
            current.clear()

    _parse(data, start, end, None, deadline)
    levels: dict[str, int | None] = {}
    for style_id, style in styles.items():
        if style["type"] != "paragraph":
            continue
        levels[style_id] = None
        seen: set[str] = set()
        sid: str | None = style_id
        while sid is not None and sid in styles and sid not in seen:  # follow basedOn, cycles refused
            seen.add(sid)
            level = _own_level(styles[sid])
            if level is not None:
                if level >= 0:
                    levels[style_id] = level
                break
            sid = styles[sid].get("based")
    return levels


def _own_level(style: dict[str, str]) -> int | None:
    """A style's own heading level: 0-9, -1 for "not a heading", None for "as its base style"."""
    name = style.get("name", "").strip().lower()
    m = _HEADING_NAME.fullmatch(name)
    if m:
        return int(m.group(1))
    if name == "title":
        return 0
    return _outline_level(style.get("outline"))


def _outline_level(value: str | None) -> int | None:
    """w:outlineLvl 0-8 is heading level 1-9; 9 is body text."""
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return n + 1 if 0 <= n <= 8 else -1


def _attr(attrs: dict[str, str], local: str) -> str:
    for ns in _W_NAMESPACES:
        value = attrs.get(f"{ns}}}{local}")
        if value is not None:
            return value
    return ""


def _val(attrs: dict[str, str]) -> str:
    return _attr(attrs, "val")


def _fallback_level(style_id: str) -> int | None:
    """Without styles.xml: the English style ids Word uses for its built-in headings."""
    m = re.fullmatch(r"heading\s*([1-9])", style_id.strip(), re.I)
    if m:
        return int(m.group(1))
    return 0 if style_id.strip().lower() == "title" else None


# --- the body --------------------------------------------------------------------------------


def _units(data: bytes, levels: dict[str, int | None], deadline: float) -> list[tuple[str, int | None]]:
    """The body's paragraphs and table rows in order: (text, heading level or None)."""
    units: list[tuple[str, int | None]] = []
    stack: list[str] = []  # names of the open elements
    state = {"paragraphs": 0, "tables": 0, "skip": 0, "in_t": False, "level": None}
    parts: list[str] = []  # text of the unit being read (a body paragraph, or the current cell)
    cells: list[str] = []  # the cells of the current top-level table row

    def add(text: str) -> None:
        if not state["skip"]:
            parts.append(text)

    def start(name: str, attrs: dict[str, str]) -> None:
        parent = stack[-1] if stack else ""
        stack.append(name)
        if name in _DUPLICATES:
            state["skip"] += 1
        elif name in _P:
            state["paragraphs"] += 1
            if state["paragraphs"] == 1 and not state["tables"]:
                parts.clear()
                state["level"] = None
            elif parts:
                parts.append(" ")  # a paragraph in a cell, or in a text box inside a paragraph
        elif name in _TBL:
            state["tables"] += 1
        elif name in _TR and state["tables"] == 1 and not state["paragraphs"]:
            cells.clear()
        elif name in _TC and state["tables"] == 1 and not state["paragraphs"]:
            parts.clear()
        elif name in _T and parent in _R:
            state["in_t"] = True
        elif parent in _R:
            if name in _TAB:
                add("\t")
            elif name in _BREAKS:
                add(" ")
            elif name in _HYPHEN:
                add("-")
        elif (name in _PSTYLE or name in _OUTLINE) and parent in _PPR and len(stack) >= 3 and stack[-3] in _P:
            # the properties of a body paragraph (not of a revision of them, nor of a table's paragraph)
            if state["paragraphs"] == 1 and not state["tables"]:
                if name in _PSTYLE:
                    style = _val(attrs)
                    level = levels[style] if style in levels else _fallback_level(style)
                    if level is not None:
                        state["level"] = level
                else:
                    level = _outline_level(_val(attrs))
                    state["level"] = level if level is not None and level >= 0 else None

    def end(name: str) -> None:
        stack.pop()
        if name in _DUPLICATES:
            state["skip"] -= 1
        elif name in _T:
            state["in_t"] = False
        elif name in _P:
            state["paragraphs"] -= 1
            if not state["paragraphs"] and not state["tables"]:
                units.append((_clean("".join(parts)), state["level"]))
                parts.clear()
        elif name in _TC and state["tables"] == 1 and not state["paragraphs"]:
            cells.append(_clean("".join(parts)))
            parts.clear()
        elif name in _TR and state["tables"] == 1 and not state["paragraphs"]:
            units.append((" | ".join(cells) if any(cells) else "", None))
            cells.clear()
        elif name in _TBL:
            state["tables"] -= 1

    def chars(text: str) -> None:
        if state["in_t"]:
            add(text)

    _parse(data, start, end, chars, deadline)
    return units


def _clean(text: str) -> str:
    return " ".join(text.split())


def _document(units: list[tuple[str, int | None]]) -> Document:
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    title = ""
    first_heading = ""
    section: list[str] = []
    section_start = 1

    def flush() -> None:
        lines = list(section)
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is None:
            return
        last = max(i for i, line in enumerate(lines) if line.strip())
        heading = " > ".join(t for _, t in path)
        blocks.append(
            Block("\n".join(lines[first : last + 1]), start_line=section_start + first, heading=heading, kind="prose")
        )

    for number, (text, level) in enumerate(units, 1):
        if level is not None and text.strip():
            flush()
            section, section_start = [], number
            path = [(lv, t) for lv, t in path if lv < level] + [(level, text.strip())]
            if level == 0 and not title:
                title = text.strip()
            first_heading = first_heading or text.strip()
        section.append(text)
    flush()
    return Document(blocks=blocks, title=title or first_heading)
