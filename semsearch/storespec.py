"""Which store an index lives in: a folder (the embedded default) or a PostgreSQL database (``postgresql://...``).

Light on purpose (no driver imported): config, status and error messages use it to show a store setting with
its password masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .errors import UsageError

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
