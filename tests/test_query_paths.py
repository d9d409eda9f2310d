"""Queries encode with the index's ONNX export (no torch); the full model gives the same ranking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, write_corpus

SCIFACT = REPO.parent / "shared" / "eval" / "scifact" / "corpus.jsonl"
QUERIES = [
    "vitamin D and bone health",
    "effects of smoking on the lungs",
    "gene expression in cancer cells",
    "antibiotic resistance in bacteria",
    "sleep and memory",
]


@pytest.fixture
def real_corpus(tmp_path) -> Path:
    """200 abstracts of SciFact when the shared data is beside the repo, else the repo's sample documents."""
    root = tmp_path / "real"
    if SCIFACT.exists():
        files = {}
        with SCIFACT.open(encoding="utf-8") as f:
            for line, _ in zip(f, range(200)):
                doc = json.loads(line)
                files[f"{doc['_id']}.txt"] = f"{doc['title']}\n\n{doc['text']}\n"
        return write_corpus(root, files)
    import shutil

    shutil.copytree(REPO / "examples" / "docs", root)
    return root


def top10(index_dir: Path, text: str):
    from semsearch.search.engine import search
    from semsearch.search.hits import QueryOptions

    return [
        (h.path.name, h.start_line, round(h.score, 4))
        for h in search(index_dir, QueryOptions(text=text, k=10, show_all=True))
    ]


@pytest.mark.slow
def test_light_and_full_query_paths_rank_the_same(cli, real_corpus, isolated_home, monkeypatch):
    assert cli("index", real_corpus).exit_code == 0
    import semsearch.model.encoders as embed

    assert embed.ready_onnx_folder is not None and (isolated_home / "onnx" / "fp32" / "manifest.json").exists()
    light = {q: top10(isolated_home, q) for q in QUERIES}
    monkeypatch.setattr(embed, "ready_onnx_folder", lambda *a, **k: None)  # as if the export were missing
    full = {q: top10(isolated_home, q) for q in QUERIES}
    for q in QUERIES:
        assert len(light[q]) == 10
        assert [h[:2] for h in light[q]] == [h[:2] for h in full[q]], q
        for a, b in zip(light[q], full[q]):
            assert abs(a[2] - b[2]) < 2e-3


def test_a_query_process_never_imports_torch(cli, corpus, isolated_home):
    cli("index", corpus)
    probe = (
        "import sys\n"
        "sys.argv = ['semsearch', 'query', 'baking bread', '-l', '-k', '1']\n"
        "from semsearch.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'sentence_transformers'}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.splitlines()[0].endswith("kitchen/sourdough.txt")
    assert out.stdout.splitlines()[-1] == "HEAVY []"


def test_missing_export_falls_back_with_one_line_notice(cli, corpus, isolated_home):
    import shutil

    cli("index", corpus)
    shutil.rmtree(isolated_home / "onnx")
    result = cli("query", "baking bread", "-l", "-k", "1")
    assert result.exit_code == 0 and result.stdout.strip().endswith("sourdough.txt")
    notice = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(notice) == 1 and "full model" in notice[0]
    # the next index run makes the export again, and nothing is re-embedded
    result = cli("index")
    assert "0 chunks embedded" in result.stdout
    assert (isolated_home / "onnx" / "fp32" / "manifest.json").exists()
    assert cli("query", "baking bread", "-l", "-k", "1").stderr == ""


def test_torch_backend_still_leaves_an_export_for_queries(cli, corpus, isolated_home):
    assert cli("index", corpus, "--backend", "torch").exit_code == 0
    assert (isolated_home / "onnx" / "fp32" / "manifest.json").exists()
    assert cli("query", "baking bread", "-l", "-k", "1").stderr == ""


def test_int8_backend_is_its_own_kind_of_index(cli, tmp_path):
    docs = write_corpus(tmp_path / "d", {"a.txt": "Knead the dough and bake the bread.", "b.txt": "Sail the boat."})
    assert cli("index", docs, "--backend", "onnx-int8").exit_code == 0
    assert cli("query", "making a loaf", "-l", "-k", "1").stdout.strip().endswith("a.txt")
    refused = cli("index", docs, "--backend", "onnx")
    assert refused.exit_code == 2 and "int8 vectors" in refused.stderr and "--change-model" in refused.stderr
    assert cli("index", docs, "--backend", "bogus").exit_code == 2
