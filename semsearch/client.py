"""Answer a query through the index's running watcher when there is one, else in-process, with the same hits.

This module is on the path of every ``semsearch query``: it imports nothing heavy, and gives up on the
watcher fast (no socket, a stale socket from a killed watcher, a watcher of another version).
"""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

from .hits import Hit, QueryOptions
from .paths import IndexPaths
from .protocol import MAX_LINE, dumps, loads, schema, socket_address

ENV_NO_WATCHER = "SEMSEARCH_NO_WATCHER"  # set to 1: never ask a watcher, always work in-process
CONNECT_TIMEOUT = 1.0
REPLY_TIMEOUT = 15.0  # a watcher in the middle of embedding a batch answers after its current slice


def search(index_dir: Path, options: QueryOptions) -> list[Hit]:
    """The hits for ``options``: from a running watcher when it answers, else computed here."""
    hits = ask_watcher(index_dir, options)
    if hits is None:
        from .search import search as search_in_process

        hits = search_in_process(index_dir, options)
    return hits


def search_many(index_dir: Path, queries: list[QueryOptions]) -> list[list[Hit]]:
    """``search`` for each query: all answered by the watcher, or (if it fails one) all computed here."""
    results = []
    for options in queries:
        hits = ask_watcher(index_dir, options)
        if hits is None:
            from .search import search_many as search_many_in_process

            return search_many_in_process(index_dir, queries)
        results.append(hits)
    return results


def ask_watcher(index_dir: Path, options: QueryOptions, timeout: float = REPLY_TIMEOUT) -> list[Hit] | None:
    """The watcher's hits, or None when no watcher answered properly (then search in-process)."""
    if os.environ.get(ENV_NO_WATCHER, "") not in ("", "0"):
        return None
    reply = request(IndexPaths(index_dir).query_socket, {"op": "search", "options": options}, timeout)
    if not reply or reply.get("ok") is not True:
        return None
    hits = reply.get("hits")
    if not isinstance(hits, list) or not all(isinstance(h, Hit) for h in hits):
        return None
    return hits


def request(path: Path, message: dict, timeout: float = REPLY_TIMEOUT) -> dict | None:
    """Send one message to the socket at ``path`` and return the reply; None if nobody answers properly."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid():
        return None  # not a socket, or not ours: never talk to it
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        with socket_address(path) as address:
            sock.connect(address)  # ECONNREFUSED at once when the watcher that made it is gone
        sock.settimeout(timeout)
        sock.sendall(dumps({**message, "schema": schema()}))
        return loads(_read_line(sock))
    except (OSError, ValueError, TypeError):
        return None
    finally:
        sock.close()


# -- `semsearch query` without the CLI framework --------------------------------------------------------------

_FLAGS = {"--json": "json_output", "-l": "files_only", "--files-only": "files_only", "--explain": "explain"}
_VALUED = {
    "-k": "k",
    "--top": "k",
    "--path": "path",
    "--min-score": "min_score",
    "--mode": "mode",
    "--format": "output_format",
    "--index": "index_dir",
}
_INT = re.compile(r"[0-9]{1,9}")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def parse_query_args(argv: list[str]) -> dict | None:
    """The arguments of ``semsearch query`` when they are plain ones, as ``querying.run_query`` takes them;
    None for anything else (help, --queries, --rerank, an option this parser does not know, a value to
    complain about), which the full command line then handles."""
    values: dict = {"text": None, "k": None, "json_output": False, "files_only": False, "explain": False}
    values.update(path=None, min_score=None, mode=None, output_format=None, index_dir=None)
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
        if arg in _FLAGS:
            values[_FLAGS[arg]] = True
            continue
        if arg.startswith("--"):
            name, has_value, value = arg.partition("=")
        else:
            name, value = arg[:2], arg[2:]
            has_value = bool(value)
        if name not in _VALUED:
            return None
        if not has_value:
            value = next(args, None)
            if value is None:
                return None
        key = _VALUED[name]
        if key == "k":
            if not _INT.fullmatch(value) or int(value) < 1:
                return None
            values["k"] = int(value)
        elif key == "min_score":
            if not _FLOAT.fullmatch(value):
                return None
            values["min_score"] = float(value)
        elif key == "index_dir":
            values["index_dir"] = Path(value)
        else:
            values[key] = value
    return values if values["text"] is not None else None


def run_fast(argv: list[str]) -> int | None:
    """Run ``semsearch query ARGS`` without the command-line framework: answered by a running watcher when
    there is one, else in this process. The exit status, or None to run the full command line instead (help,
    --queries, --rerank, anything this parser does not read)."""
    args = parse_query_args(argv)
    if args is None:
        return None
    from .cli import report_closed_pipe, report_error, report_interrupt, setup_logging
    from .errors import SemsearchError
    from .querying import run_query

    try:
        if os.environ.get(ENV_NO_WATCHER, "") in ("", "0"):
            status = run_query(**args, watcher_only=True)
            if status is not None:
                return status
        setup_logging()  # notices of the in-process search (a model without its export...) reach stderr
        return run_query(**args)
    except SemsearchError as e:
        return report_error(e)
    except KeyboardInterrupt:
        return report_interrupt()
    except BrokenPipeError:
        return report_closed_pipe()


def _read_line(sock: socket.socket) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the watcher closed the connection")
        end = data.find(b"\n")
        if end >= 0:
            parts.append(data[: end + 1])
            return b"".join(parts)
        parts.append(data)
        size += len(data)
        if size > MAX_LINE:
            raise ValueError("reply too long")
