"""The one door to an index's store for the layers above: open, create, or find what is left of one.

Today an index is a folder (SQLite as the truth, FAISS vectors beside it); callers get the interfaces of
``storage.interface`` and never the classes behind them.
"""

from __future__ import annotations

from pathlib import Path

from semsearch.model.spec import ModelSpec
from semsearch.storage.interface import IndexStore, SearchIndex
from semsearch.storage.layout import IndexPaths


def open_store(where: IndexPaths | Path) -> IndexStore:
    """The existing index at ``where`` (NoIndex saying how to start one, IndexCorrupt when damaged)."""
    from semsearch.storage.store import Store

    return Store.open(where if isinstance(where, IndexPaths) else IndexPaths(where))


def create_store(paths: IndexPaths, model: ModelSpec, dim: int) -> IndexStore:
    """A new, empty index at ``paths`` for vectors of ``model`` with ``dim`` numbers."""
    from semsearch.storage.store import Store

    return Store.create(paths, model, dim)


def store_remains(paths: IndexPaths) -> list[Path]:
    """Files of an index whose database is gone (never silently recreated empty)."""
    from semsearch.storage.store import Store

    return Store.remains(paths)


def open_for_search(store: IndexStore, with_vectors: bool, private: bool = False) -> SearchIndex:
    """``store`` as queries read it; see ``storage.embedded.open_for_search``."""
    from semsearch.storage.embedded import open_for_search as open_embedded

    return open_embedded(store, with_vectors, private)
