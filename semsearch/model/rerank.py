"""Re-score the best hits with a cross-encoder that the user keeps on this machine (opt-in: it loads torch)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from semsearch.errors import ModelUnavailable

_loaded: dict[str, object] = {}


def load_cross_encoder(folder: str):
    """A sentence-transformers CrossEncoder from a local folder, loaded once per process."""
    path = Path(folder).expanduser().absolute()
    key = str(path)
    if key not in _loaded:
        if not (path / "config.json").is_file():
            raise ModelUnavailable(
                f"No cross-encoder at {path}: give --rerank the folder of a sentence-transformers CrossEncoder "
                "saved on this machine (semsearch ships none)."
            )
        from semsearch.model.encoders import offline

        offline()
        try:
            from sentence_transformers import CrossEncoder

            _loaded[key] = CrossEncoder(str(path), device="cpu", local_files_only=True)
        except Exception as e:  # a broken or foreign model folder
            raise ModelUnavailable(f"Could not load the cross-encoder at {path}: {e}") from e
    return _loaded[key]


def rerank(folder: str, query: str, hits: list):
    """The hits re-ordered by the cross-encoder's score of (query, chunk); exact-term matches stay first."""
    model = load_cross_encoder(folder)
    pairs = [(query, f"{h.heading}\n{h.text}" if h.heading else h.text) for h in hits]
    scores = model.predict(pairs, batch_size=16, show_progress_bar=False, convert_to_numpy=True)
    rescored = [replace(h, rerank_score=float(s)) for h, s in zip(hits, scores, strict=True)]
    return sorted(rescored, key=lambda h: (-len(h.exact), -h.rerank_score))
