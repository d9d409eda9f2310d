"""What both stores record about an index's model, and the checks on its format and model they make when opening
it (and the notice before a long upgrade), in the same words (each names its index its own way: a folder, or a
PostgreSQL database and schema)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from semsearch.errors import IndexCorrupt, ModelMismatch
from semsearch.model.spec import ModelSpec

if TYPE_CHECKING:
    from semsearch.storage.interface import IndexStore


def model_meta(model: ModelSpec) -> dict[str, str]:
    """The meta rows that say which model (and prefixes, and --dim) the index's vectors were made with."""
    return {
        "model_ref": model.ref,
        "model_name": model.name,
        "model_fingerprint": model.fingerprint,
        "max_seq_length": str(model.max_seq_length),
        "model_prefixes": json.dumps({"query": model.query_prefix, "document": model.document_prefix}),
        "truncate_dim": str(model.truncate_dim or ""),  # --dim: vectors cut to this many dimensions
    }


def recorded_prefixes(raw: str) -> dict[str, str]:
    """The query and document prefixes of a ``model_prefixes`` meta value."""
    try:
        prefixes = json.loads(raw)
    except ValueError:
        prefixes = {}
    return {"query_prefix": prefixes.get("query", ""), "document_prefix": prefixes.get("document", "")}


def check_format(rows: dict[str, str], newest: int, subject: str, not_an_index: str) -> int:
    """The format version of the index whose meta rows are ``rows``; IndexCorrupt when a newer semsearch wrote it
    (``subject`` names the index: "The index at PATH") or when it is no semsearch index (``not_an_index``)."""
    version = int(rows.get("format_version", "0"))
    if version > newest:
        raise IndexCorrupt(
            f"{subject} was written by a newer semsearch (format {version}); upgrade semsearch to use it."
        )
    if version < 1 or "model_ref" not in rows:
        raise IndexCorrupt(not_an_index)
    return version


def check_model(store: IndexStore, model: ModelSpec, subject: str, elsewhere: str) -> None:
    """Refuse a model other than the one the index was built with (or the same with other prefixes): ``subject``
    names the index ("This index"), ``elsewhere`` the way out ("another --index folder")."""
    if store.meta("model_fingerprint") != model.fingerprint:
        raise ModelMismatch(
            f"{subject} was built with the model '{store.meta('model_name')}', not '{model.name}'; "
            f"to switch, rebuild it with: semsearch index --change-model --model {model.ref} (or use {elsewhere})."
        )
    recorded = store.recorded_prefixes()
    if recorded != {"query_prefix": model.query_prefix, "document_prefix": model.document_prefix}:
        raise ModelMismatch(
            f"{subject} was built with query prefix {recorded['query_prefix']!r} and document prefix "
            f"{recorded['document_prefix']!r}; to change them, rebuild it with: semsearch index --change-model "
            f"--query-prefix TEXT --document-prefix TEXT (or use {elsewhere})."
        )


def say_upgrading(subject: str, change: str, passages: int, once: str = "", also: str = "") -> None:
    """Before a one-time upgrade that goes over every stored passage (minutes on millions of them), one notice
    through the ``semsearch`` logger: the command line shows it on stderr, a background watcher's goes to its log.
    ``subject`` names the index ("this index"), ``change`` what is done to its passages, ``once`` and ``also``
    add to the sentence; nothing is said of an empty index."""
    if not passages:
        return
    import logging  # here: opening an index of the current format never needs it

    logging.getLogger("semsearch.storage").warning(
        "upgrading %s for this version of semsearch (once%s): %s %s, which can take a few minutes on a large index%s",
        subject, f", {once}" if once else "", change, f"{passages:,} passage" + ("s" if passages > 1 else ""), also,
    )  # fmt: skip
