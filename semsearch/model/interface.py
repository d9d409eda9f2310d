"""What the rest of semsearch needs from an encoder: texts in, unit-length vectors out, of a known size."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from semsearch.model.spec import ModelSpec


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into normalized float32 vectors (one row per text) of ``dim`` numbers.

    ``spec`` names the model (its ``fingerprint`` is pinned in every index built with it). The ONNX and torch
    encoders (``model.encoders``) implement it; tests that are not about the model use a tiny deterministic one.
    """

    spec: ModelSpec
    dim: int

    def encode_documents(self, texts: list[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray: ...

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...
