"""The light entry of ``semsearch query``: reads plain arguments with the command's own option table and runs
it without Typer (about 60 ms less per query, most of what makes a query a watcher answers instant)."""

from __future__ import annotations

import re
from pathlib import Path

from semsearch.commands.query import OPTIONS

_BY_FLAG = {flag: option for option in OPTIONS for flag in option.flags}
_INT = re.compile(r"[0-9]{1,9}")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def parse_query_args(argv: list[str]) -> dict | None:
    """The arguments of ``semsearch query`` as ``commands.query.run`` takes them; None for anything this
    reader leaves to the full command line (help, an unknown option, a value to complain about)."""
    values: dict = {"text": None, **{option.name: option.default for option in OPTIONS}}
    args = iter(argv)
    positional_only = False
    for arg in args:
        if positional_only or not arg.startswith("-") or arg == "-":
            if values["text"] is not None:
                return None
            values["text"] = arg
            continue
        if arg == "--":
            positional_only = True
            continue
        if arg.startswith("--"):
            name, has_value, value = arg.partition("=")
        else:
            name, value = arg[:2], arg[2:]
            has_value = bool(value)
        option = _BY_FLAG.get(name)
        if option is None:
            return None
        if option.type is bool:
            if has_value:
                return None
            values[option.name] = True
            continue
        if not has_value:
            value = next(args, None)
            if value is None:
                return None
        parsed = _parse(option.type, value)
        if parsed is None or (option.minimum is not None and parsed < option.minimum):
            return None
        if option.maximum is not None and parsed > option.maximum:
            return None
        values[option.name] = parsed
    return values if values["text"] is not None or values["queries"] is not None else None


def _parse(kind: type, value: str):
    if kind is int:
        return int(value) if _INT.fullmatch(value) else None
    if kind is float:
        return float(value) if _FLOAT.fullmatch(value) else None
    if kind is Path:
        return Path(value)
    return value


def run_light_query(argv: list[str]) -> int | None:
    """Run ``semsearch query ARGS`` without Typer; the exit status, or None to run the full command line."""
    values = parse_query_args(argv)
    if values is None:
        return None
    from semsearch.commands.query import run
    from semsearch.output.messages import run_reporting

    return run_reporting(run, **values)
