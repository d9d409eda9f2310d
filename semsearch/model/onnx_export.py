"""Export a sentence-transformers model once, at index time, to an ONNX encoder folder that queries load without torch.

The folder holds the ONNX graph of the transformer (pre-optimized by ONNX Runtime at
ORT_ENABLE_EXTENDED, which stays portable across CPUs), the model's fast tokenizer as
``tokenizer.json``, and ``manifest.json`` (written last) that ``semsearch.onnx_encoder`` reads.
The export is built in a hidden sibling folder and renamed into place, so an interrupted export
never leaves a folder that looks valid. Importing this module is cheap: torch,
sentence-transformers, onnxruntime and numpy are imported inside ``export_onnx`` only.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import platform
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from semsearch.errors import ExportFailed, SemsearchError
from semsearch.system import alive

# Texts the fresh export is checked on: tokens must equal sentence-transformers' own, and the vectors
# must match its ONNX backend. The last one runs past any max_seq_length up to 512 tokens.
_PROBES = [
    "A short query",
    "Café déjà vu: naïve façade, ÅNGSTRÖM and 東京 in one line\twith a tab.",
    "   leading and trailing spaces   ",
    " ".join(f"word{i} is number {i}" for i in range(200)),
]
_MIN_COSINE = {False: 0.999, True: 0.9}  # fp32 graph, qint8 graph (measured ~0.99 mean for qint8)


def export_onnx(model_dir: Path, out_dir: Path, *, quantize: bool = False) -> Path:
    """Export the sentence-transformers model at ``model_dir`` to an ONNX encoder folder ``out_dir``.

    ``quantize`` writes a dynamically quantized (qint8) graph instead of fp32: ~1.5x faster to
    encode, at a cosine of ~0.99 to the fp32 vectors. Its activations are quantized per batch, so
    a text's int8 vector also shifts a little with the batch it is encoded in (cosine down to ~0.97
    between batch sizes 1 and 32); fp32 vectors do not. An existing ``out_dir`` is replaced only
    once the new export is complete. Returns ``out_dir``. Raises ``ExportFailed`` when the model
    cannot be exported (not a model folder, a pipeline the ONNX encoder cannot reproduce, or an
    export whose vectors do not match), so the caller can go on with the torch encoder.
    """
    model_dir = Path(model_dir)
    out_dir = Path(out_dir)
    if not model_dir.is_dir() or not any((model_dir / name).is_file() for name in ("modules.json", "config.json")):
        raise ExportFailed(f"Cannot export {model_dir} to ONNX: it is not a sentence-transformers model folder.")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportFailed(f"Cannot export to {out_dir}: a file is in the way.")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_siblings(out_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))
    except OSError as exc:
        raise ExportFailed(f"Cannot export to {out_dir}: {_reason(exc)}") from exc
    try:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the export is an ordinary folder
        manifest = _build(model_dir.resolve(), tmp, quantize)
        _write_manifest(tmp, manifest)
        fsync_tree(tmp)
        move_into_place(tmp, out_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, Exception) and not isinstance(exc, SemsearchError):
            raise ExportFailed(f"Cannot export {model_dir} to ONNX: {_reason(exc)}") from exc
        raise
    return out_dir


def _build(model_dir: Path, tmp: Path, quantize: bool) -> dict[str, Any]:
    """Write the ONNX graph and tokenizer into ``tmp``, check them, and return the manifest."""
    # Nothing may be downloaded: load by local path, with the hub switched off.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import numpy as np
            import onnxruntime as ort
            import optimum.onnxruntime  # noqa: F401  (what backend="onnx" exports with)
            import sentence_transformers
            from sentence_transformers import SentenceTransformer
            from sentence_transformers.backend import export_dynamic_quantized_onnx_model
            from sentence_transformers.models import Normalize, Pooling, Transformer
            from tokenizers import Tokenizer

            from semsearch.model.onnx_encoder import MANIFEST_FORMAT, MANIFEST_VERSION, OnnxEncoder
        except ImportError as exc:
            raise ExportFailed(
                f"ONNX export needs sentence-transformers with optimum-onnx and onnxruntime ({exc})."
            ) from exc

    # Quieted after the imports: importing transformers resets its loggers' levels.
    with _quiet():
        model = SentenceTransformer(
            str(model_dir),
            backend="onnx",
            device="cpu",
            local_files_only=True,
            model_kwargs={"provider": "CPUExecutionProvider"},
        )
        modules = list(model)
        names = [type(m).__name__ for m in modules]
        if (
            len(modules) not in (2, 3)
            or not isinstance(modules[0], Transformer)
            or not isinstance(modules[1], Pooling)
            or (len(modules) == 3 and not isinstance(modules[2], Normalize))
        ):
            raise ExportFailed(
                f"Cannot export {model_dir} to ONNX: its pipeline {names} is not Transformer, Pooling[, Normalize]."
            )
        transformer, pooling = modules[0], modules[1]
        tokenizer = transformer.tokenizer
        if tokenizer is None or not getattr(tokenizer, "is_fast", False):
            raise ExportFailed(f"Cannot export {model_dir} to ONNX: it has no fast (tokenizer.json) tokenizer.")
        modes = [pooling.pooling_mode] if isinstance(pooling.pooling_mode, str) else list(pooling.pooling_mode)
        if model.prompts and not pooling.include_prompt:
            raise ExportFailed(f"Cannot export {model_dir} to ONNX: its pooling leaves prompt tokens out.")
        max_seq_length = transformer.max_seq_length
        if not isinstance(max_seq_length, int) or max_seq_length < 1:
            raise ExportFailed(f"Cannot export {model_dir} to ONNX: it has no maximum sequence length.")

        source = Path(transformer.model.path)  # the graph optimum exported to a temporary folder
        quantization = None
        if quantize:
            quantization = "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "avx512_vnni"
            scratch = tmp / "_quantize"
            export_dynamic_quantized_onnx_model(model, quantization, str(scratch))
            (source,) = (scratch / "onnx").glob("*.onnx")
        onnx_file = "model_qint8.onnx" if quantize else "model.onnx"

        # Optimize once here rather than at every query's load. EXTENDED fusions are portable across
        # CPUs; ENABLE_ALL would add layout changes tied to this machine's instruction set.
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(tmp / onnx_file)
        options.log_severity_level = 3
        session = ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        outputs = [o.name for o in session.get_outputs()]
        output_name = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]
        del session
        if quantize:
            shutil.rmtree(tmp / "_quantize")

        # The tokenizer as the model uses it (transformers may have adjusted its normalizer, e.g. for
        # lower-casing); truncation and padding are set by the encoder from the manifest.
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.no_padding()
        backend.no_truncation()
        backend.save(str(tmp / "tokenizer.json"))

        manifest = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "onnx_file": onnx_file,
            "tokenizer_file": "tokenizer.json",
            "output_name": output_name,
            "dim": len(modes) * int(pooling.embedding_dimension),
            "max_seq_length": max_seq_length,
            "pooling": modes,
            "normalize": len(modules) == 3,
            "padding": {
                "pad_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
                "pad_token": tokenizer.pad_token,
                "pad_type_id": tokenizer.pad_token_type_id,
                "side": tokenizer.padding_side,
            },
            "truncation_side": tokenizer.truncation_side,
            "prompts": dict(model.prompts),
            "default_prompt_name": model.default_prompt_name,
            "quantized": quantize,
            "quantization": f"dynamic qint8 ({quantization})" if quantize else None,
            "graph_optimization": "ORT_ENABLE_EXTENDED",
            "source_model": str(model_dir),
            "exported_with": {
                "sentence_transformers": sentence_transformers.__version__,
                "onnxruntime": ort.__version__,
            },
        }

        # Check the export against sentence-transformers before anyone relies on it.
        encoder = OnnxEncoder.open(tmp, manifest)
        features = model.tokenize(_PROBES)
        expected = [ids[mask.bool()].tolist() for ids, mask in zip(features["input_ids"], features["attention_mask"])]
        if encoder.tokenize(_PROBES) != expected:
            raise ExportFailed(f"Cannot export {model_dir} to ONNX: its tokenizer cannot be reproduced without torch.")
        want = model.encode(_PROBES, normalize_embeddings=True, convert_to_numpy=True)
        got = encoder.encode(_PROBES, normalize=True)
        if got.shape != want.shape:
            raise ExportFailed(f"Cannot export {model_dir} to ONNX: vectors of shape {got.shape}, not {want.shape}.")
        worst = float(np.min(np.sum(got * want, axis=1)))
        if not worst >= _MIN_COSINE[quantize]:
            raise ExportFailed(f"Cannot export {model_dir} to ONNX: its vectors differ (cosine {worst:.4f}).")
        del encoder, model
    return manifest


def _reason(exc: BaseException, limit: int = 200) -> str:
    """A library's exception as one short line (some carry a page of text, e.g. every known model type)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > limit:
        stop = text.find(". ", 0, limit)
        text = text[: stop + 1] if stop > 0 else text[: limit - 1] + "…"
    return text


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest last: a folder without one is not an encoder."""
    from semsearch.model.onnx_encoder import MANIFEST_NAME

    with open(folder / MANIFEST_NAME, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def fsync_tree(folder: Path) -> None:
    """Make the files and the folder durable before the rename publishes them."""
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename ``tmp`` to ``out_dir``; an existing ``out_dir`` is set aside first and removed after."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old, out_dir)
        raise
    _fsync_dir(out_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_stale_siblings(out_dir: Path) -> None:
    """Remove the temporary folders that exports killed before they could clean up left beside ``out_dir``."""
    if os.name != "posix":  # os.kill(pid, 0) tests for a process only on POSIX
        return
    for kind in ("tmp", "old"):
        for path in out_dir.parent.glob(f".{glob.escape(out_dir.name)}.{kind}-*-*"):
            pid = path.name[len(f".{out_dir.name}.{kind}-") :].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the libraries' warnings and advice (e.g. "save the exported model") off the user's terminal."""
    loggers = [logging.getLogger(name) for name in ("sentence_transformers", "transformers", "optimum", "torch")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
