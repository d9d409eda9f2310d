"""Keep an index following its folders: catch up, then turn file-system events into small incremental index passes.

Events (watchdog) are filtered with the crawler's cheap rules, then held until they settle: no event for the
debounce window and the same size and modification time as at the last event, so a file still being written is
not read half-way and an editor's save storm or a ``git checkout`` becomes one batch. A batch goes through the
same ``Indexer`` as ``semsearch index``, restricted to the changed paths (``IndexOptions.only``), so it leaves the
index as a fresh ``index`` run would. Meanwhile a ``QueryServer`` answers queries from memory.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import logging.handlers
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from semsearch.errors import (
    IndexCorrupt,
    ModelMismatch,
    ModelUnavailable,
    NoIndex,
    PathNotFound,
    SemsearchError,
    WatchFailed,
)
from semsearch.index.crawl import IGNORE_FILES, SKIP_DIRS, SKIP_FILE_GLOBS, CrawlOptions
from semsearch.index.extractors import is_supported
from semsearch.progress import Progress
from semsearch.storage.layout import IndexPaths
from semsearch.system import private_opener
from semsearch.watcher.state import WatcherState, watch_lock, write_state

DEFAULT_DEBOUNCE = 1.0  # seconds without events before a change is indexed
RESCAN_EVERY = 600.0  # a full incremental pass now and then: catches events the OS dropped (queue overflow)
ROOTS_CHECK_EVERY = 2.0  # a watched root deleted and created again is watched again
LOG_BYTES = 2 * 1024 * 1024
STATE_WRITE_EVERY = 0.5  # seconds between two writes of the state file while it changes
SAVE_VECTORS_EVERY = 60.0  # batches leave the vector file behind the database for at most this long
_FATAL = (NoIndex, IndexCorrupt, ModelMismatch, ModelUnavailable)
_EVENTS = [
    FileCreatedEvent,
    FileModifiedEvent,  # also brings attribute changes (touch, chmod)
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


@dataclass
class WatchOptions:
    paths: list[Path] = field(default_factory=list)  # empty: the index's roots
    crawl: CrawlOptions = field(default_factory=CrawlOptions)
    debounce: float = DEFAULT_DEBOUNCE
    max_wait: float | None = None  # an event storm that never pauses is indexed this often (default 10 x debounce)
    serve: bool = True  # answer queries over the index's socket
    chunk_tokens: int | None = None  # as `semsearch index` gets it (the chunk_size setting)
    rescan_every: float = RESCAN_EVERY


def resolve_roots(index_dir: Path, paths: list[Path]) -> list[Path]:
    """The folders and files to watch: ``paths`` (which must exist), else the index's roots (which must exist)."""
    if paths:
        roots = [Path(os.path.normpath(p.expanduser().absolute())) for p in paths]
        for root in roots:
            if not os.path.lexists(root):
                raise PathNotFound(f"No such file or folder: {root}")
        return roots
    from semsearch.storage.access import open_store

    store = open_store(IndexPaths(index_dir))  # NoIndex says how to start one
    try:
        roots = store.roots()
    finally:
        store.close()
    if not roots:
        raise PathNotFound(f"The index at {index_dir} has no folders to watch; give one: semsearch watch PATH")
    return roots


# -- settling ---------------------------------------------------------------------------------------------


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass
class _Pending:
    first: float  # first event since it was last indexed
    last: float  # latest event
    stat: tuple[int, int, int] | None  # size, mtime and inode at the latest event; None: it did not exist
    is_dir: bool


class Changes:
    """Changed paths, held until they settle, then handed out together as one batch.

    A path settles when it had no event for ``quiet`` seconds and its size and modification time are those
    seen at its last event. A batch is handed out once no event at all came for ``quiet`` seconds (an event
    storm becomes one batch), or when the oldest change has waited ``max_wait``. A folder waits for the
    unsettled files under it. Thread-safe: events arrive on the observer's thread.
    """

    def __init__(
        self,
        quiet: float,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
        stat: Callable[[str], tuple | None] = _stat,
    ):
        self.quiet = quiet
        self.max_wait = max_wait
        self.clock = clock
        self.stat = stat
        self._pending: dict[str, _Pending] = {}
        self._last_event = 0.0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, path: str, is_dir: bool = False) -> None:
        st = self.stat(path)
        with self._lock:
            now = self.clock()
            self._last_event = now
            old = self._pending.get(path)
            self._pending[path] = _Pending(old.first if old else now, now, st, is_dir or (old.is_dir if old else False))

    def take(self) -> list[str]:
        """The settled paths (none under another), removed from the pending set; [] while things are moving."""
        with self._lock:
            if not self._pending:
                return []
            now = self.clock()
            oldest = min(p.first for p in self._pending.values())
            if now - self._last_event < self.quiet and now - oldest < self.max_wait:
                return []
            items = list(self._pending.items())
        ready: list[str] = []
        unsettled: list[str] = []
        for path, p in items:
            if now - p.last < self.quiet:
                unsettled.append(path)
                continue
            st = self.stat(path)
            if st != p.stat:  # changed since its last event: look again after another quiet window
                with self._lock:
                    if self._pending.get(path) is p:
                        p.stat, p.last = st, self.clock()
                unsettled.append(path)
                continue
            ready.append(path)
        ready = [r for r in ready if not any(_under(u, r) for u in unsettled)]
        with self._lock:
            for path in ready:
                p = self._pending.get(path)
                if p is not None and p.last <= now:  # not reported again meanwhile
                    del self._pending[path]
        return _outermost(ready)

    def wait_hint(self) -> float:
        """How long the caller may sleep before ``take()`` could return something."""
        with self._lock:
            if not self._pending:
                return 1.0
            now = self.clock()
            oldest = min(p.first for p in self._pending.values())
            due = min(self._last_event + self.quiet, oldest + self.max_wait) - now
            if due <= 0:  # a batch is due: wait for the first path to settle
                due = min(p.last for p in self._pending.values()) + self.quiet - now
        return min(1.0, max(0.05, due))


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _outermost(paths: list[str]) -> list[str]:
    out: list[str] = []
    for path in sorted(paths):
        if not out or not _under(path, out[-1]):
            out.append(path)
    return out


# -- the watcher -------------------------------------------------------------------------------------------


class Watcher:
    """Follows the roots of one index until ``stop()``; ``run()`` blocks (call it from the main thread of a
    command, or from a thread in tests)."""

    def __init__(
        self,
        index_dir: Path,
        options: WatchOptions | None = None,
        progress: Progress | None = None,
        log_handlers: list[logging.Handler] | None = None,
        on_state: Callable[[WatcherState], None] | None = None,
    ):
        self.paths = IndexPaths(index_dir)
        self.options = options or WatchOptions()
        self.catch_up_progress = progress or Progress()
        self.on_state = on_state
        self.log = logging.Logger("semsearch.watch")  # not registered globally: one per watcher
        self._extra_handlers = log_handlers or []
        debounce = self.options.debounce
        self.changes = Changes(debounce, self.options.max_wait or max(10 * debounce, 5.0))
        self.state = WatcherState(pid=os.getpid(), started_at=time.time(), log=str(self.paths.log))
        self.busy = False  # inside an index pass (a stop signal may interrupt it)
        self.failure: Exception | None = None  # why it stopped on its own (the index became unusable)
        self.server = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._roots: list[str] = []
        self._file_roots: set[str] = set()
        self._watched: dict[str, tuple[int, int] | None] = {}  # root -> identity of the folder watched for it
        self._watches: dict[str, object] = {}
        self._aliases: dict[str, str] = {}  # real path of a watched folder -> the path its root names
        self._observer = None
        self._indexer = None
        self._model_ref: str | None = None
        self._written_state: dict | None = None
        self._written_at = 0.0
        self._unsaved = False  # batches changed the database since the vector file was last written
        self._saved_at = time.monotonic()
        self._ready = threading.Event()

    # -- control ---------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the watcher has caught up and watches (or has stopped); True once it watches."""
        self._ready.wait(timeout)
        return self.state.phase == "watching"

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- run -------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Catch up, then follow changes until stopped. Raises SemsearchError when it cannot start."""
        roots = resolve_roots(self.paths.root, self.options.paths)
        try:
            from semsearch.model import onnx_encoder

            onnx_encoder.SPIN = False  # a long-lived process: idle encoder threads must not spin
        except ImportError:  # no onnxruntime: the full model is used, and this does not apply
            pass
        try:
            with watch_lock(self.paths):
                self._setup_log()
                try:
                    self._run(roots)
                finally:
                    self._teardown_log()
        finally:
            self._ready.set()
        if self.failure is not None:
            raise self.failure

    def _run(self, roots: list[Path]) -> None:
        self._roots = sorted({os.fspath(r) for r in roots}, key=len, reverse=True)  # innermost root first
        self._file_roots = {r for r in self._roots if not os.path.isdir(r)}
        self.state.roots = sorted(self._roots)
        self._publish(force=True)
        self.log.info("watcher started (pid %d) for %s: %s", os.getpid(), self.paths.root, ", ".join(self.state.roots))
        try:
            self._start_observer()
            self.state.phase = "catching up"
            self._publish(force=True)
            if self.options.serve and self.paths.db.exists():
                self._start_server()
            self._catch_up()
            if self.options.serve and self.server is None and not self.stopped:
                self._start_server()
            if not self.stopped:
                self.state.phase = "watching"
                self._publish(force=True)
                self.log.info("watching %d %s", len(self._roots), "root" if len(self._roots) == 1 else "roots")
            self._ready.set()
            self._loop()
        except KeyboardInterrupt:  # a stop signal arrived in the middle of a pass: the pass left the index whole
            self._stop.set()
        finally:
            self.state.phase = "stopping"
            self._publish(force=True)
            self._shutdown()

    def _loop(self) -> None:
        next_rescan = time.monotonic() + self.options.rescan_every
        next_roots_check = time.monotonic() + ROOTS_CHECK_EVERY
        while not self.stopped:
            self._wake.wait(self.changes.wait_hint())
            self._wake.clear()
            if self.stopped:
                break
            batch = self.changes.take()
            if batch:
                self._apply(batch)
            now = time.monotonic()
            if now >= next_roots_check:
                self._follow_index_roots()
                self._check_roots()
                next_roots_check = now + ROOTS_CHECK_EVERY
            self._save_vectors_now_and_then()
            if now >= next_rescan:
                for root in self._roots:
                    self.changes.add(root, is_dir=root not in self._file_roots)
                next_rescan = now + self.options.rescan_every
            self._publish()

    def _save_vectors_now_and_then(self, force: bool = False) -> None:
        """Write the vector file when batches left it behind, at most every SAVE_VECTORS_EVERY seconds."""
        if not self._unsaved or self._indexer is None:
            return
        if not force and time.monotonic() - self._saved_at < SAVE_VECTORS_EVERY:
            return
        self.busy = True
        try:
            self._indexer.save_vectors()
        except _FATAL:
            pass  # the next batch says what is wrong
        except Exception:
            self.log.exception("could not save the vector file (the next run catches up)")
        finally:
            self.busy = False
        self._unsaved = False
        self._saved_at = time.monotonic()

    def _shutdown(self) -> None:
        try:
            self._save_vectors_now_and_then(force=True)  # leave the vector file current
        except KeyboardInterrupt:
            pass
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=10)
            except Exception:  # noqa: BLE001 - stopping must go on
                self.log.exception("stopping the file-system observer failed")
        if self.server is not None:
            try:
                self.server.close()
            except Exception:
                self.log.exception("closing the query server failed")
            self.server = None
        try:
            self.paths.watch_state.unlink(missing_ok=True)
        except OSError:
            pass
        self.log.info("watcher stopped (pid %d)", os.getpid())

    # -- logging and state -----------------------------------------------------------------------------

    def _setup_log(self) -> None:
        file_handler = _PrivateLog(
            self.paths.log, maxBytes=LOG_BYTES, backupCount=1, encoding="utf-8", errors="backslashreplace"
        )
        file_handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(message)s"))
        self.log.setLevel(logging.INFO)
        self.log.addHandler(file_handler)
        for handler in self._extra_handlers:
            self.log.addHandler(handler)

    def _teardown_log(self) -> None:
        for handler in list(self.log.handlers):
            self.log.removeHandler(handler)
            if handler not in self._extra_handlers:
                handler.close()

    def _publish(self, force: bool = False) -> None:
        """Record the state for ``semsearch status`` when it changed (at most twice a second), and show it."""
        self.state.pending = len(self.changes)
        data = self.state.to_json()
        now = time.monotonic()
        if force or (data != self._written_state and now - self._written_at >= STATE_WRITE_EVERY):
            self._written_state, self._written_at = data, now
            try:
                write_state(self.paths, self.state)
            except OSError as e:
                self.log.warning("could not write %s: %s", self.paths.watch_state, e)
        if self.on_state is not None:
            self.on_state(self.state)

    # -- watching --------------------------------------------------------------------------------------

    def _unwatch(self, root: Path) -> None:
        """Stop watching ``root`` (its watch may already be gone with the folder)."""
        watch = self._watches.pop(root, None)
        if watch is not None:
            try:
                self._observer.unschedule(watch)
            except (KeyError, OSError):
                pass

    def _start_observer(self) -> None:
        # watchdog's inotify observer warns when a folder moved back in gets the watch descriptor it had
        # before; it replaces the old callback itself, so the warning tells a user nothing and would break
        # the status line.
        warnings.filterwarnings("ignore", message="Callback with id .* already exists", category=RuntimeWarning)
        self._observer = Observer()
        for root in self._roots:
            if self._watched_id(root) is None:
                self._watched[root] = None
                self.log.warning("%s does not exist; it is watched as soon as it does", root)
                continue
            self._schedule(root)
        self._observer.start()

    def _schedule(self, root: str) -> None:
        is_file = root in self._file_roots
        where = os.path.dirname(root) if is_file else root
        self._watched[root] = self._watched_id(root)
        real = os.path.realpath(where)
        if real != where:  # a root reached through a symbolic link: the OS reports events under its target
            self._aliases[real] = where
        try:
            self._watches[root] = self._observer.schedule(
                _Handler(self), real, recursive=not is_file, event_filter=_EVENTS
            )
        except OSError as e:
            if e.errno == 28:  # ENOSPC from inotify_add_watch
                raise WatchFailed(
                    f"The system's limit on watched folders is reached while watching {root}; raise it with: "
                    "sudo sysctl fs.inotify.max_user_watches=524288"
                ) from None
            raise WatchFailed(f"Cannot watch {root}: {e.strerror or e}") from None

    def _watched_id(self, root: str) -> tuple[int, int] | None:
        """The identity of the folder watched for ``root`` (its parent for a file): a new one needs a new watch."""
        try:
            st = os.stat(os.path.dirname(root) if root in self._file_roots else root)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _check_roots(self) -> None:
        """A root deleted is noticed (its files leave); created again, or replaced, it is watched again."""
        for root in self._roots:
            current = self._watched_id(root)
            if current == self._watched.get(root) and (current is not None or root not in self._watches):
                continue
            self._unwatch(root)
            if current is None:
                self._watched[root] = None
                self.log.warning("%s is gone; its files leave the index, and it is watched again if it returns", root)
            else:
                try:
                    self._schedule(root)
                except WatchFailed as e:
                    self.log.error("%s", e)
                    continue
                self.log.info("%s is there (again); watching it", root)
            self.changes.add(root, is_dir=root not in self._file_roots)
            self._wake.set()

    def _follow_index_roots(self) -> None:
        """Started without paths, the watcher follows the index's roots as ``index`` and ``remove`` change them."""
        if self.options.paths:
            return
        from semsearch.storage.access import open_store

        try:
            store = open_store(self.paths)
            try:
                roots = {os.fspath(r) for r in store.roots()}
            finally:
                store.close()
        except SemsearchError:
            return  # the next batch says what is wrong
        current = set(self._roots)
        if roots == current or not roots:
            return
        for root in current - roots:
            self._unwatch(root)
            self._watched.pop(root, None)
            self.log.info("%s is no longer a root of the index; not watching it any more", root)
        added = roots - current
        # new objects, swapped in whole: the observer's thread reads them
        self._file_roots = {r for r in roots if r in self._file_roots or (r in added and not os.path.isdir(r))}
        self._roots = sorted(roots, key=len, reverse=True)
        self.state.roots = sorted(roots)
        for root in sorted(added):
            if self._watched_id(root) is None:
                self._watched[root] = None
                continue
            try:
                self._schedule(root)
            except WatchFailed as e:
                self.log.error("%s", e)
                continue
            self.log.info("%s is a new root of the index; watching it", root)
            self.changes.add(root, is_dir=root not in self._file_roots)  # anything changed since it was indexed
            self._wake.set()
        self._publish(force=True)

    def _root_of(self, path: str) -> str | None:
        for root in self._roots:  # innermost first
            if path == root or (root not in self._file_roots and path.startswith(root + os.sep)):
                return root
        return None

    def _event_path(self, path: str) -> str:
        path = os.path.normpath(path)
        for real, alias in self._aliases.items():
            if _under(path, real):
                return alias + path[len(real) :]
        return path

    def root_deleted(self, path: str) -> None:
        """A watched root folder was deleted: its watch ended with it (a new folder there needs a new one,
        even if it gets the same inode number)."""
        path = self._event_path(path)
        if path in self._watched and path not in self._file_roots:
            self._watched[path] = None

    def consider(self, path: str, is_dir: bool) -> None:
        """An event's path: keep it if ``index`` could care (the crawler decides the rest when the batch runs)."""
        path = self._event_path(path)
        root = self._root_of(path)
        if root is None or _under(path, os.fspath(self.paths.root)):
            return
        if path != root:
            parts = path[len(root) + 1 :].split(os.sep)
            for part in parts[:-1]:
                if part.startswith(".") or part in SKIP_DIRS:
                    return
            name = parts[-1]
            if name in IGNORE_FILES:  # new ignore rules: look at the whole folder again
                path, is_dir = os.path.dirname(path), True
            elif name.startswith("."):
                return  # hidden files: editors' swap and lock files (.x.swp, .#x) among them
            elif is_dir:
                if name in SKIP_DIRS:
                    return
            elif not is_supported(Path(path)) or any(fnmatch.fnmatch(name, g) for g in SKIP_FILE_GLOBS):
                return  # x~, x.tmp, 4913 and other files index would not read
        self.changes.add(path, is_dir)
        self._wake.set()

    # -- indexing --------------------------------------------------------------------------------------

    def _new_indexer(self):
        from semsearch.index.indexer import Indexer

        if self._indexer is None:
            self._indexer = Indexer(self.paths.root, self.catch_up_progress)
        return self._indexer

    def _catch_up(self) -> None:
        from semsearch.index.indexer import IndexOptions

        self.log.info("catching up with changes made while nobody watched")
        report = self._index(
            IndexOptions(
                paths=list(self.options.paths),
                crawl=dataclasses.replace(self.options.crawl),
                chunk_tokens=self.options.chunk_tokens,
            )
        )
        if report is None or self.stopped:
            return
        self.log.info("caught up: %s", report.summary())
        from semsearch.storage.access import open_store

        store = open_store(self.paths)
        try:
            self._model_ref = store.model_ref
        finally:
            store.close()

    def _apply(self, batch: list[str]) -> None:
        from semsearch.index.indexer import IndexOptions

        shown = ", ".join(batch[:5]) + (f" and {len(batch) - 5} more" if len(batch) > 5 else "")
        self.log.info("indexing %d %s: %s", len(batch), "change" if len(batch) == 1 else "changes", shown)
        options = IndexOptions(
            model=self._model_ref,  # a model switched under the watcher is refused, not mixed in
            crawl=dataclasses.replace(self.options.crawl),
            only=[Path(p) for p in batch],
            save_vectors=False,  # _save_vectors_now_and_then writes the file
            chunk_tokens=self.options.chunk_tokens,
        )
        try:
            report = self._index(options)
        except Exception as e:
            if len(batch) == 1:
                self.state.errors += 1
                self.log.exception("could not index %s (%s); it is left as it was", batch[0], e)
                return
            self.log.warning("a batch failed (%s); indexing its changes one by one", e)
            for path in batch:
                if self.stopped:
                    return
                self._apply([path])
            return
        if report is None:
            return
        self.log.info(
            "%d added, %d updated, %d removed; %d chunks embedded (%.1fs)",
            report.added,
            report.updated,
            report.removed,
            report.chunks_embedded,
            report.seconds,
        )

    def _index(self, options):
        """One pass of the indexer; logs what it skipped, refreshes the server. None when stopped or fatal."""
        indexer = self._new_indexer()
        if options.only is not None:
            indexer.progress = _BatchProgress(self)
        self.busy = True
        try:
            report = indexer.run(options)
        except _FATAL as e:
            self.log.error("%s", e)
            self.log.error("the watcher stops: the index cannot be updated")
            self.failure = e
            self.stop()
            return None
        finally:
            self.busy = False
            self.state.indexing = self.state.indexed = 0
        for path, reason in report.skipped:
            if not reason.startswith("binary file type"):
                self.state.errors += 1
            self.log.warning("skipped %s: %s", path, reason)
        self.state.last_sync = time.time()
        counts = (("added", report.added), ("updated", report.updated), ("removed", report.removed))
        self.state.last_change = ", ".join(f"{n} {what}" for what, n in counts if n) or "no change"
        if options.only is not None and not options.save_vectors:
            self._unsaved = True
        if report.interrupted:
            self.stop()
        if self.server is not None:
            self.server.refresh()
        self._publish(force=True)
        return report

    def _start_server(self) -> None:
        from semsearch.watcher.server import QueryServer

        try:
            self.server = QueryServer(self.paths.root, self.log)
            self.server.start()
        except _FATAL:
            raise
        except Exception as e:  # queries still work in-process; the watcher still watches
            self.log.exception("cannot answer queries from the watcher (%s); queries run in their own process", e)
            if self.server is not None:
                self.server.store.close()
            self.server = None
            return
        self.state.serving = True
        self.log.info("answering queries on %s", self.paths.query_socket)
        self._publish(force=True)


class _BatchProgress(Progress):
    """A batch's progress, into the watcher's state (the status line and ``semsearch status`` show it)."""

    def __init__(self, watcher: Watcher):
        self.watcher = watcher

    def start(self, files: int, total_bytes: int) -> None:
        self.watcher.state.indexing, self.watcher.state.indexed = files, 0
        self.watcher._publish()

    def advance(self, files: int = 0, nbytes: int = 0, chunks: int = 0) -> None:
        if files:
            self.watcher.state.indexed += files
            self.watcher._publish()


class _Handler(FileSystemEventHandler):
    """Feeds watchdog's events to ``Watcher.consider``: a move is a change at both ends."""

    def __init__(self, watcher: Watcher):
        self.watcher = watcher

    def on_any_event(self, event) -> None:
        try:
            if event.event_type in ("opened", "closed_no_write"):
                return
            if event.is_directory and event.event_type == "modified":
                return  # a folder's listing changed: its entries have events of their own
            if event.is_directory and event.event_type == "deleted":
                self.watcher.root_deleted(os.fsdecode(event.src_path))
            self.watcher.consider(os.fsdecode(event.src_path), event.is_directory)
            if event.event_type == "moved" and event.dest_path:
                self.watcher.consider(os.fsdecode(event.dest_path), event.is_directory)
        except Exception:  # never let one odd event end the observer thread
            self.watcher.log.exception("could not handle %r", event)


class _PrivateLog(logging.handlers.RotatingFileHandler):
    """The watcher's log names the files it indexes: created 0600 (after each rotation too), whatever the umask."""

    def _open(self):
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=private_opener)
