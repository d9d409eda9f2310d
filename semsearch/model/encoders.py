"""Turn texts into normalized vectors with the index's model (sentence-transformers, loaded on first use)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from semsearch.errors import ModelUnavailable
from semsearch.model.matryoshka import truncate
from semsearch.model.spec import ModelSpec

BATCH_SIZE = 32

_loaded: dict[str, object] = {}
# One lock per loaded model: a watcher encodes documents and queries from two threads, and the model's fast
# tokenizer must not be used by both at once ("Already borrowed").
_locks: dict[str, threading.Lock] = {}


def offline() -> None:
    # Everything semsearch needs is on disk; never let a library reach for a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class _PrefixedEncoder:
    """What both encoders share: the model's document and query prefixes put before the texts."""

    spec: ModelSpec

    def encode(self, texts: list[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        raise NotImplementedError

    def encode_documents(self, texts: list[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        prefix = self.spec.document_prefix
        return self.encode([prefix + t for t in texts] if prefix else texts, on_batch)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        prefix = self.spec.query_prefix
        return self.encode([prefix + t for t in texts] if prefix else texts)


class TorchEncoder(_PrefixedEncoder):
    """The full sentence-transformers path: needed to index, and the fallback for queries."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        key = f"{spec.path}:{spec.fingerprint}"
        model = _loaded.get(key)
        if model is None:
            offline()
            try:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(spec.path), device="cpu", local_files_only=True)
            except Exception as e:  # a broken or foreign model folder
                raise ModelUnavailable(f"Could not load the model at {spec.path}: {e}") from e
            model.max_seq_length = spec.max_seq_length
            _loaded[key] = model
        self.model = model
        self._lock = _locks.setdefault(key, threading.Lock())
        self.full_dim = int(model.get_embedding_dimension())
        self.dim = _output_dim(spec, self.full_dim)

    def encode(self, texts: list[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Encode in batches of BATCH_SIZE; ``on_batch(n)`` is called after each with the number encoded."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Longest first, so each batch pads to similar lengths (as sentence-transformers does inside one call).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), BATCH_SIZE):
            idx = order[start : start + BATCH_SIZE]
            with self._lock:
                vectors = self.model.encode(
                    [texts[i] for i in idx],
                    batch_size=BATCH_SIZE,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                    prompt="",  # the prefixes are added above; never also the model's default_prompt_name
                )
            out[idx] = truncate(vectors, self.spec.truncate_dim)
            if on_batch:
                on_batch(len(idx))
        return out


class OnnxTextEncoder(_PrefixedEncoder):
    """The same model through onnxruntime and tokenizers only: no torch, ready in a fraction of a second."""

    def __init__(self, spec: ModelSpec, folder):
        from semsearch.model.onnx_encoder import OnnxEncoder  # numpy, onnxruntime, tokenizers

        self.spec = spec
        # One session per model and kind in a process: every index's export of the same model is the same graph.
        key = f"onnx:{spec.fingerprint}:{Path(folder).name}"
        encoder = _loaded.get(key)
        if encoder is None:
            encoder = OnnxEncoder.load(folder)
            _loaded[key] = encoder
        encoder.default_prompt_name = None  # the prefixes are added below; never also the model's default prompt
        self.onnx = encoder
        self.full_dim = int(encoder.dim)
        self.dim = _output_dim(spec, self.full_dim)

    def encode(self, texts: list[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH_SIZE):
            batch = texts[start : start + BATCH_SIZE]
            out[start : start + len(batch)] = truncate(
                self.onnx.encode(batch, batch_size=BATCH_SIZE), self.spec.truncate_dim
            )
            if on_batch:
                on_batch(len(batch))
        return out


def _output_dim(spec: ModelSpec, full: int) -> int:
    """The size of the vectors an encoder returns: the model's own, or the index's ``--dim``."""
    if spec.truncate_dim is None:
        return full
    if spec.truncate_dim > full:
        raise ModelUnavailable(
            f"The model at {spec.path} makes {full}-dimension vectors, fewer than the {spec.truncate_dim} asked for."
        )
    return spec.truncate_dim


def onnx_folder(paths, kind: str):
    return paths.onnx_dir / kind


def export_for_index(spec: ModelSpec, paths, kind: str):
    """Make the index's ONNX export of ``spec`` when it is missing or stale (from the per-user cache when it
    holds one, see export_cache.py); returns its folder.

    Raises ExportFailed (or OnnxUnavailable) when this model cannot be exported.
    """
    import json

    from semsearch.model.onnx_export import export_onnx

    folder = onnx_folder(paths, kind)
    stamp = folder / "semsearch-model.json"
    try:
        if json.loads(stamp.read_text())["fingerprint"] == spec.fingerprint:
            return folder
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from semsearch.model import export_cache

    if export_cache.fetch(spec.fingerprint, kind, folder):  # exported before, for another index
        return folder
    offline()
    export_onnx(spec.path, folder, quantize=kind == "int8")
    stamp.write_text(json.dumps({"fingerprint": spec.fingerprint, "model": spec.ref}))
    export_cache.publish(spec.fingerprint, kind, folder)
    return folder


def ready_onnx_folder(spec: ModelSpec, paths, kind: str):
    """The index's ONNX export of ``spec`` when it is complete and current, else None (no heavy import)."""
    import json

    folder = onnx_folder(paths, kind)
    try:
        stamp = json.loads((folder / "semsearch-model.json").read_text())
        if stamp["fingerprint"] == spec.fingerprint and (folder / "manifest.json").is_file():
            return folder
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def load_query_encoder(spec: ModelSpec, paths, kind: str):
    """The light ONNX encoder when the index has one; else the full model, with a one-line notice."""
    import logging

    from semsearch.errors import OnnxUnavailable

    folder = ready_onnx_folder(spec, paths, kind)
    if folder is not None:
        try:
            return OnnxTextEncoder(spec, folder)
        except OnnxUnavailable as e:
            reason = str(e)
    else:
        reason = "the index has no ONNX export of its model"
    logging.getLogger(__name__).warning(
        "using the full model for this query (slower start): %s; semsearch index makes the export", reason
    )
    return TorchEncoder(spec)
