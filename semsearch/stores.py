"""Open the store an index folder stands for: the embedded SQLite + FAISS store, or a PostgreSQL one.

A PostgreSQL index also has a folder on each machine that uses it (see ``local_folder``): it holds that
machine's ONNX export of the model, the watcher's socket and log, and ``store.json``, which names the
database (its URL without the password) and the index, so that a process started with only that folder (the
watcher's background process, ``--index FOLDER``) finds the database too. Passwords never go to disk here:
libpq reads them from ``~/.pgpass``, ``PGPASSWORD`` or a service file.

Callers above the storage layer go through ``open_store``/``create_store`` and never import psycopg.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from . import storespec
from .paths import IndexPaths
from .storespec import PgSpec

STORE_FILE = "store.json"


@dataclass(frozen=True)
class Selected:
    spec: PgSpec
    origin: str | None = None


_selected: dict[Path, Selected] = {}  # local folder -> the PostgreSQL store it stands for, in this process
_origin: list[str | None] = [None]  # --root-name: how this process records its roots and files


def set_root_name(name: str | None) -> None:
    _origin[0] = name


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}@{netloc[1]}", parts.path, parts.query, parts.fragment))


def local_folder(spec: PgSpec, base: Path) -> Path:
    """This machine's folder for a PostgreSQL index, under ``base`` (the configured index folder)."""
    key = json.dumps({"url": _without_password(spec.conninfo), "index": spec.name})
    return base / "stores" / f"{spec.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def select(url: str, base: Path) -> Path:
    """Remember (for this process) that the folder returned stands for the PostgreSQL store at ``url``."""
    spec = storespec.parse(url)
    folder = local_folder(spec, base)
    _selected[folder] = Selected(spec)
    return folder


def selected(root: Path) -> PgSpec | None:
    """The PostgreSQL store a folder stands for (None: the folder is an embedded index)."""
    found = _selected.get(root)
    if found:
        return found.spec
    try:
        data = json.loads((root / STORE_FILE).read_text())
        return storespec.parse(data["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_postgres(paths: IndexPaths) -> bool:
    return selected(paths.root) is not None


def describe(paths: IndexPaths) -> str:
    """Where the index is, for messages and status (a database URL has its password masked)."""
    spec = selected(paths.root)
    return spec.where if spec else str(paths.root)


def _remember(paths: IndexPaths, spec: PgSpec) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    file = paths.root / STORE_FILE
    data = {"url": _without_password(spec.url), "index": spec.name}
    try:
        if json.loads(file.read_text()) == data:
            return
    except (OSError, ValueError):
        pass
    tmp = file.with_name(f".{STORE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, file)


def for_child(root: Path) -> dict[str, str]:
    """Before starting a process that gets only the folder (the background watcher): write ``store.json``, and
    the environment that process needs (a password given in the URL goes as PGPASSWORD, never on disk)."""
    spec = _selected.get(root) and _selected[root].spec
    if spec is None:
        return {}
    _remember(IndexPaths(root), spec)
    password = urlsplit(spec.url).password
    return {"PGPASSWORD": unquote(password)} if password else {}


def open_store(paths: IndexPaths):
    """The index's store: NoIndex when there is none (and the other errors of each store's ``open``)."""
    spec = selected(paths.root)
    if spec is None:
        from .store import Store

        return Store.open(paths)
    from .pgstore import PgStore

    store = PgStore.open(spec, paths, _origin[0])
    _remember(paths, spec)
    return store


def create_store(paths: IndexPaths, model, dim: int):
    spec = selected(paths.root)
    if spec is None:
        from .store import Store

        return Store.create(paths, model, dim)
    from .pgstore import PgStore

    store = PgStore.create(spec, paths, model, dim, _origin[0])
    _remember(paths, spec)
    return store


def store_exists(paths: IndexPaths) -> bool:
    spec = selected(paths.root)
    if spec is None:
        return paths.db.exists()
    from .pgstore import PgStore

    return PgStore.exists(spec)
