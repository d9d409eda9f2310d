"""Real documents through the whole pipeline: hits name the page, heading path, cell and lines; bad files never stop a run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_extractors import make_docx, make_pdf, para

PAGES = [
    "Chapter one describes the migration of arctic terns between the poles every year.",
    "Page two explains how to calibrate the pressure sensor before the first measurement.",
    "The third page covers the tax rules for selling shares held longer than a year.",
]


@pytest.fixture
def documents(tmp_path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "report.pdf").write_bytes(make_pdf(PAGES))
    (root / "locked.pdf").write_bytes(make_pdf(["secret plans"], user_password="secret"))
    whole = make_pdf(PAGES)
    (root / "truncated.pdf").write_bytes(whole[: len(whole) // 2])
    (root / "scan.pdf").write_bytes(make_pdf([""]))
    (root / "page.html").write_text(
        "<html><head><title>Field guide</title><style>.x{color:red}</style>"
        "<script>var hidden = 'javascript payload about volcanoes';</script></head><body>\n"
        "<h1>Field guide</h1>\n<h2>Mushrooms</h2>\n"
        "<p>Never eat a wild mushroom unless an expert has identified it; some are deadly.</p>\n"
        "</body></html>\n"
    )
    (root / "manual.docx").write_bytes(
        make_docx(
            para("Espresso machine", "Heading1")
            + para("Descaling", "Heading2")
            + para("Run a citric acid solution through the boiler once a month to remove limescale.")
        )
    )
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Analysis\n"]},
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": 1,
                "outputs": [],
                "source": [
                    "import pandas as pd\n",
                    "sales = pd.read_csv('sales.csv')\n",
                    "monthly_revenue = sales.groupby('month')['revenue'].sum()\n",
                ],
            },
        ],
    }
    (root / "analysis.ipynb").write_text(json.dumps(notebook))
    (root / "guide.md").write_text(
        "# Guide\n\nIntro text for the guide.\n\n## Install\n\nGeneral notes.\n\n### Linux\n\n"
        "On Debian, install the package with apt and add your user to the docker group.\n"
    )
    functions = [
        ("circle_area", "radius", "Area of a circle: pi times the radius squared.", "math.pi * radius**2"),
        (
            "hypotenuse",
            "a, b",
            "Length of the longest side of a right triangle, by Pythagoras.",
            "math.sqrt(a * a + b * b)",
        ),
        ("compound", "p, r, n", "Money after n years of interest paid on interest.", "p * (1 + r) ** n"),
        ("celsius", "f", "Convert a temperature from Fahrenheit to Celsius.", "(f - 32) * 5 / 9"),
    ]
    source = "import math\n"
    for name, args, doc, expr in functions:
        filler = "\n".join(f"    # step {i}: {doc.lower()}" for i in range(6))
        source += f'\n\ndef {name}({args}):\n    """{doc}"""\n{filler}\n    return {expr}\n'
    (root / "shapes.py").write_text(source)
    (root / "utf16.txt").write_bytes(
        "The café in Zürich was closed all week because of the train drivers’ strike.".encode("utf-16")
    )
    (root / "legacy.txt").write_bytes("Crème brûlée: caramelise the sugar with a blowtorch.".encode("cp1252"))
    (root / "loop").symlink_to(root)
    (root / "empty.md").write_bytes(b"")
    return root


def hits(cli, query: str, *extra: str) -> list[dict]:
    result = cli("query", query, "--json", *extra)
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_every_format_is_found_at_its_exact_place(cli, documents, monkeypatch):
    monkeypatch.chdir(documents)
    result = cli("index", ".", "-v")
    assert result.exit_code == 0, result.stderr
    for name, reason in [
        ("locked.pdf", "encrypted"),
        ("truncated.pdf", "truncated or corrupt"),
        ("scan.pdf", "no text layer"),
    ]:
        assert f"{name}: it" in result.stderr and reason in result.stderr, (name, result.stderr)

    (top,) = hits(cli, "how do I set up the measuring device", "--path", "*.pdf", "-k", "1")
    assert (top["path"], top["page"]) == ("report.pdf", 2)
    (top,) = hits(cli, "bird migration", "--path", "*.pdf", "-k", "1")
    assert top["page"] == 1
    text_out = cli("query", "capital gains on stocks", "--path", "*.pdf", "-k", "1").stdout
    assert text_out.startswith("report.pdf:p3:1")

    (top,) = hits(cli, "poisonous fungi", "--path", "*.html", "-k", "1")
    assert top["heading"] == "Field guide > Mushrooms" and "deadly" in top["text"]
    assert not hits(cli, "javascript payload volcanoes", "--path", "*.html", "--min-score", "0.5")

    (top,) = hits(cli, "removing calcium deposits from a coffee maker", "-k", "1")
    assert top["path"] == "manual.docx" and top["heading"] == "Espresso machine > Descaling"

    (top,) = hits(cli, "total income per month from the spreadsheet", "-k", "1")
    assert (top["path"], top["cell"]) == ("analysis.ipynb", 2)
    assert (top["start_line"], top["end_line"]) == (1, 3)

    (top,) = hits(cli, "containers on Debian", "--path", "*.md", "-k", "1")
    assert top["heading"] == "Guide > Install > Linux" and top["end_line"] == 11 and "Debian" in top["text"]

    lines = (documents / "shapes.py").read_text().split("\n")
    for top in hits(cli, "anything", "--path", "*.py", "-k", "10"):  # code is cut between definitions
        assert lines[top["start_line"] - 1].startswith(("def ", "import ")), top
        assert top["text"].split("\n") == lines[top["start_line"] - 1 : top["end_line"]]
    (top,) = hits(cli, "temperature unit conversion", "--path", "*.py", "-k", "1")
    assert "def celsius" in top["text"] and "def circle_area" not in top["text"]

    (top,) = hits(cli, "railway workers walked out and the coffee shop shut", "--path", "*.txt", "-k", "1")
    assert top["path"] == "utf16.txt" and "café in Zürich" in top["text"]
    (top,) = hits(cli, "dessert with burnt sugar", "--path", "*.txt", "-k", "1")
    assert top["path"] == "legacy.txt" and "Crème brûlée" in top["text"]


def test_a_file_vanishing_mid_run_is_skipped(documents, isolated_home, monkeypatch):
    import semsearch.index.indexer as indexer_module
    from semsearch.index.indexer import Indexer, IndexOptions

    real_crawl = indexer_module.crawl

    def crawl_then_delete(roots, options):
        for item in real_crawl(roots, options):
            yield item
            if getattr(item, "path", None) and item.path.name == "guide.md":
                os.unlink(item.path)  # gone between the crawl and the read

    monkeypatch.setattr(indexer_module, "crawl", crawl_then_delete)
    report = Indexer(isolated_home).run(IndexOptions(paths=[documents]))
    assert not report.interrupted
    assert any(p.name == "guide.md" and "No such file" in r for p, r in report.skipped)
    assert report.added >= 8
