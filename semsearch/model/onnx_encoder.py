"""Encode texts with an exported ONNX model using only onnxruntime, tokenizers and numpy, so queries never import torch.

The folder is the one ``semsearch.onnx_export.export_onnx`` writes: an ONNX graph of the
transformer, the model's fast tokenizer as ``tokenizer.json`` and a ``manifest.json`` that says
how to truncate, pad, pool and normalize so that the vectors match sentence-transformers'
``model.encode``. This module must stay light: numpy, onnxruntime, tokenizers and the stdlib only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from semsearch.errors import OnnxUnavailable

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "semsearch-onnx-encoder"
MANIFEST_VERSION = 1

# The pooling modes of sentence-transformers' Pooling module, all reproduced in _pool().
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")

_REQUIRED_KEYS = {
    "format": str,
    "version": int,
    "onnx_file": str,
    "tokenizer_file": str,
    "output_name": str,
    "dim": int,
    "max_seq_length": int,
    "pooling": list,
    "normalize": bool,
    "padding": dict,
    "truncation_side": str,
}


def load_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``manifest.json`` in an exported encoder folder.

    Raises ``OnnxUnavailable`` when the folder, the manifest or a file it names is missing, or
    the manifest is not one this version understands.
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OnnxUnavailable(f"No ONNX encoder in {folder}: {MANIFEST_NAME} is missing.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OnnxUnavailable(f"The ONNX encoder manifest {path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise OnnxUnavailable(f"{path} is not a semsearch ONNX encoder manifest.")
    if manifest.get("version") != MANIFEST_VERSION:
        raise OnnxUnavailable(
            f"{path} has manifest version {manifest.get('version')!r}; this semsearch reads version {MANIFEST_VERSION}."
        )
    for key, kind in _REQUIRED_KEYS.items():
        if not isinstance(manifest.get(key), kind):
            raise OnnxUnavailable(f"{path} is incomplete: {key!r} is missing or not a {kind.__name__}.")
    bad = [mode for mode in manifest["pooling"] if mode not in POOLING_MODES]
    if bad or not manifest["pooling"]:
        raise OnnxUnavailable(f"{path} names an unknown pooling mode: {manifest['pooling']!r}.")
    for key in ("onnx_file", "tokenizer_file"):
        if not (folder / manifest[key]).is_file():
            raise OnnxUnavailable(f"The ONNX encoder in {folder} is incomplete: {manifest[key]} is missing.")
    return manifest


def physical_cores() -> int:
    """The number of physical cores this process may use (hyper-threads do not help ONNX Runtime).

    Bounded by the CPUs the process may run on and by a cgroup v2 CPU quota (e.g. docker --cpus).
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max", encoding="ascii").read().split()[:2]
        if quota != "max":
            usable = min(usable, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    cores: set[tuple[str, str]] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            physical = ""
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    cores.add((physical, value.strip()))
    except OSError:
        pass
    if not cores:  # not Linux, or a kernel that does not say: assume no hyper-threading
        return max(1, usable)
    return max(1, min(len(cores), usable))


# A long-lived process (the watcher) turns this off before loading an encoder: ORT's worker threads
# otherwise spin after every run, which measured 14 ms of CPU per query answered instead of 4.
SPIN = True


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """ONNX Runtime options for a short-lived CLI process.

    The export already optimized the graph at ORT_ENABLE_EXTENDED, so loading runs only the cheap
    basic passes. Measured on the 2-core dev machine (MiniLM-L6): on a raw graph ORT_ENABLE_ALL
    costs 2-10 ms more at load than BASIC and encodes 5-20% faster; on the pre-optimized graph it
    still costs 5-20 ms more at load and encodes no faster (within 2%). Thread spinning is left at
    ORT's default (not measured).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1
    if not SPIN:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: warnings would land on the user's terminal
    return options


class OnnxEncoder:
    """Sentence embeddings from an exported ONNX encoder folder, matching sentence-transformers."""

    def __init__(self, session: ort.InferenceSession, tokenizer: Tokenizer, manifest: dict[str, Any]):
        self.session = session
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.dim: int = manifest["dim"]
        self.max_seq_length: int = manifest["max_seq_length"]
        self.normalize: bool = manifest["normalize"]
        self.pooling: tuple[str, ...] = tuple(manifest["pooling"])
        self.prompts: dict[str, str] = dict(manifest.get("prompts") or {})
        self.default_prompt_name: str | None = manifest.get("default_prompt_name")
        padding = manifest["padding"]
        self._pad_id = int(padding.get("pad_id", 0))
        self._pad_type_id = int(padding.get("pad_type_id", 0))
        self._pad_left = padding.get("side", "right") == "left"
        self._output_name = manifest["output_name"]
        self._inputs = {i.name: (np.int32 if i.type == "tensor(int32)" else np.int64) for i in session.get_inputs()}
        unknown = set(self._inputs) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown or "input_ids" not in self._inputs:
            raise OnnxUnavailable(f"The ONNX graph wants inputs this encoder cannot give: {sorted(self._inputs)}.")
        outputs = {o.name: o.shape for o in session.get_outputs()}
        if self._output_name not in outputs:
            raise OnnxUnavailable(f"The ONNX graph has no output {self._output_name!r}.")
        hidden = outputs[self._output_name][-1]
        if isinstance(hidden, int) and hidden * len(self.pooling) != self.dim:
            raise OnnxUnavailable(
                f"The ONNX encoder manifest says dim {self.dim}, but its graph pooled {self.pooling} gives "
                f"{hidden * len(self.pooling)}."
            )

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, threads: int | None = None) -> OnnxEncoder:
        """Load the encoder exported into ``folder``; ``threads`` defaults to the physical cores."""
        return cls.open(folder, load_manifest(folder), threads=threads)

    @classmethod
    def open(
        cls, folder: str | os.PathLike[str], manifest: dict[str, Any], *, threads: int | None = None
    ) -> OnnxEncoder:
        """Load the encoder in ``folder`` as ``manifest`` (already read and checked) describes it."""
        folder = Path(folder)
        try:
            tokenizer = Tokenizer.from_file(str(folder / manifest["tokenizer_file"]))
            session = ort.InferenceSession(
                str(folder / manifest["onnx_file"]),
                sess_options=session_options(threads),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime and tokenizers raise their own plain exception types
            raise OnnxUnavailable(f"The ONNX encoder in {folder} cannot be loaded: {exc}") from None
        # Truncate as the Transformer module does (truncation="longest_first", max_length=max_seq_length);
        # padding is done below, per batch, to the longest text in it.
        tokenizer.no_padding()
        tokenizer.enable_truncation(
            max_length=manifest["max_seq_length"],
            strategy="longest_first",
            direction=manifest["truncation_side"],
        )
        return cls(session, tokenizer, manifest)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """The token ids the model sees for each text, special tokens included, truncated."""
        return [e.ids for e in self.tokenizer.encode_batch(texts)]

    def encode(
        self,
        texts: list[str],
        batch_size: int = 32,
        *,
        prompt_name: str | None = None,
        normalize: bool | None = None,
    ) -> np.ndarray:
        """Embed ``texts``: a float32 array of shape (len(texts), dim).

        Vectors are L2-normalized when the model normalizes (its pipeline ends in Normalize), or as
        ``normalize`` says. As sentence-transformers does, the model's default prompt is put before
        each text unless ``prompt_name`` names another.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not one str")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        prompt = self._prompt(prompt_name)
        if prompt:
            texts = [prompt + text for text in texts]
        # Longest first, as sentence-transformers does, so each batch pads to little more than it needs;
        # tokenized a batch at a time, so a long list never holds all its encodings at once.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._encode_batch(self.tokenizer.encode_batch([texts[i] for i in rows]))
        if normalize is None:
            normalize = self.normalize
        if normalize:
            # as torch.nn.functional.normalize(p=2, dim=1, eps=1e-12)
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.maximum(norms, 1e-12)
        return out

    def _prompt(self, prompt_name: str | None) -> str:
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return ""
        if name not in self.prompts:
            raise ValueError(f"Prompt {name!r} not found; this model has {sorted(self.prompts)}")
        return self.prompts[name]

    def _encode_batch(self, encodings: list) -> np.ndarray:
        n = len(encodings)
        length = max(len(e.ids) for e in encodings)
        input_ids = np.full((n, length), self._pad_id, dtype=np.int64)
        type_ids = np.full((n, length), self._pad_type_id, dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.int64)
        for row, e in enumerate(encodings):
            k = len(e.ids)
            cols = slice(length - k, length) if self._pad_left else slice(0, k)
            input_ids[row, cols] = e.ids
            type_ids[row, cols] = e.type_ids
            mask[row, cols] = 1
        given = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": type_ids}
        feeds = {name: given[name].astype(dtype, copy=False) for name, dtype in self._inputs.items()}
        (tokens,) = self.session.run([self._output_name], feeds)
        return _pool(np.asarray(tokens, dtype=np.float32), mask, self.pooling)


def _pool(tokens: np.ndarray, mask: np.ndarray, modes: tuple[str, ...]) -> np.ndarray:
    """Sentence vectors from token vectors (n, length, hidden), as sentence-transformers' Pooling does."""
    n, length, _ = tokens.shape
    m = mask.astype(np.float32)[:, :, None]
    parts = []
    for mode in modes:
        if mode == "cls":  # the first real token: index 0 with right padding
            first = mask.argmax(axis=1)
            parts.append(tokens[np.arange(n), first])
        elif mode == "max":
            parts.append(np.where(m > 0, tokens, -np.inf).max(axis=1).astype(np.float32))
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            summed = (tokens * m).sum(axis=1)
            count = np.maximum(m.sum(axis=1), 1e-9)
            parts.append(summed / (count if mode == "mean" else np.sqrt(count)))
        elif mode == "weightedmean":
            weights = m * np.arange(1, length + 1, dtype=np.float32)[None, :, None]
            parts.append((tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9))
        elif mode == "lasttoken":  # the last real token
            flipped = mask[:, ::-1]
            last = np.where(flipped.max(axis=1) == 0, length - 1, length - 1 - flipped.argmax(axis=1))
            parts.append(tokens[np.arange(n), last] * mask[np.arange(n), last][:, None])
        else:
            raise ValueError(f"unknown pooling mode {mode!r}")
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False)
