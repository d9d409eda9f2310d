"""Which store an index lives in: a folder (the embedded default) or a PostgreSQL database (``postgresql://...``).

Light on purpose (no driver imported): config, status and error messages use it to show a store setting with
its password masked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from semsearch.errors import UsageError

SCHEMES = ("postgresql", "postgres")
DEFAULT_NAME = "semsearch"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MASK = "****"


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.split("://", 1)[0].lower() in SCHEMES and "://" in value


def mask(text: str) -> str:
    """``text`` with every password in it (in URLs or ``password=`` settings) replaced by ****."""
    text = re.sub(r"(?i)\b(postgres(?:ql)?://[^:/?#@\s]*):([^@\s]*)@", lambda m: f"{m.group(1)}:{MASK}@", text)
    return re.sub(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", lambda m: m.group(1) + MASK, text)


@dataclass(frozen=True)
class PgSpec:
    """A PostgreSQL store: libpq connection string and the index's name (its schema in that database)."""

    conninfo: str  # the URL as libpq takes it (the ``index`` parameter removed)
    name: str  # the index name: the schema holding its tables
    url: str  # as the user gave it

    @property
    def shown(self) -> str:
        """For messages: the URL with its password masked."""
        return mask(self.url)

    @property
    def where(self) -> str:
        """For messages: 'index NAME in URL' with the password masked."""
        return f"index '{self.name}' in {mask(self.conninfo)}"


def parse(url: str) -> PgSpec:
    """A ``postgresql://`` store setting; UsageError (one sentence) when it is not one."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError as e:
        raise UsageError(f"The store {mask(url)} is not a valid PostgreSQL URL ({e}).") from None
    if parts.scheme.lower() not in SCHEMES:
        raise UsageError(
            f"The store {mask(url)} is not a PostgreSQL URL; use postgresql://USER@HOST/DATABASE "
            "(or a folder with --index)."
        )
    names = [v for k, v in query if k == "index"]
    name = unquote(names[-1]) if names else DEFAULT_NAME
    if not _NAME.match(name):
        raise UsageError(
            f"The index name {name!r} in {mask(url)} is not usable; use lowercase letters, digits and _ "
            "(starting with a letter, at most 63)."
        )
    rest = [(k, v) for k, v in query if k != "index"]
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest, quote_via=quote, safe="/"), ""))
    return PgSpec(conninfo, name, url)


# -- which folder stands for which database -----------------------------------------------------------------------
#
# A PostgreSQL index also has a folder on each machine that uses it (``local_folder``): that machine's ONNX
# export of the model, the watcher's socket and log, and ``store.json``, which names the database (its URL
# without the password) and the index, so that a process given only the folder (the background watcher,
# ``--index FOLDER``) finds the database too. Passwords never go to disk here: libpq reads them from
# ``~/.pgpass``, ``PGPASSWORD`` or a service file.

STORE_FILE = "store.json"
_selected: dict[Path, PgSpec] = {}  # local folder -> the PostgreSQL store it stands for, in this process
_root_name: list[str | None] = [None]  # --root-name: how this process records its roots and files


def set_root_name(name: str | None) -> None:
    _root_name[0] = name


def root_name() -> str | None:
    return _root_name[0]


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    auth, host = parts.netloc.rsplit("@", 1)
    return urlunsplit((parts.scheme, f"{auth.split(':', 1)[0]}@{host}", parts.path, parts.query, parts.fragment))


def local_folder(spec: PgSpec, base: Path) -> Path:
    """This machine's folder for a PostgreSQL index, under ``base`` (the configured index folder)."""
    key = json.dumps({"url": without_password(spec.conninfo), "index": spec.name})
    return base / "stores" / f"{spec.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def select(url: str, base: Path) -> Path:
    """Remember (for this process) that the folder returned stands for the PostgreSQL store at ``url``."""
    spec = parse(url)
    folder = local_folder(spec, base)
    _selected[folder] = spec
    return folder


def selected(root: Path) -> PgSpec | None:
    """The PostgreSQL store a folder stands for (None: the folder is an embedded index)."""
    found = _selected.get(root)
    if found:
        return found
    try:
        data = json.loads((root / STORE_FILE).read_text())
        return parse(data["url"])
    except (OSError, ValueError, KeyError, TypeError, UsageError):
        return None


def describe(root: Path) -> str:
    """Where the index is, for messages (a database URL with its password masked)."""
    spec = selected(root)
    return spec.where if spec else str(root)


def remember(root: Path, spec: PgSpec) -> None:
    """Write ``store.json`` in the folder (the URL without its password)."""
    root.mkdir(parents=True, exist_ok=True)
    file = root / STORE_FILE
    data = {"url": without_password(spec.url), "index": spec.name}
    try:
        if json.loads(file.read_text()) == data:
            return
    except (OSError, ValueError):
        pass
    tmp = file.with_name(f".{STORE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, file)


def for_child(root: Path) -> dict[str, str]:
    """Before starting a process that gets only the folder (the background watcher): write ``store.json``; the
    environment that process needs (a password given in the URL goes as PGPASSWORD, never to disk)."""
    spec = _selected.get(root)
    if spec is None:
        return {}
    remember(root, spec)
    password = urlsplit(spec.url).password
    return {"PGPASSWORD": unquote(password)} if password else {}
