"""Answer a query through the index's running watcher when there is one, else in-process, with the same hits.

This module is on the path of every ``semsearch query``: it imports nothing heavy, and gives up on the
watcher fast (no socket, a stale socket from a killed watcher, a watcher of another version).
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

from semsearch.search.hits import Hit, QueryOptions
from semsearch.storage.layout import IndexPaths
from semsearch.storespec import root_name
from semsearch.watcher.protocol import MAX_LINE, dumps, loads, schema, socket_address

ENV_NO_WATCHER = "SEMSEARCH_NO_WATCHER"  # set to 1: never ask a watcher, always work in-process
CONNECT_TIMEOUT = 1.0
REPLY_TIMEOUT = 15.0  # a watcher in the middle of embedding a batch answers after its current slice


def search(index_dir: Path, options: QueryOptions, before_local: Callable[[], None] | None = None) -> list[Hit]:
    """The hits for ``options``: from a running watcher when it answers, else computed here (after
    ``before_local``, which the command line uses to set up what only an in-process search needs)."""
    hits = ask_watcher(index_dir, options)
    if hits is None:
        if before_local is not None:
            before_local()
        from semsearch.search.engine import search as search_in_process

        hits = search_in_process(index_dir, options)
    return hits


def search_many(
    index_dir: Path, queries: list[QueryOptions], before_local: Callable[[], None] | None = None
) -> list[list[Hit]]:
    """``search`` for each query: all answered by the watcher, or (if it fails one) all computed here."""
    results = []
    for options in queries:
        hits = ask_watcher(index_dir, options)
        if hits is None:
            if before_local is not None:
                before_local()
            from semsearch.search.engine import search_many as search_many_in_process

            return search_many_in_process(index_dir, queries)
        results.append(hits)
    return results


def ask_watcher(index_dir: Path, options: QueryOptions, timeout: float = REPLY_TIMEOUT) -> list[Hit] | None:
    """The watcher's hits, or None when no watcher answered properly (then search in-process)."""
    if os.environ.get(ENV_NO_WATCHER, "") not in ("", "0"):
        return None
    message = {"op": "search", "options": options, "origin": root_name()}  # answered only under the same name
    reply = request(IndexPaths(index_dir).query_socket, message, timeout)
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
