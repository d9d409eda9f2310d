"""The watcher's query server: answers queries from memory (encoder loaded, vectors kept up to date) over a Unix socket."""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import stat
import struct
import threading
from pathlib import Path

from semsearch.config import MODES
from semsearch.errors import SemsearchError
from semsearch.search.engine import load_query_encoder, query_model, search_with
from semsearch.search.hits import QueryOptions
from semsearch.storage.access import open_for_search, open_store
from semsearch.storage.layout import IndexPaths
from semsearch.storespec import root_name
from semsearch.watcher.protocol import MAX_LINE, dumps, loads, schema, socket_address

CONNECTION_TIMEOUT = 30.0  # a client that connects and says nothing is dropped after this


class QueryServer:
    """Serves one index. ``refresh()`` after the index changed keeps the next answer fast; answers refresh anyway."""

    def __init__(self, index_dir: Path, log: logging.Logger | None = None):
        self.paths = IndexPaths(index_dir)
        self.log = log or logging.getLogger(__name__)
        self._lock = threading.Lock()  # one search at a time over the shared store connection and vectors
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._inode: tuple[int, int] | None = None
        self._schema = schema()
        self.store = open_store(self.paths)
        try:
            self.spec = query_model(self.store)  # as an in-process query builds it
            self.store.check_model(self.spec)
            self._identity = self._model_identity()
            self.encoder = load_query_encoder(self.spec, self.store)  # the same encoder as an in-process query
            self.encoder.encode_queries(["warm up"])  # the first encoding pays for lazy initialisation
            self.index = open_for_search(self.store, with_vectors=True, private=True)  # kept up to date in place
        except BaseException:
            self.store.close()
            raise
        self.served = 0

    def _model_identity(self) -> tuple:
        """What the encoder was made from: a change (``--change-model``, other prefixes) makes it stale."""
        keys = ("model_fingerprint", "model_prefixes", "truncate_dim", "vector_kind", "dim")
        return tuple(self.store.meta(key) for key in keys)

    # -- serving -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on the index's socket (owner only) in a background thread."""
        path = self.paths.query_socket
        if os.path.lexists(path):  # left by a watcher that was killed: the caller holds the watch lock
            path.unlink()
        server = _Server(os.fsdecode(path), _Handler, bind_and_activate=False)
        server.owner = self
        try:
            with socket_address(path) as address:
                server.socket.bind(address)
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)  # before listen(): nobody else can ever connect
            st = os.stat(path)
            self._inode = (st.st_dev, st.st_ino)
            server.server_activate()
        except BaseException:
            server.server_close()
            self._unlink_socket()
            raise
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="semsearch-queries", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._unlink_socket()
        with self._lock:
            self.store.close()

    def _unlink_socket(self) -> None:
        path = self.paths.query_socket
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == self._inode:
                path.unlink()
        except OSError:
            pass

    # -- answering -----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the vectors up to the store's generation (cheap when nothing changed)."""
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        self.index.refresh()

    def answer(self, line: bytes) -> bytes:
        try:
            request = loads(line)
        except (ValueError, TypeError) as e:
            return dumps({"ok": False, "error": f"bad request: {e}"})
        if request.get("schema") != self._schema:
            return dumps({"ok": False, "error": "this watcher runs another version of semsearch"})
        op = request.get("op")
        if op == "ping":
            return dumps({"ok": True, "pid": os.getpid(), "generation": self.index.generation, "served": self.served})
        if op != "search" or not isinstance(request.get("options"), QueryOptions):
            return dumps({"ok": False, "error": f"unknown request {op!r}"})
        options = request["options"]
        if options.mode not in MODES or options.rerank:  # a reranker is loaded by the query's own process
            return dumps({"ok": False, "error": "not answered here"})
        if request.get("origin") != root_name():  # a shared index: paths are shown as the asker's origin sees them
            return dumps({"ok": False, "error": "this watcher records its files under another --root-name"})
        try:
            with self._lock:
                if self._model_identity() != self._identity:
                    return dumps({"ok": False, "error": "the index's model changed since the watcher started"})
                self._refresh()
                encoder = self.encoder if self.index.vector_count else None  # as in-process: keywords only
                hits = search_with(self.index, encoder, options)
                self.served += 1
        except SemsearchError as e:
            return dumps({"ok": False, "error": str(e)})
        except Exception as e:  # answered in-process by the client; the watcher carries on
            self.log.exception("a query failed in the watcher")
            return dumps({"ok": False, "error": f"internal error: {e}"})
        return dumps({"ok": True, "hits": hits})


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: a crowd of clients connecting at once overflowed it and fell
    # back to in-process search. The kernel caps this at net.core.somaxconn (4096 on current Linux).
    request_queue_size = 512
    owner: QueryServer


class _Handler(socketserver.StreamRequestHandler):
    timeout = CONNECTION_TIMEOUT

    def handle(self) -> None:
        if not _same_user(self.connection):
            return
        server: _Server = self.server  # type: ignore[assignment]
        try:
            while True:
                line = self.rfile.readline(MAX_LINE + 1)
                if not line:
                    return
                if not line.endswith(b"\n"):
                    self.wfile.write(dumps({"ok": False, "error": "request too long"}))
                    return
                self.wfile.write(server.owner.answer(line))
                self.wfile.flush()
        except OSError:  # the client went away or timed out
            return


def _same_user(conn: socket.socket) -> bool:
    """The socket is the owner's only already (mode 600); where the OS tells the peer's uid, check it too."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()
