"""The one door to an index's store for the layers above: open, create, or find what is left of one.

An index is a folder (SQLite as the truth, FAISS vectors beside it), or a PostgreSQL database with pgvector
when the folder stands for one (``--store``/``store``; see ``semsearch.storespec`` and ``storage.postgres``).
Callers get the interfaces of ``storage.interface`` and never the classes behind them (nor psycopg).
"""

from __future__ import annotations

from pathlib import Path

from semsearch.model.spec import ModelSpec
from semsearch.storage.interface import IndexStore, SearchIndex
from semsearch.storage.layout import IndexPaths
from semsearch.storespec import remember, root_name, selected


def open_store(where: IndexPaths | Path) -> IndexStore:
    """The existing index at ``where`` (NoIndex saying how to start one, IndexCorrupt when damaged)."""
    paths = where if isinstance(where, IndexPaths) else IndexPaths(where)
    spec = selected(paths.root)
    if spec is not None:
        from semsearch.storage.postgres import PgStore

        store = PgStore.open(spec, paths, root_name())
        remember(paths.root, spec)
        return store
    from semsearch.storage.store import Store

    return Store.open(paths)


def create_store(paths: IndexPaths, model: ModelSpec, dim: int) -> IndexStore:
    """A new, empty index at ``paths`` for vectors of ``model`` with ``dim`` numbers."""
    spec = selected(paths.root)
    if spec is not None:
        from semsearch.storage.postgres import PgStore

        store = PgStore.create(spec, paths, model, dim, root_name())
        remember(paths.root, spec)
        return store
    from semsearch.storage.store import Store

    return Store.create(paths, model, dim)


def store_exists(paths: IndexPaths) -> bool:
    """Whether there is an index at ``paths`` to open (in its folder, or in the database it stands for)."""
    spec = selected(paths.root)
    if spec is None:
        return paths.db.exists()
    from semsearch.storage.postgres import PgStore

    return PgStore.exists(spec)


def is_shared(paths: IndexPaths) -> bool:
    """Whether the index is a shared (PostgreSQL) one, which takes several writers at once."""
    return selected(paths.root) is not None


def store_remains(paths: IndexPaths) -> list[Path]:
    """Files of an index whose database is gone (never silently recreated empty)."""
    if selected(paths.root) is not None:
        return []
    from semsearch.storage.store import Store

    return Store.remains(paths)


def open_for_search(store: IndexStore, with_vectors: bool, private: bool = False) -> SearchIndex:
    """``store`` as queries read it; see ``storage.embedded.open_for_search``."""
    if getattr(store, "kind", "") == "postgresql":
        from semsearch.storage.postgres import PgSearchIndex

        return PgSearchIndex(store, with_vectors)
    from semsearch.storage.embedded import open_for_search as open_embedded

    return open_embedded(store, with_vectors, private)
