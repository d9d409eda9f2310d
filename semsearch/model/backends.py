"""The encoder backends an index can be built with, and what kind of vectors each makes."""

from __future__ import annotations

# fp32 ONNX gives the same vectors as torch (cosine 1.0000), so "torch" and "onnx" indexes are
# interchangeable; int8 vectors differ a little and are recorded as their own kind.
BACKENDS = ("onnx", "torch", "onnx-int8")
DEFAULT_BACKEND = "onnx"


def vector_kind(backend: str) -> str:
    return "int8" if backend == "onnx-int8" else "fp32"
