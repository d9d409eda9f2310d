"""Chunks fit the model: counted with its own tokenizer, never over its limit, with exact line ranges."""

from __future__ import annotations

import random

import pytest

from semsearch.documents import Block, Document
from semsearch.index.chunk import Chunker
from semsearch.model.spec import load_tokenizer, resolve_model


@pytest.fixture(scope="module")
def model():
    return resolve_model(None)


@pytest.fixture(scope="module")
def chunker(model):
    return Chunker(load_tokenizer(model), model.max_seq_length)


def full_length(chunker: Chunker, text: str) -> int:
    return len(chunker.tokenizer.encode(text, add_special_tokens=True).ids)


WORDS = "alpha beta gamma delta epsilon quantum harbour elephant 1234 naïve co-operate 東京 x".split()


def random_text(rng: random.Random, lines: int) -> str:
    out = []
    for _ in range(lines):
        n = rng.choice([0, 0, 3, 8, 15, 40, 120, 700])  # blank lines, short lines, very long lines
        out.append(" ".join(rng.choice(WORDS) for _ in range(n)))
    return "\n".join(out)


@pytest.mark.parametrize("seed", range(6))
def test_no_chunk_exceeds_the_model_limit(chunker, model, seed):
    rng = random.Random(seed)
    heading = " > ".join(rng.choice(WORDS) * rng.randint(1, 30) for _ in range(rng.randint(0, 4)))
    doc = Document(
        blocks=[Block(random_text(rng, 200), start_line=1, heading=heading, kind=rng.choice(["prose", "code"]))]
    )
    chunks = chunker.chunk(doc)
    assert chunks
    for c in chunks:
        assert full_length(chunker, c.embed_text) <= model.max_seq_length == 256


def test_line_ranges_point_at_the_source_lines(chunker):
    lines = [f"line {i} says something about topic {i % 7} in a sentence long enough to count" for i in range(1, 301)]
    chunks = chunker.chunk(Document(blocks=[Block("\n".join(lines), start_line=1)]))
    assert len(chunks) > 3
    for c in chunks:
        got = c.text.split("\n")
        assert got == lines[c.start_line - 1 : c.end_line]
    # consecutive chunks overlap a little or touch, never skip a line
    for a, b in zip(chunks, chunks[1:]):
        assert b.start_line <= a.end_line + 1
        assert a.end_line - b.start_line < 5


def test_code_is_cut_between_definitions(chunker):
    funcs = []
    for i in range(12):
        body = "\n".join(f"    value_{j} = compute_{j}(argument_{i}, factor={j})" for j in range(8))
        funcs.append(f"def function_{i}(argument_{i}):\n{body}\n    return value_0\n")
    source = "\n".join(funcs)
    chunks = chunker.chunk(Document(blocks=[Block(source, start_line=1, kind="code")]))
    assert len(chunks) > 1
    for c in chunks:
        assert c.text.startswith("def function_"), c.text[:40]


def test_a_huge_single_line_is_split_and_keeps_its_line_number(chunker, model):
    line = " ".join(["supercalifragilistic"] * 2000)
    chunks = chunker.chunk(Document(blocks=[Block("intro\n" + line + "\noutro", start_line=10)]))
    assert len(chunks) > 5
    assert all(full_length(chunker, c.embed_text) <= model.max_seq_length for c in chunks)
    assert {c.start_line for c in chunks if "supercalifragilistic" in c.text} <= {10, 11}


def test_heading_path_is_embedded_with_the_text(chunker):
    doc = Document(
        blocks=[Block("# Guide\n\nSome words about installing on Linux systems here.", 1, heading="Guide > Install")]
    )
    (chunk,) = chunker.chunk(doc)
    assert chunk.heading == "Guide > Install"
    assert chunk.embed_text.startswith("Guide > Install\n")


def test_tiny_sections_join_their_neighbour(chunker):
    doc = Document(
        blocks=[
            Block("## Install", 1, heading="Guide > Install"),
            Block(
                "### Linux\n\nUse the package manager of your distribution to install it quickly.",
                2,
                heading="Guide > Install > Linux",
            ),
        ]
    )
    chunks = chunker.chunk(doc)
    assert len(chunks) == 1
    assert chunks[0].start_line == 1 and chunks[0].heading == "Guide > Install > Linux"


def test_markdown_headings_become_paths():
    from pathlib import Path

    from semsearch.index.extractors import extract

    md = b"# Guide\n\nIntro.\n\n## Install\n\n### Linux\n\napt install it\n\n```\n# not a heading\n```\n\n## Use\n\nRun it.\n"
    doc = extract(Path("guide.md"), md)
    assert [(b.heading, b.start_line) for b in doc.blocks] == [
        ("Guide", 1),
        ("Guide > Install", 5),
        ("Guide > Install > Linux", 7),
        ("Guide > Use", 15),
    ]
