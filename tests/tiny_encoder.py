"""A tiny deterministic encoder for tests that are not about the model: words hashed into a vector.

It implements ``semsearch.model.interface.Encoder`` with the default model's spec and dimension, so an index
built with it is a normal index; texts that share words get similar vectors, which is all such tests need.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from semsearch.model.spec import ModelSpec, resolve_model

WORD = re.compile(r"\w+")


class TinyEncoder:
    def __init__(self, spec: ModelSpec | None = None, dim: int = 384):
        self.spec = spec or resolve_model(None)
        self.dim = dim
        self.calls = 0

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            v[int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] & 1 else -1.0
        norm = np.linalg.norm(v)
        if norm == 0:
            v[0] = 1.0
            return v
        return v / norm

    def encode_documents(self, texts: list[str], on_batch=None) -> np.ndarray:
        self.calls += 1
        out = np.stack([self._vector(t) for t in texts]) if texts else np.empty((0, self.dim), np.float32)
        if on_batch:
            on_batch(len(texts))
        return out

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts])
