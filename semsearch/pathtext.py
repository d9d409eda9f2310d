"""File names for people and programs: escaped for a terminal, valid UTF-8 plus exact bytes (base64) in JSON."""

from __future__ import annotations

import base64
import os
from pathlib import Path


def escape(text: str) -> str:
    """Control characters as escapes (``\\n``, ``\\x1b``; tabs stay) and bytes that are not UTF-8 as ``\\xNN``."""
    out = []
    for ch in text:
        if ch.isprintable() or ch == "\t":
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable byte, kept by os.fsdecode as a lone surrogate
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
    return "".join(out)


def json_text(path: Path | str) -> str:
    """The path as valid Unicode for JSON: bytes that are not UTF-8 become U+FFFD."""
    return os.fsencode(path).decode("utf-8", "replace")


def json_bytes(path: Path | str) -> str | None:
    """The path's exact bytes in base64, or None when the path is valid UTF-8 (then ``json_text`` is exact)."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")
    return None
