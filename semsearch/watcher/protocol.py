"""The watcher's query protocol: one JSON object per line over a Unix socket, with dataclasses and paths kept intact."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import os
import sys
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


def _encode(obj):
    """``obj`` as plain JSON values, with what JSON lacks tagged: dataclasses, paths, tuples, enums."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, Path):
        return {"$path": os.fsdecode(obj)}  # undecodable bytes travel as surrogate escapes (JSON \udcXX)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        cls = type(obj)
        return {
            "$dataclass": f"{cls.__module__}:{cls.__qualname__}",
            "fields": {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)},
        }
    if isinstance(obj, enum.Enum):
        cls = type(obj)
        return {"$enum": f"{cls.__module__}:{cls.__qualname__}", "value": _encode(obj.value)}
    if isinstance(obj, tuple):
        return {"$tuple": [_encode(x) for x in obj]}
    if isinstance(obj, list):
        return [_encode(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, set | frozenset):
        return [_encode(x) for x in sorted(obj)]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    raise TypeError(f"cannot send a {type(obj).__name__}")


def _our_class(ref: str):
    module, _, qualname = ref.partition(":")
    if module != "semsearch" and not module.startswith("semsearch."):
        raise ValueError(f"refusing to build {ref}")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _hook(obj: dict):
    try:
        if "$path" in obj and len(obj) == 1:
            return Path(obj["$path"])
        if "$dataclass" in obj and len(obj) == 2:
            cls = _our_class(obj["$dataclass"])
            if not dataclasses.is_dataclass(cls):
                raise ValueError(f"{obj['$dataclass']} is not a dataclass")
            return cls(**obj["fields"])
        if "$enum" in obj and len(obj) == 2:
            return _our_class(obj["$enum"])(obj["value"])
        if "$tuple" in obj and len(obj) == 1:
            return tuple(obj["$tuple"])
    except ValueError:
        raise
    except Exception as e:  # a class or field the other side has and this version has not
        raise ValueError(f"cannot read {obj!r:.80}: {e}") from e
    return obj


def dumps(message: dict) -> bytes:
    """One line of ASCII JSON (so any file name survives the trip)."""
    return json.dumps(_encode(message), separators=(",", ":")).encode("ascii") + b"\n"


def loads(line: bytes) -> dict:
    """Parse one line; ValueError when it is not a message this version understands."""
    message = json.loads(line, object_hook=_hook)
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
