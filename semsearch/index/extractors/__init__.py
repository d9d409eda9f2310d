"""Turn a file's bytes into a Document: picks the extractor for the file's format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from semsearch.documents import Document
from semsearch.index.extractors import docx, html, notebook, pdf, text

Extractor = Callable[[Path, bytes], Document]

# suffix (lower case, with dot) -> extractor; every other readable text file goes to text.extract
_BY_SUFFIX: dict[str, Extractor] = {
    ".md": text.extract_markdown,
    ".markdown": text.extract_markdown,
    ".rst": text.extract_rst,
    ".pdf": pdf.extract_pdf,
    ".html": html.extract_html,
    ".htm": html.extract_html,
    ".docx": docx.extract_docx,
    ".ipynb": notebook.extract_notebook,
}

# formats that are binary containers: the crawler must not sniff them for NUL bytes
BINARY_FORMATS: frozenset[str] = frozenset({".pdf", ".docx"})


def extractor_for(path: Path) -> Extractor:
    return _BY_SUFFIX.get(path.suffix.lower(), text.extract_text)


def extract(path: Path, data: bytes) -> Document:
    """Extract ``data`` (the bytes of ``path``). Raises ExtractError for files to skip."""
    return extractor_for(path)(path, data)


# Formats known to be binary by their suffix: never opened (every other file is read when its content is text).
BINARY_SUFFIXES: frozenset[str] = frozenset(
    """
    .png .jpg .jpeg .gif .bmp .ico .icns .webp .tif .tiff .psd .xcf .heic .avif .raw .cr2 .nef
    .mp3 .mp4 .m4a .m4v .wav .flac .ogg .oga .opus .aac .avi .mov .mkv .webm .wmv .flv .mpg .mpeg .mid .midi
    .zip .gz .tgz .bz2 .xz .txz .7z .rar .tar .zst .lz .lz4 .lzma .cab .deb .rpm .apk .jar .war .ear .aar
    .exe .dll .so .dylib .o .a .obj .lib .class .pyc .pyo .pyd .whl .egg .wasm .bin .elf .ko .sys
    .woff .woff2 .ttf .otf .eot .pfb
    .sqlite .sqlite3 .db .mdb .accdb .dbf .lmdb
    .doc .xls .ppt .xlsx .xlsm .pptx .odt .ods .odp .odg .pages .numbers .key .epub .mobi .djvu
    .iso .dmg .img .vmdk .qcow2 .vdi
    .npy .npz .pkl .pickle .parquet .feather .arrow .avro .orc .h5 .hdf5 .nc .mat
    .onnx .pt .pth .ckpt .safetensors .gguf .tflite .pb .joblib
    .faiss .index .idx .pack .swf .fla .blend .fbx .glb .3ds .stl .dwg .psb .sketch .fig
    """.split()
)

CODE_SUFFIXES = text._CODE_SUFFIXES  # (defined in semsearch.documents)


def skip_reason(path: Path) -> str | None:
    """Why a file is not read, judged by its name alone (None: it is read, and skipped later only if its bytes
    turn out to be binary)."""
    suffix = path.suffix.lower()
    if suffix in _BY_SUFFIX:
        return None
    if suffix in BINARY_SUFFIXES:
        return f"binary file type ({suffix})"
    return None


def is_supported(path: Path) -> bool:
    """Whether semsearch reads this file (by name; content is checked when read: binary bytes are skipped)."""
    return skip_reason(path) is None
