"""The per-user cache of ONNX exports: a second index of a model gets the export from it (no torch, no
export), a damaged cache is never used, and it can be turned off."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from semsearch.index.indexer import Indexer, IndexOptions
from semsearch.model import export_cache
from semsearch.model.encoders import onnx_folder
from semsearch.search.engine import search
from semsearch.search.hits import QueryOptions
from semsearch.storage.layout import IndexPaths
from semsearch.userdirs import cache_dir


def _index(index_dir, corpus):
    return Indexer(index_dir).run(IndexOptions(paths=[corpus]))


def _cached(cache_dir):
    return sorted((cache_dir / "onnx").iterdir()) if (cache_dir / "onnx").is_dir() else []


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """An empty cache for this test alone."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SEMSEARCH_CACHE", str(folder))
    return folder


def test_a_second_index_gets_the_export_from_the_cache_without_exporting(corpus, tmp_path, own_cache, monkeypatch):
    first = tmp_path / "first"
    _index(first, corpus)
    [entry] = _cached(own_cache)
    stamp = json.loads((entry / export_cache.STAMP).read_text())
    assert set(stamp["files"]) >= {"model.onnx", "tokenizer.json", "manifest.json", "semsearch-model.json"}

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds the export")

    monkeypatch.setattr("semsearch.model.onnx_export.export_onnx", no_export)
    second = tmp_path / "second"
    _index(second, corpus)
    mine = onnx_folder(IndexPaths(second), "fp32")
    assert (mine / "model.onnx").stat().st_ino == (entry / "model.onnx").stat().st_ino  # linked, not copied
    assert (mine / "tokenizer.json").stat().st_ino != (entry / "tokenizer.json").stat().st_ino  # small: copied
    query = QueryOptions(text="baking bread at home", k=3, mode="semantic", show_all=True)
    assert [(h.path.name, round(h.score, 5)) for h in search(second, query)] == [
        (h.path.name, round(h.score, 5)) for h in search(first, query)
    ]


def test_a_new_index_whose_model_was_exported_before_never_imports_torch(corpus, tmp_path, own_cache):
    _index(tmp_path / "first", corpus)
    probe = (
        "import sys; from pathlib import Path; from semsearch.index.indexer import Indexer, IndexOptions; "
        f"r = Indexer(Path({str(tmp_path / 'second')!r})).run(IndexOptions(paths=[Path({str(corpus)!r})])); "
        "print(r.added, sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["6", "[]"]


def test_a_damaged_cached_export_is_not_used_and_is_stored_again(corpus, tmp_path, own_cache):
    _index(tmp_path / "first", corpus)
    [entry] = _cached(own_cache)
    model = entry / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.unlink()  # (a new file: the first index's linked copy stays whole)
    model.write_bytes(bytes(data))

    second = tmp_path / "second"
    _index(second, corpus)
    mine = onnx_folder(IndexPaths(second), "fp32") / "model.onnx"
    assert mine.read_bytes() != bytes(data)  # exported afresh, not the damaged copy
    assert search(second, QueryOptions(text="baking bread at home", k=1, show_all=True))[0].path.name == "sourdough.txt"
    [again] = _cached(own_cache)
    assert (again / "model.onnx").stat().st_ino == mine.stat().st_ino  # the cache holds the new, sound export


def test_an_empty_semsearch_cache_turns_the_cache_off(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_CACHE", "")
    assert cache_dir() is None
    _index(tmp_path / "index", corpus)
    assert onnx_folder(IndexPaths(tmp_path / "index"), "fp32").joinpath("manifest.json").is_file()
    monkeypatch.delenv("SEMSEARCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "semsearch"
