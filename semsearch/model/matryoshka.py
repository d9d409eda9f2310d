"""Shorter vectors (``--dim N``): which models may be truncated, and the truncation itself.

A model trained with sentence-transformers' MatryoshkaLoss packs the most information into the first
dimensions of its vectors, so their prefixes are good embeddings too; other models' prefixes are not.
The rule: ``--dim N`` is accepted when the model folder declares Matryoshka training, either in its
model card (``README.md`` names ``MatryoshkaLoss``, as sentence-transformers' generated cards do) or in
``config_sentence_transformers.json`` (a ``matryoshka_dims`` list), or when ``--force-dim`` is given.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from semsearch.model.spec import ModelSpec


def matryoshka_declaration(model_dir: Path) -> str | None:
    """Where the model folder declares Matryoshka training, or None when it does not."""
    try:
        config = json.loads((model_dir / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    if isinstance(config, dict) and isinstance(config.get("matryoshka_dims"), list) and config["matryoshka_dims"]:
        return "matryoshka_dims in config_sentence_transformers.json"
    try:
        card = (model_dir / "README.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        card = ""
    if "MatryoshkaLoss" in card:
        return "MatryoshkaLoss in its model card"
    return None


def native_dim(model_dir: Path) -> int | None:
    """The model's vector size as its configuration states it (None when it does not say)."""
    for file, key in (("1_Pooling/config.json", "word_embedding_dimension"), ("config.json", "hidden_size")):
        try:
            value = json.loads((model_dir / file).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and value > 0:
            return value
    return None


def with_dim(spec: ModelSpec, dim: int | None, force: bool = False) -> ModelSpec:
    """``spec`` set to truncate its vectors to ``dim``; refused, with what to do, for models not trained for it."""
    if dim is None:
        return replace(spec, truncate_dim=None)
    full = native_dim(spec.path)
    if dim < 1:
        raise UsageError(f"--dim must be at least 1, not {dim}.")
    if full is not None and dim > full:
        raise UsageError(
            f"--dim {dim} is more than the {full} dimensions of the model {spec.name}; use at most {full}."
        )
    if dim == full:
        return replace(spec, truncate_dim=None)
    if not force and matryoshka_declaration(spec.path) is None:
        raise UsageError(
            f"The model {spec.name} does not declare Matryoshka training (MatryoshkaLoss in its model card or "
            "matryoshka_dims in config_sentence_transformers.json), so its vectors lose meaning when cut short; "
            f"drop --dim, use a Matryoshka-trained model, or add --force-dim to truncate to {dim} anyway."
        )
    return replace(spec, truncate_dim=dim)


def truncate(vectors: np.ndarray, dim: int | None) -> np.ndarray:
    """The first ``dim`` dimensions of each vector, scaled back to unit length (as torch's normalize does)."""
    if dim is None or vectors.shape[1] <= dim:
        return vectors
    import numpy as np

    cut = np.ascontiguousarray(vectors[:, :dim], dtype=np.float32)
    cut /= np.maximum(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12)
    return cut
