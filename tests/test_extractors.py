"""Tests for the extractors: real files of each format, made here, and the positions of their text."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from semsearch.errors import ExtractError
from semsearch.extractors import extract
from semsearch.extractors.text import decode

ACCENTED = "Café crème brûlée, naïve façade — “quoted” for €5\nÀ bientôt, Zoë!\n"


# --- text encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(ACCENTED.encode("utf-8"), id="utf-8"),
        pytest.param(codecs.BOM_UTF8 + ACCENTED.encode("utf-8"), id="utf-8-bom"),
        pytest.param(codecs.BOM_UTF16_LE + ACCENTED.encode("utf-16-le"), id="utf-16-le-bom"),
        pytest.param(codecs.BOM_UTF16_BE + ACCENTED.encode("utf-16-be"), id="utf-16-be-bom"),
        pytest.param(ACCENTED.encode("cp1252"), id="cp1252"),
    ],
)
def test_decode_encodings(data):
    assert decode(data) == ACCENTED


@pytest.mark.parametrize("text", ["Café", "naïve", "Ärger über Öl", "résumé et café\n"])
def test_decode_short_latin1_text_is_cp1252_not_a_lookalike(text):
    assert decode(text.encode("latin-1")) == text


def test_decode_other_legacy_code_page():
    text = "Привет, как дела? Это тест русского текста, довольно длинный.\n"
    assert decode(text.encode("cp1251")) == text


def test_decode_mostly_utf8_keeps_utf8():
    data = ("Grüße aus Köln, schönes Wetter. " * 20).encode() + b"\xe9 one stray latin-1 byte\n"
    text = decode(data)
    assert text.startswith("Grüße aus Köln")
    assert text.endswith("\ufffd one stray latin-1 byte\n")


def test_decode_broken_bom_does_not_crash():
    for data in (codecs.BOM_UTF16_LE + b"\x00\xd8", codecs.BOM_UTF16_BE + b"\xd8", codecs.BOM_UTF8 + b"\xff\xfe"):
        assert isinstance(decode(data), str)


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_text_file_in_legacy_encoding(tmp_path, encoding):
    path = tmp_path / "notes.txt"
    path.write_bytes(ACCENTED.encode(encoding))
    doc = extract(path, path.read_bytes())
    assert doc.blocks[0].text.startswith("Café crème brûlée")
    assert doc.blocks[0].start_line == 1
