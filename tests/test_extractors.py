"""Tests for the extractors: real files of each format, made here, and the positions of their text."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from semsearch.errors import ExtractError
from semsearch.index.extractors import extract
from semsearch.index.extractors.text import decode

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


# --- PDF ----------------------------------------------------------------------------------------


def make_pdf(pages: list[str], *, user_password: str | None = None, title: str = "", aes: bool = False) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    if user_password is not None:
        method = EncryptionMethod.AES_256 if aes else EncryptionMethod.RC4
        pdf.set_encryption(owner_password="owner", user_password=user_password, encryption_method=method)
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        for line in text.split("\n"):
            pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def build_pdf(objects: list[bytes]) -> bytes:
    """A PDF from raw object bodies (object 1 is the catalog), with a correct cross-reference table."""
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def pdf_stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(content), extra, content)


FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
PAGE = (
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> %s >> /Contents 5 0 R >>"
)


def one_page_pdf(content: bytes, resources: bytes = b"", more: list[bytes] | None = None) -> bytes:
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            PAGE % resources,
            FONT,
            pdf_stream(content),
            *(more or []),
        ]
    )


def skip_reason(path: Path, data: bytes) -> str:
    with pytest.raises(ExtractError) as info:
        extract(path, data)
    return info.value.reason


def test_pdf_pages_and_lines(tmp_path):
    data = make_pdf(
        ["Alpha is on the first page\nand a second line", "Bravo sits on page two", "Charlie closes on page three"],
        title="Phonetic  Alphabet",
    )
    doc = extract(tmp_path / "a.pdf", data)
    assert doc.title == "Phonetic Alphabet"
    by_word = {word: b for b in doc.blocks for word in ("Alpha", "Bravo", "Charlie") if word in b.text}
    assert {w: b.page for w, b in by_word.items()} == {"Alpha": 1, "Bravo": 2, "Charlie": 3}
    first = by_word["Alpha"]
    assert first.text.splitlines() == ["Alpha is on the first page", "and a second line"]
    assert first.start_line == 1 and first.kind == "prose" and first.cell is None
    assert doc.warnings == []


def test_pdf_suffix_is_case_insensitive(tmp_path):
    assert extract(tmp_path / "A.PDF", make_pdf(["upper case"])).blocks[0].text == "upper case"


def test_pdf_blank_page_is_left_out(tmp_path):
    doc = extract(tmp_path / "a.pdf", make_pdf(["first", "", "third"]))
    assert [(b.page, b.text) for b in doc.blocks] == [(1, "first"), (3, "third")]


def test_pdf_start_line_skips_leading_blank_lines(tmp_path):
    # the page's extracted text is " \n \nlate\nmore": the block starts at its third line
    data = one_page_pdf(b"BT /F1 12 Tf 72 700 Td ( ) Tj 0 -20 Td ( ) Tj 0 -20 Td (late) Tj 0 -20 Td (more) Tj ET")
    block = extract(tmp_path / "a.pdf", data).blocks[0]
    assert (block.text, block.start_line, block.page) == ("late\nmore", 3, 1)


def test_pdf_encrypted_with_password_is_skipped(tmp_path):
    assert skip_reason(tmp_path / "a.pdf", make_pdf(["Secret"], user_password="secret")) == "it is encrypted"


@pytest.mark.parametrize("aes", [False, True], ids=["rc4", "aes256"])
def test_pdf_encrypted_with_empty_password_is_read(tmp_path, aes):
    doc = extract(tmp_path / "a.pdf", make_pdf(["Open to all"], user_password="", aes=aes))
    assert doc.blocks[0].text == "Open to all"


def test_pdf_truncated(tmp_path):
    data = make_pdf(["Alpha", "Bravo", "Charlie"])
    assert skip_reason(tmp_path / "a.pdf", data[: len(data) // 2]) == "it is truncated or corrupt"


def test_pdf_without_text_layer(tmp_path):
    from fpdf import FPDF
    from PIL import Image

    image = tmp_path / "scan.png"
    Image.new("L", (200, 100), color=200).save(image)
    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.image(str(image), x=10, y=10, w=180)
    assert skip_reason(tmp_path / "a.pdf", bytes(pdf.output())) == "it has no text layer (a scan?)"


def test_pdf_with_no_pages(tmp_path):
    data = build_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])
    assert skip_reason(tmp_path / "a.pdf", data) == "it has no pages"


def test_pdf_cyclic_page_tree(tmp_path):
    data = build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 2 >>",
            b"<< /Type /Pages /Kids [2 0 R] /Parent 2 0 R /Count 1 >>",
        ]
    )
    assert skip_reason(tmp_path / "a.pdf", data) == "its structure is too deeply nested or cyclic"


def test_pdf_cyclic_form_xobject_keeps_the_page_text(tmp_path):
    form = pdf_stream(
        b"BT /F1 12 Tf 10 10 Td (inside) Tj ET /X Do",
        b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /Font << /F1 4 0 R >> /XObject << /X 6 0 R >> >>",
    )
    data = one_page_pdf(b"BT /F1 12 Tf 72 700 Td (Hello cycle) Tj ET /X Do", b"/XObject << /X 6 0 R >>", [form])
    doc = extract(tmp_path / "a.pdf", data)
    assert doc.blocks[0].text.splitlines() == ["Hello cycle", "inside"]
    assert any("cyclic" in w for w in doc.warnings)  # pypdf's message, collected, not logged


def test_pdf_deeply_nested_content_stream(tmp_path):
    data = one_page_pdf(b"BT /F1 12 Tf 72 700 Td (deep) Tj ET " + b"[" * 100_000)
    assert skip_reason(tmp_path / "a.pdf", data) == "its structure is too deeply nested or cyclic"


def test_pdf_reference_loop_and_garbage(tmp_path):
    loop = build_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"3 0 R", b"2 0 R"])
    assert skip_reason(tmp_path / "a.pdf", loop) == "it is truncated or corrupt"
    garbage = b"%PDF-1.7\n" + bytes(range(256)) * 40
    assert skip_reason(tmp_path / "a.pdf", garbage) == "it is truncated or corrupt"


def test_pdf_logging_does_not_reach_the_console(tmp_path):
    import logging

    seen: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record)

    root = logging.getLogger()
    handler, level = Catch(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        data = make_pdf(["Alpha", "Bravo"])
        with pytest.raises(ExtractError):
            extract(tmp_path / "a.pdf", data[: len(data) // 2])  # pypdf logs "EOF marker not found"
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert not [r for r in seen if r.name.startswith("pypdf")]


def test_pdf_deadline_stops_inside_a_page(tmp_path, monkeypatch):
    from semsearch.index.extractors import pdf

    clock = iter(range(10**9))  # every reading of the clock is one second later
    monkeypatch.setattr(pdf.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(pdf, "MAX_SECONDS", 50)
    form = pdf_stream(
        b"BT /F1 12 Tf 10 10 Td (x) Tj ET " * 200,
        b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /Font << /F1 4 0 R >> >>",
    )
    # the operators are in a form XObject: pypdf catches Exception there, the deadline must get through
    data = one_page_pdf(b"/X Do", b"/XObject << /X 6 0 R >>", [form])
    assert skip_reason(tmp_path / "a.pdf", data) == "it took too long to read (more than 50 s)"


# --- HTML ---------------------------------------------------------------------------------------

PAGE_HTML = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>The   Guide</title>
  <style>body { color: red } .stylesecret {}</style>
  <script>var scriptsecret = "<h1>not a heading</h1>";</script>
</head>
<body>
<h1>Install</h1>
<p>Run the
installer &amp; wait.</p>
<noscript>noscriptsecret</noscript>
<h2>Linux</h2>
<ul>
  <li>apt <b>install</b> it</li>
</ul>
<table>
  <tr><th>OS</th>
      <th>Command</th></tr>
  <tr><td>Debian</td><td>apt</td></tr>
</table>
<h3>Building</h3>
<pre>
def build():
    return 1
</pre>
<template><p>templatesecret</p></template>
<svg><title>svgsecret</title></svg>
<h2>Windows</h2><p>Click next.</p><p>Then finish.</p>
<h1>Usage</h1>
<div>use it</div>
</body></html>
"""


def html_blocks(tmp_path, source: str | bytes, name: str = "page.html"):
    data = source.encode() if isinstance(source, str) else source
    return extract(tmp_path / name, data)


def block_with(doc, needle: str):
    (block,) = [b for b in doc.blocks if needle in b.text]
    return block


def test_html_visible_text_only(tmp_path):
    doc = html_blocks(tmp_path, PAGE_HTML)
    everything = "\n".join(b.text for b in doc.blocks)
    for secret in ("scriptsecret", "stylesecret", "noscriptsecret", "templatesecret", "svgsecret", "not a heading"):
        assert secret not in everything
    assert "The Guide" not in everything  # the title is the document's, not body text
    assert doc.title == "The Guide"
    assert "installer & wait." in everything


def test_html_heading_paths_and_lines(tmp_path):
    doc = html_blocks(tmp_path, PAGE_HTML)
    source = PAGE_HTML.splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(source, 1) if text in line)

    install = block_with(doc, "Run the")
    assert install.heading == "Install"
    assert install.text.splitlines() == ["Install", "Run the", "installer & wait."]
    assert install.start_line == line_of("<h1>Install")
    linux = block_with(doc, "apt install it")
    assert linux.heading == "Install > Linux"
    assert linux.start_line == line_of("<h2>Linux")
    # line k of a block is source line start_line + k: markup-only lines are kept as empty lines
    lines = linux.text.splitlines()
    assert lines.index("apt install it") == line_of("<li>apt") - linux.start_line
    assert lines.index("OS | Command") == line_of("<th>OS") - linux.start_line  # one row, one line
    assert lines.index("Debian | apt") == line_of("<td>Debian") - linux.start_line
    code = block_with(doc, "def build")
    assert (code.heading, code.kind) == ("Install > Linux > Building", "code")
    assert code.text == "def build():\n    return 1"
    assert code.start_line == line_of("def build")
    # a heading and two paragraphs on one source line: one line, as the line numbers cannot tell them apart
    windows = [b for b in doc.blocks if b.heading == "Install > Windows"]
    assert [(b.text, b.start_line) for b in windows] == [("Windows Click next. Then finish.", line_of("<h2>Windows"))]
    usage = block_with(doc, "use it")
    assert (usage.heading, usage.start_line) == ("Usage", line_of("<h1>Usage"))


def test_html_block_text_keeps_source_line_numbering(tmp_path):
    doc = html_blocks(tmp_path, PAGE_HTML)
    source = PAGE_HTML.splitlines()
    for block in doc.blocks:
        for k, line in enumerate(block.text.splitlines()):
            if line and block.kind == "prose":
                assert line.split()[0].split("|")[0] in html_unescape(source[block.start_line - 1 + k]), (block, k)


def html_unescape(s: str) -> str:
    import html

    return html.unescape(s)


def test_html_title_falls_back_to_first_heading_and_htm_suffix(tmp_path):
    doc = html_blocks(tmp_path, "<p>intro</p><h2>First <i>one</i></h2><p>x</p>", name="old.HTM")
    assert doc.title == "First one"
    assert doc.blocks[0].heading == "" and doc.blocks[1].heading == "First one"


def test_html_head_without_end_tag(tmp_path):
    doc = html_blocks(tmp_path, "<html><head><title>T</title><script>x()</script>\n<h1>Body</h1><p>text</p>")
    assert doc.title == "T"
    assert [(b.text, b.start_line, b.heading) for b in doc.blocks] == [("Body text", 2, "Body")]


def test_html_minified_page_is_one_line_per_section(tmp_path):
    source = "<html><body><h1>A</h1><p>one</p><p>two</p><h2>B</h2><ul><li>x</li><li>y</li></ul></body></html>"
    doc = html_blocks(tmp_path, source)
    assert [(b.heading, b.start_line, b.text) for b in doc.blocks] == [("A", 1, "A one two"), ("A > B", 1, "B x y")]


def test_html_deeply_nested(tmp_path):
    depth = 10_000
    source = "<div><span>" * depth + "deep text" + "</span></div>" * depth
    doc = html_blocks(tmp_path, "<h1>Top</h1>\n" + source)
    assert block_with(doc, "deep text").heading == "Top"


def test_html_declared_legacy_charset(tmp_path):
    source = '<meta charset="ISO-8859-1"><p>Café – “quoted”</p>'.encode("cp1252")
    assert "Café – “quoted”" in html_blocks(tmp_path, source).blocks[0].text


@pytest.mark.parametrize(
    "source",
    [
        "<a" * 400_000,
        "</" * 400_000,
        "<a x='" + "y" * 400_000,
        "<!--" * 200_000,
        "<script>" + "a<b" * 200_000,
        "<" * 400_000,
    ],
    ids=["open-tags", "end-tags", "unclosed-quote", "comments", "unclosed-script", "lt"],
)
@pytest.mark.timeout(120)
def test_html_pathological_input_is_read_in_linear_time(tmp_path, source):
    # No timing assertion (machines are noisy): the inputs are large enough that a quadratic tokenizer
    # (html.parser takes 30 s on a quarter of the first) runs for many minutes and meets the timeout,
    # while the linear one reads each in about a second.
    html_blocks(tmp_path, source)


# --- DOCX ---------------------------------------------------------------------------------------

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
</Types>"""
PACKAGE_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
</Relationships>"""
# localized style ids, as a German Word writes them; the names are what count
STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="{W}">
<w:style w:type="paragraph" w:default="1" w:styleId="Standard"><w:name w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="Titel"><w:name w:val="Title"/><w:basedOn w:val="Standard"/></w:style>
<w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/><w:basedOn w:val="Standard"/>
  <w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="berschrift2"><w:name w:val="heading 2"/><w:basedOn w:val="berschrift1"/>
  <w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="MyChapter"><w:name w:val="My Chapter"/><w:basedOn w:val="berschrift1"/></w:style>
<w:style w:type="paragraph" w:styleId="Inhaltsverzeichnisberschrift"><w:name w:val="TOC Heading"/>
  <w:basedOn w:val="berschrift1"/><w:pPr><w:outlineLvl w:val="9"/></w:pPr></w:style>
<w:style w:type="character" w:styleId="berschrift1Zchn"><w:name w:val="Heading 1 Char"/></w:style>
</w:styles>"""


def para(text: str = "", style: str = "", extra: str = "") -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    run = f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>' if text else ""
    return f"<w:p>{ppr}{run}{extra}</w:p>"


def cell(*paragraphs: str) -> str:
    return "<w:tc>" + "".join(paragraphs) + "</w:tc>"


def make_docx(body: str, styles: str | None = STYLES, document_name: str = "word/document.xml") -> bytes:
    import io
    import zipfile

    document = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="{W}" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body>{body}<w:sectPr/></w:body></w:document>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", PACKAGE_RELS.replace("word/document.xml", document_name))
        zf.writestr(document_name, document)
        if styles is not None:
            zf.writestr("word/styles.xml", styles)
    return buffer.getvalue()


DOCX_BODY = "".join(
    [
        para("The Manual", "Titel"),  # 1
        para("Welcome to the manual."),  # 2
        para("Setup", "berschrift1"),  # 3
        para(""),  # 4: an empty paragraph still counts
        para("Plug it in", extra="<w:r><w:tab/><w:t>then</w:t><w:br/><w:t>switch on</w:t></w:r>"),  # 5
        para("Cables", "berschrift2"),  # 6
        "<w:tbl><w:tr>" + cell(para("Kind")) + cell(para("Length")) + "</w:tr>"  # 7
        "<w:tr>"
        + cell(para("USB"), para("(type C)"))
        + cell("<w:tbl><w:tr>" + cell(para("1 m")) + "</w:tr></w:tbl>")
        + "</w:tr></w:tbl>",  # 8
        para("After the table."),  # 9
        para("Contents", "Inhaltsverzeichnisberschrift"),  # 10: TOC Heading, not a heading (outline level 9)
        para("Extras", "MyChapter"),  # 11: a custom style based on Heading 1
        para(
            "Kept",
            extra="<w:del><w:r><w:delText>deletedtext</w:delText></w:r></w:del>"
            '<w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><w:txbxContent>'
            + para("in a text box")
            + "</w:txbxContent></w:drawing></mc:Choice><mc:Fallback><w:pict><w:txbxContent>"
            + para("fallbackcopy")
            + "</w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r>",
        ),  # 12
        '<w:p><w:pPr><w:pStyle w:val="Standard"/><w:pPrChange><w:pPr><w:pStyle w:val="berschrift1"/></w:pPr></w:pPrChange></w:pPr>'
        "<w:r><w:t>Once a heading</w:t></w:r></w:p>",  # 13: its old style (a tracked change) does not count
    ]
)


def test_docx_headings_paragraph_numbers_and_tables(tmp_path):
    doc = extract(tmp_path / "manual.docx", make_docx(DOCX_BODY))
    assert doc.title == "The Manual"
    assert [(b.heading, b.start_line) for b in doc.blocks] == [
        ("The Manual", 1),
        ("The Manual > Setup", 3),
        ("The Manual > Setup > Cables", 6),
        ("The Manual > Extras", 11),
    ]
    assert doc.blocks[0].text == "The Manual\nWelcome to the manual."
    assert doc.blocks[1].text.splitlines() == ["Setup", "", "Plug it in then switch on"]
    assert doc.blocks[2].text.splitlines() == [
        "Cables",
        "Kind | Length",
        "USB (type C) | 1 m",
        "After the table.",
        "Contents",
    ]
    assert doc.blocks[3].text.splitlines() == ["Extras", "Kept in a text box", "Once a heading"]
    assert all(b.kind == "prose" and b.page is None for b in doc.blocks)


def test_docx_without_styles_part_uses_builtin_style_ids(tmp_path):
    body = para("Intro", "Heading1") + para("text") + para("Deeper", "Heading2") + para("more")
    doc = extract(tmp_path / "a.docx", make_docx(body, styles=None))
    assert [(b.heading, b.start_line, b.text) for b in doc.blocks] == [
        ("Intro", 1, "Intro\ntext"),
        ("Intro > Deeper", 3, "Deeper\nmore"),
    ]
    assert doc.title == "Intro"


def test_docx_main_part_found_through_relationships(tmp_path):
    doc = extract(tmp_path / "a.docx", make_docx(para("elsewhere"), document_name="word/document2.xml"))
    assert doc.blocks[0].text == "elsewhere"


def test_docx_doctype_is_refused(tmp_path):
    import io
    import zipfile

    laughs = '<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(
            "word/document.xml",
            laughs + f'<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>&b;</w:t></w:r></w:p></w:body></w:document>',
        )
    assert "document type declaration" in skip_reason(tmp_path / "a.docx", buffer.getvalue())


def test_docx_zip_bomb_with_huge_member_is_refused_quickly(tmp_path):
    import io
    import zipfile
    import zlib

    # 200 MB of zeros deflate to about 200 KB; written as a raw stream, the zip says its real size
    size = 200 * 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1024 * 1024)
    stream = b"".join(compressor.compress(chunk) for _ in range(size // len(chunk))) + compressor.flush()
    crc = 0
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("_rels/.rels", PACKAGE_RELS)
        info = zipfile.ZipInfo("word/document.xml")
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size, info.compress_size, info.CRC = size, len(stream), crc
        with zf._lock:  # write the precompressed member as it is
            zf.fp.seek(zf.start_dir)
            info.header_offset = zf.fp.tell()
            zf.fp.write(info.FileHeader(False))
            zf.fp.write(stream)
            zf.start_dir = zf.fp.tell()
            zf.filelist.append(info)
            zf.NameToInfo[info.filename] = info
            zf._didModify = True
    assert "zip bomb" in skip_reason(tmp_path / "bomb.docx", buffer.getvalue())  # refused before inflating


def test_docx_zip_member_lying_about_its_size(tmp_path):
    # declares 1 KB, holds 60 MB: reading stops at the declared size and the CRC does not match
    data = make_docx(para("x" * 1000))
    import io
    import zipfile

    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/document.xml", b"<" * (60 * 1024 * 1024))
    raw = bytearray(big.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo("word/document.xml")
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (1024).to_bytes(4, "little")  # uncompressed size, central directory
    raw[info.header_offset + 22 : info.header_offset + 26] = (1024).to_bytes(4, "little")  # and local header
    assert skip_reason(tmp_path / "a.docx", bytes(raw)) == "it is truncated or corrupt"
    assert extract(tmp_path / "ok.docx", data).blocks[0].text == "x" * 1000


def test_docx_not_a_zip_encrypted_or_truncated(tmp_path):
    data = make_docx(DOCX_BODY)
    assert skip_reason(tmp_path / "a.docx", data[: len(data) // 2]) == "it is truncated or corrupt"
    assert skip_reason(tmp_path / "a.docx", b"plain text, not a zip") == "it is truncated or corrupt"
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100) + "EncryptedPackage".encode("utf-16-le")
    assert skip_reason(tmp_path / "a.docx", ole) == "it is encrypted"


def test_docx_deeply_nested_tables(tmp_path):
    depth = 5_000
    body = (
        para("Top", "berschrift1")
        + "<w:tbl><w:tr><w:tc>" * depth
        + para("deep cell")
        + "</w:tc></w:tr></w:tbl>" * depth
    )
    doc = extract(tmp_path / "a.docx", make_docx(body))
    assert doc.blocks[0].text == "Top\ndeep cell"


# --- Jupyter notebooks --------------------------------------------------------------------------


def make_notebook(cells: list[tuple[str, str]]) -> bytes:
    import json

    def cell(kind: str, source: str) -> dict:
        base = {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            base.update(
                execution_count=1, outputs=[{"output_type": "stream", "name": "stdout", "text": ["outputsecret\n"]}]
            )
        return base

    notebook = {"cells": [cell(k, s) for k, s in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(notebook, indent=1).encode()


def test_notebook_cells_and_heading_paths(tmp_path):
    data = make_notebook(
        [
            ("markdown", "# Analysis\n\nWe load the data."),  # cell 1
            ("code", "import pandas as pd\ndf = pd.read_csv('x.csv')"),  # cell 2
            ("markdown", "Some words first.\n\n## Cleaning\n\nDrop the rows.\n\n```\n# not a heading\n```"),  # cell 3
            ("code", ""),  # cell 4: empty, no block, but it counts
            ("code", "\n\ndf = df.dropna()\n"),  # cell 5
            ("raw", "raw text"),  # cell 6
            ("markdown", "# Results"),  # cell 7
            ("code", "df.plot()"),  # cell 8
        ]
    )
    doc = extract(tmp_path / "analysis.ipynb", data)
    assert doc.title == "Analysis"
    got = [(b.cell, b.start_line, b.heading, b.kind, b.text) for b in doc.blocks]
    assert got == [
        (1, 1, "Analysis", "prose", "# Analysis\n\nWe load the data."),
        (2, 1, "Analysis", "code", "import pandas as pd\ndf = pd.read_csv('x.csv')"),
        (3, 1, "Analysis", "prose", "Some words first."),
        (3, 3, "Analysis > Cleaning", "prose", "## Cleaning\n\nDrop the rows.\n\n```\n# not a heading\n```"),
        (5, 3, "Analysis > Cleaning", "code", "df = df.dropna()"),
        (6, 1, "Analysis > Cleaning", "text", "raw text"),
        (7, 1, "Results", "prose", "# Results"),
        (8, 1, "Results", "code", "df.plot()"),
    ]
    assert all("outputsecret" not in b.text for b in doc.blocks)
    assert all(b.page is None for b in doc.blocks)


def test_notebook_nbformat3(tmp_path):
    import json

    notebook = {
        "nbformat": 3,
        "worksheets": [
            {
                "cells": [
                    {"cell_type": "heading", "level": 1, "source": ["Old notebook"]},
                    {"cell_type": "code", "input": ["print('hi')"], "outputs": []},
                ]
            }
        ],
    }
    doc = extract(tmp_path / "old.ipynb", json.dumps(notebook).encode())
    assert [(b.cell, b.heading, b.kind, b.text) for b in doc.blocks] == [
        (1, "Old notebook", "prose", "Old notebook"),
        (2, "Old notebook", "code", "print('hi')"),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"cells": [', "it is not valid JSON"),
        (b"[1, 2]", "it is not a Jupyter notebook"),
        (b'{"metadata": {}}', "it is not a Jupyter notebook"),
        (b"[" * 100_000 + b"]" * 100_000, "its JSON is too deeply nested"),
        (b'{"cells": "\xff\xfe"}', "it is not valid JSON"),
    ],
)
def test_notebook_bad_files(tmp_path, data, reason):
    assert skip_reason(tmp_path / "x.ipynb", data) == reason


def test_notebook_odd_cells_are_skipped(tmp_path):
    import json

    cells = [
        7,
        {"cell_type": "code"},
        {"cell_type": "code", "source": 3},
        {"cell_type": "code", "source": ["ok", None]},
    ]
    doc = extract(tmp_path / "x.ipynb", json.dumps({"cells": cells}).encode())
    assert [(b.cell, b.text) for b in doc.blocks] == [(4, "ok")]


# --- any bytes at all ---------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# random bytes, and random bytes behind the start of a real file of the format
_PREFIXES = {
    ".pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
    ".docx": b"PK\x03\x04",
    ".html": b"<!DOCTYPE html><html><head><title>",
    ".ipynb": b'{"cells": [{"cell_type": "markdown", "source": ["# ',
}


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(sorted(_PREFIXES)), prefixed=st.booleans(), data=st.binary(max_size=2048))
def test_random_bytes_raise_only_extract_error(tmp_path, suffix, prefixed, data):
    if prefixed:
        data = _PREFIXES[suffix] + data
    try:
        doc = extract(tmp_path / f"random{suffix}", data)
    except ExtractError as e:
        assert e.reason
    else:
        assert all(isinstance(b.text, str) and b.start_line >= 1 for b in doc.blocks)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=10**6), flips=st.lists(st.integers(0, 10**6), max_size=8))
def test_damaged_real_files_raise_only_extract_error(tmp_path, cut, flips):
    for suffix, data in ((".pdf", _REAL_PDF), (".docx", _REAL_DOCX)):
        damaged = bytearray(data[: cut % (len(data) + 1)])
        for flip in flips:
            if damaged:
                damaged[flip % len(damaged)] ^= 0xFF
        try:
            extract(tmp_path / f"damaged{suffix}", bytes(damaged))
        except ExtractError:
            pass


_REAL_PDF = make_pdf(["Alpha page", "Bravo page"])
_REAL_DOCX = make_docx(DOCX_BODY, styles=STYLES)
