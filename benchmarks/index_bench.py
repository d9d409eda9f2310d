"""Indexing speed: raw encoder rate vs end-to-end indexing rate, no-op re-index time, fresh query time.

Writes SciFact documents (read from ../shared/eval/scifact, never copied into the repo) as one text
file each into a temporary folder, indexes them through the real indexer, and prints figures:

    python benchmarks/index_bench.py [--docs 1000] [--corpus PATH]
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

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "eval" / "scifact" / "corpus.jsonl"
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_docs(corpus: Path, folder: Path, limit: int) -> int:
    n = 0
    with corpus.open(encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            (folder / f"{doc['_id']}.txt").write_text(f"{doc.get('title', '')}\n\n{doc['text']}\n", encoding="utf-8")
            n += 1
            if n >= limit:
                break
    return n


def raw_rate(folder: Path, index_dir: Path, backend: str) -> tuple[float, int]:
    """Chunks/s of the encoder alone (the one the indexer uses), on exactly the chunks it will embed."""
    from semsearch.index.chunk import Chunker
    from semsearch.index.extractors import extract
    from semsearch.model.backends import vector_kind
    from semsearch.model.encoders import OnnxTextEncoder, TorchEncoder, export_for_index
    from semsearch.model.spec import load_tokenizer, resolve_model
    from semsearch.storage.layout import IndexPaths

    spec = resolve_model(None)
    chunker = Chunker(load_tokenizer(spec), spec.max_seq_length)
    texts = []
    for path in sorted(folder.iterdir()):
        texts.extend(c.embed_text for c in chunker.chunk(extract(path, path.read_bytes())))
    if backend == "torch":
        encoder = TorchEncoder(spec)
    else:  # the same export the indexer will find in the index folder
        encoder = OnnxTextEncoder(spec, export_for_index(spec, IndexPaths(index_dir), vector_kind(backend)))
    encoder.encode_documents(texts[:64])  # warm up
    started = time.perf_counter()
    encoder.encode_documents(texts)
    return len(texts) / (time.perf_counter() - started), len(texts)


def noop_reindex_seconds(corpus: Path, files: int) -> tuple[float, str]:
    """Index ``files`` small files (few distinct texts, so little to embed), then time a re-index."""
    from semsearch.index.indexer import Indexer, IndexOptions

    with tempfile.TemporaryDirectory(prefix="semsearch-noop-") as tmp:
        docs, index_dir = Path(tmp) / "docs", Path(tmp) / "index"
        texts = []
        with corpus.open(encoding="utf-8") as f:
            for line, _ in zip(f, range(50)):
                doc = json.loads(line)
                texts.append(f"{doc.get('title', '')}\n\n{doc['text']}\n")
        for i in range(files):
            folder = docs / f"d{i // 500:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.txt").write_text(texts[i % len(texts)], encoding="utf-8")
        Indexer(index_dir).run(IndexOptions(paths=[docs]))
        started = time.perf_counter()
        report = Indexer(index_dir).run(IndexOptions(paths=[docs]))
        return time.perf_counter() - started, report.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000, help="how many SciFact documents (default 1000)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--query-runs", type=int, default=3)
    parser.add_argument("--backend", default="onnx", choices=["onnx", "torch", "onnx-int8"])
    parser.add_argument("--noop-files", type=int, default=10_000, help="files for the no-op re-index timing")
    args = parser.parse_args()

    from semsearch.index.indexer import Indexer, IndexOptions

    with tempfile.TemporaryDirectory(prefix="semsearch-bench-") as tmp:
        docs, index_dir = Path(tmp) / "docs", Path(tmp) / "index"
        docs.mkdir()
        n = write_docs(args.corpus, docs, args.docs)
        print(f"documents: {n}, backend: {args.backend}")

        raw1, chunks = raw_rate(docs, index_dir, args.backend)
        started = time.perf_counter()
        report = Indexer(index_dir).run(IndexOptions(paths=[docs], backend=args.backend))
        e2e_seconds = time.perf_counter() - started
        raw2, _ = raw_rate(docs, index_dir, args.backend)
        raw = (raw1 + raw2) / 2
        e2e = report.chunks_embedded / e2e_seconds
        print(f"chunks: {chunks} (embedded by the indexer: {report.chunks_embedded})")
        print(f"raw encoder rate:      {raw:8.1f} chunks/s  (runs: {raw1:.1f}, {raw2:.1f})")
        print(f"end-to-end index rate: {e2e:8.1f} chunks/s  ({e2e_seconds:.1f} s)")
        print(f"ratio end-to-end/raw:  {e2e / raw:8.2f}")

        started = time.perf_counter()
        noop = Indexer(index_dir).run(IndexOptions(paths=[docs]))
        print(f"no-op re-index:        {time.perf_counter() - started:8.2f} s  ({noop.summary()})")
        seconds, summary = noop_reindex_seconds(args.corpus, args.noop_files)
        print(f"no-op re-index of {args.noop_files} files: {seconds:.2f} s  ({summary})")

        exe = Path(sys.executable).parent / "semsearch"
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "semsearch"]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        times = []
        for _ in range(args.query_runs):
            started = time.perf_counter()
            subprocess.run(
                [*command, "query", "vitamin D deficiency and bone density", "--index", str(index_dir), "-k", "5"],
                check=True,
                capture_output=True,
                env=env,
            )
            times.append(time.perf_counter() - started)
        print(f"fresh query process:   {statistics.median(times):8.2f} s  (median of {len(times)})")


if __name__ == "__main__":
    main()
