"""The watcher's query protocol: one JSON object per line over a Unix socket, with dataclasses and paths kept intact."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MAX_LINE = 16 * 1024 * 1024  # a reply with many long hits stays far below this
# sun_path holds 108 bytes on Linux (104 on macOS); longer socket paths are reached through the folder's fd.
_SUN_PATH_MAX = 100


def schema() -> str:
    """What both ends must agree on: the version and the fields of the options and hits they exchange.

    A watcher started by another version of semsearch answers nothing, and the query runs in-process.
    """
    from semsearch import __version__
    from semsearch.search.hits import Hit, QueryOptions

    names = lambda cls: ",".join(f.name for f in dataclasses.fields(cls))  # noqa: E731
    return f"{__version__};{names(QueryOptions)};{names(Hit)}"


MAX_DEPTH = 16  # the deepest message is a reply: {hits: [{$dataclass, fields: {exact: {$tuple: [...]}}}]}


def _wire_classes() -> dict:
    """The only classes a message can build, by their wire names: nothing in a message names code."""
    from semsearch.search.hits import Hit, QueryOptions

    return {"QueryOptions": QueryOptions, "Hit": Hit}


def _encode(obj):
    """``obj`` as plain JSON values, with what JSON lacks tagged: the wire's dataclasses, paths, tuples."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError("cannot send a number that is not finite")
        return obj
    if isinstance(obj, Path):
        return {"$path": os.fsdecode(obj)}  # undecodable bytes travel as surrogate escapes (JSON \udcXX)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if _wire_classes().get(name) is not type(obj):
            raise TypeError(f"cannot send a {name}")
        return {"$dataclass": name, "fields": {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, tuple):
        return {"$tuple": [_encode(x) for x in obj]}
    if isinstance(obj, list):
        return [_encode(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, set | frozenset):
        return [_encode(x) for x in sorted(obj)]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return _encode(obj.tolist())
    raise TypeError(f"cannot send a {type(obj).__name__}")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number this protocol carries")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


@functools.cache
def _field_types(cls) -> dict:
    return typing.get_type_hints(cls)


def _check(value, hint, where: str):
    """``value`` when it is of the type ``hint`` (the few types the wire's dataclasses use), else ValueError."""
    if hint is typing.Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _check(value, option, where)
            except ValueError:
                continue
        raise ValueError(f"{where} has the wrong type")
    if origin is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, tuple):
            raise ValueError(f"{where} is not a tuple")
        return tuple(_check(v, item, where) for v in value)
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Path:
        if isinstance(value, Path):
            return value
    raise ValueError(f"{where} has the wrong type")


def _build(cls, fields) -> object:
    """An instance of one of the wire's classes from checked fields: known names, right types, no extras."""
    if not isinstance(fields, dict):
        raise ValueError(f"the fields of a {cls.__name__} are not an object")
    known = {f.name: f for f in dataclasses.fields(cls)}
    extra = set(fields) - set(known)
    if extra:
        raise ValueError(f"a {cls.__name__} has no field {sorted(extra)[0]!r:.40}")
    hints = _field_types(cls)
    values = {name: _check(value, hints[name], f"{cls.__name__}.{name}") for name, value in fields.items()}
    missing = [
        name
        for name, f in known.items()
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"a {cls.__name__} lacks its field {missing[0]!r}")
    return cls(**values)


def _decode(obj, depth: int = 0):
    """Plain JSON values to the wire's values: tagged objects become paths, tuples and the allowed classes."""
    if depth > MAX_DEPTH:
        raise ValueError(f"message nested more than {MAX_DEPTH} deep")
    depth += 1
    if isinstance(obj, list):
        return [_decode(x, depth) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "$path" in obj and len(obj) == 1:
        if not isinstance(obj["$path"], str) or not obj["$path"] or "\x00" in obj["$path"]:
            raise ValueError("a path must be a non-empty string")
        return Path(obj["$path"])
    if "$tuple" in obj and len(obj) == 1:
        if not isinstance(obj["$tuple"], list):
            raise ValueError("a tuple must be a list")
        return tuple(_decode(x, depth) for x in obj["$tuple"])
    if "$dataclass" in obj and len(obj) == 2 and "fields" in obj:
        cls = _wire_classes().get(obj["$dataclass"]) if isinstance(obj["$dataclass"], str) else None
        if cls is None:
            raise ValueError(f"refusing to build {obj['$dataclass']!r:.60}")
        fields = obj["fields"]
        if not isinstance(fields, dict):
            raise ValueError("the fields of a dataclass are not an object")
        return _build(cls, {k: _decode(v, depth) for k, v in fields.items()})
    if any(key.startswith("$") for key in obj):
        raise ValueError(f"unknown tag {next(k for k in obj if k.startswith('$'))!r:.40}")
    return {k: _decode(v, depth) for k, v in obj.items()}


def dumps(message: dict) -> bytes:
    """One line of ASCII JSON (so any file name survives the trip)."""
    return json.dumps(_encode(message), separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def loads(line: bytes) -> dict:
    """Parse one line into plain values and the wire's few classes; ValueError when it is not a message this
    version understands (bad JSON, too long, nested too deep, a number out of range, an unknown tag or field)."""
    if len(line) > MAX_LINE + 1:
        raise ValueError("message too long")
    try:
        plain = json.loads(line, parse_constant=_no_constant, parse_float=_finite)
        message = _decode(plain)
    except RecursionError:  # json's parser stops at the interpreter's recursion limit: bounded work
        raise ValueError(f"message nested more than {MAX_DEPTH} deep") from None
    except TypeError as e:
        raise ValueError(str(e)) from None
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    return message


@contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """The address to bind or connect to for ``path``, even when it is longer than a socket name may be."""
    raw = os.fsencode(path)
    if len(raw) <= _SUN_PATH_MAX or not sys.platform.startswith("linux"):
        yield os.fsdecode(raw)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{os.fsdecode(path.name)}"
    finally:
        os.close(fd)
