"""--dim N: accepted for models that declare Matryoshka training (vectors cut and re-normalized, the index
pinned to N, queries cut the same way on both encoders), refused with a reason for the others."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, write_corpus
from typer.testing import CliRunner

from semsearch.model.matryoshka import matryoshka_declaration, with_dim
from semsearch.model.spec import default_model_path, resolve_model

DIM = 128


def matryoshka_copy(folder: Path, declare: str = "card") -> Path:
    """The packaged model's files (linked, not copied) in a folder that declares Matryoshka training."""
    source = default_model_path()
    folder.mkdir(parents=True)
    for item in source.iterdir():
        if item.name not in ("README.md", "config_sentence_transformers.json"):
            (folder / item.name).symlink_to(item)
    card = (source / "README.md").read_text()
    config = json.loads((source / "config_sentence_transformers.json").read_text())
    if declare == "card":
        card += "\n## Training\n\nLoss: `MatryoshkaLoss` with dims [384, 256, 128, 64].\n"
    else:
        config["matryoshka_dims"] = [384, 256, 128, 64]
    (folder / "README.md").write_text(card)
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    return folder


def test_dim_is_refused_for_a_model_that_does_not_declare_matryoshka(cli, corpus, isolated_home):
    result = cli("index", corpus, "--dim", "128")
    assert result.exit_code == 2
    assert "does not declare Matryoshka training" in result.stderr and "--force-dim" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (isolated_home / "index.sqlite3").exists()  # nothing was created
    assert matryoshka_declaration(default_model_path()) is None
    # --force-dim is the way round it; sizes beyond the model's are refused either way
    assert with_dim(resolve_model(None), 128, force=True).truncate_dim == 128
    result = cli("index", corpus, "--dim", "1000", "--force-dim")
    assert result.exit_code == 2 and "more than the 384 dimensions" in result.stderr


@pytest.mark.parametrize("declare", ["card", "config"])
def test_a_declaration_in_the_model_card_or_config_is_recognised(tmp_path, declare):
    folder = matryoshka_copy(tmp_path / "model", declare)
    assert matryoshka_declaration(folder) is not None
    assert with_dim(resolve_model(str(folder)), 64).truncate_dim == 64


@pytest.fixture(scope="module")
def truncated_index(tmp_path_factory):
    from semsearch.cli.app import app

    root = tmp_path_factory.mktemp("dim")
    model = matryoshka_copy(root / "mrl-model")
    docs = write_corpus(root / "docs", CORPUS)
    index = root / "index"
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, [*map(str, args), "--index", str(index)], catch_exceptions=False)

    result = run("index", docs, "--model", model, "--dim", DIM)
    assert result.exit_code == 0, result.output
    return model, docs, index, run


def test_vectors_are_cut_to_n_and_renormalized_and_the_index_records_n(truncated_index):
    from semsearch.model.encoders import TorchEncoder
    from semsearch.storage.layout import IndexPaths
    from semsearch.storage.store import Store

    model, _, index, run = truncated_index
    status = json.loads(run("status", "--json").stdout)
    assert status["dim"] == DIM and status["model"] == "mrl-model"
    store = Store.open(IndexPaths(index))
    try:
        assert store.truncate_dim == DIM
        rows = store.conn.execute(
            "SELECT c.text, c.heading, e.vector FROM chunks c JOIN embeddings e ON e.text_hash = c.text_hash"
        ).fetchall()
    finally:
        store.close()
    stored = np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows])
    assert stored.shape == (len(rows), DIM)
    assert np.allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)
    full = TorchEncoder(resolve_model(str(model))).encode([f"{r[1]}\n{r[0]}" if r[1] else r[0] for r in rows])
    assert full.shape[1] == 384
    expected = full[:, :DIM] / np.linalg.norm(full[:, :DIM], axis=1, keepdims=True)
    assert np.min(np.sum(stored * expected, axis=1)) > 0.999


def test_queries_are_cut_the_same_way_on_the_onnx_and_torch_encoders(truncated_index):
    from dataclasses import replace

    from semsearch.model.encoders import OnnxTextEncoder, TorchEncoder, load_query_encoder
    from semsearch.storage.layout import IndexPaths

    model, docs, index, run = truncated_index
    spec = replace(resolve_model(str(model)), truncate_dim=DIM)
    onnx = load_query_encoder(spec, IndexPaths(index), "fp32")
    assert isinstance(onnx, OnnxTextEncoder)  # the index made its export; queries do not need torch
    texts = ["baking a loaf of bread at home", "retry with backoff"]
    a, b = onnx.encode_queries(texts), TorchEncoder(spec).encode_queries(texts)
    assert a.shape == b.shape == (2, DIM)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(a * b, axis=1)) > 0.999
    hits = [json.loads(line) for line in run("query", "baking a loaf of bread at home", "--json").stdout.splitlines()]
    assert hits[0]["abspath"] == str(docs / "kitchen" / "sourdough.txt")


def test_another_dim_on_an_existing_index_is_refused_until_change_model(truncated_index):
    _, docs, _, run = truncated_index
    result = run("index", docs, "--dim", "64")
    assert result.exit_code == 2
    assert "holds 128-dimension vectors, not 64" in result.stderr and "--change-model --dim 64" in result.stderr
    assert "up to date" in run("index", docs).stdout  # without --dim the pinned 128 is kept
    assert json.loads(run("status", "--json").stdout)["dim"] == DIM
    # --change-model re-embeds at the new size (this test runs last: it changes the module's index)
    result = run("index", "--change-model", "--dim", "64")
    assert result.exit_code == 0, result.output
    assert json.loads(run("status", "--json").stdout)["dim"] == 64
    assert json.loads(run("query", "bread", "--json", "-k", "1").stdout)["path"]
