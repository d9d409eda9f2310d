"""Bring an index up to date with its folders: crawl, read what changed, chunk, embed what is new, store."""

from __future__ import annotations

import errno
import logging
import os
import queue
import stat
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from semsearch.documents import Chunk
from semsearch.errors import ExportFailed, ExtractError, ModelMismatch, OnnxUnavailable, PathNotFound
from semsearch.index.chunk import Chunker
from semsearch.index.crawl import CrawlOptions, FoundFile, Skipped, Targets, crawl
from semsearch.index.extractors import BINARY_FORMATS, extract
from semsearch.index.extractors.text import looks_binary
from semsearch.model.backends import DEFAULT_BACKEND, vector_kind
from semsearch.model.interface import Encoder
from semsearch.model.matryoshka import with_dim
from semsearch.model.spec import ModelSpec, load_tokenizer, resolve_model
from semsearch.progress import Progress
from semsearch.storage.access import create_store, open_store, store_remains
from semsearch.storage.faults import writing_index
from semsearch.storage.interface import FileRow, FileWrite, IndexStore, file_hash, text_hash
from semsearch.storage.layout import IndexPaths
from semsearch.storage.lock import write_lock

log = logging.getLogger(__name__)

EMBED_BATCH = 256  # chunks gathered before one encoder call and one commit
QUEUE_FILES = 64  # files read ahead of the encoder


@dataclass
class IndexOptions:
    paths: list[Path] = field(default_factory=list)  # empty: every root the index already has
    model: str | None = None
    change_model: bool = False
    backend: str | None = None  # "onnx" (default), "torch" or "onnx-int8"; None: the index's own
    query_prefix: str | None = None  # None: the index's (or for a new index, the model's own)
    document_prefix: str | None = None
    rebuild: bool = False  # rebuild the vector structure from the stored vectors
    crawl: CrawlOptions = field(default_factory=CrawlOptions)
    chunk_tokens: int | None = None  # most tokens in a chunk (None: the model's maximum sequence length)
    dim: int | None = None  # cut vectors to this many dimensions (Matryoshka models; see matryoshka.py)
    force_dim: bool = False  # --dim even for a model that does not declare Matryoshka training
    # When given (the watcher's changed files and folders): look only at these, under the same rules, and
    # leave the rest of the roots as it is. A path that vanished takes what the index has at or under it.
    only: list[Path] | None = None
    # False: leave the vector file behind the database (loading it applies what changed since); the watcher
    # saves it now and then rather than rewriting the whole file for every small batch.
    save_vectors: bool = True


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    rebuilt_vectors: str = ""  # why the vector file was rebuilt, when it was

    def summary(self) -> str:
        text = (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed; "
            f"{self.chunks_embedded} chunks embedded"
        )
        if self.skipped:
            text += f", {len(self.skipped)} files skipped"
        if self.chunks_embedded == 0 and not (self.added or self.updated or self.removed):
            text = "Index is up to date: " + text
        return text + f" ({self.seconds:.1f}s)"


@dataclass
class _Work:
    """One file read and chunked by the reader thread, waiting for its vectors."""

    found: FoundFile
    existing: FileRow | None
    sha256: str = ""
    chunks: list[Chunk] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    error: str | None = None  # the file is recorded without chunks, for this reason
    keep: bool = False  # unreadable now: leave what the index has
    touch: bool = False  # same bytes, new stat
    rechunk: bool = False  # chunk again even when the bytes did not change (the chunk size changed)
    warnings: list[str] = field(default_factory=list)  # what the extractor noticed (damaged page...)


class Indexer:
    def __init__(self, index_dir: Path, progress: Progress | None = None, encoder: Encoder | None = None):
        """``encoder``: encode documents with this one instead of the model's own (benchmarks that cache
        vectors, tests that are not about the model); its vectors must be the model's kind."""
        self.paths = IndexPaths(index_dir)
        self.progress = progress or Progress()
        self._encoder = encoder
        self._given_encoder = encoder is not None
        self._chunker: Chunker | None = None
        self._backend = DEFAULT_BACKEND

    # -- public --------------------------------------------------------------------------------

    def run(self, options: IndexOptions) -> IndexReport:
        started = time.monotonic()
        roots = [Path(os.path.normpath(p.expanduser().absolute())) for p in options.paths]
        for root in roots:
            if not os.path.lexists(root):
                raise PathNotFound(f"No such file or folder: {root}")
        with writing_index(self.paths), write_lock(self.paths, self.progress):
            store, model = self._open(options)
            try:
                report = self._run(store, model, roots, options)
            finally:
                store.close()
        report.seconds = time.monotonic() - started
        return report

    # -- opening --------------------------------------------------------------------------------

    def _open(self, options: IndexOptions) -> tuple[IndexStore, ModelSpec]:
        if not self.paths.db.exists():
            if not options.paths or store_remains(self.paths):
                open_store(self.paths)  # NoIndex saying how to start, or IndexCorrupt: the database alone is lost
            model = with_dim(
                resolve_model(options.model, options.query_prefix, options.document_prefix),
                options.dim,
                options.force_dim,
            )
            self._backend = options.backend or DEFAULT_BACKEND
            encoder = self._load_encoder(model)
            store = create_store(self.paths, model, encoder.dim)
            store.set_meta("vector_kind", vector_kind(self._backend))
            return store, model
        store = open_store(self.paths)
        try:
            model = _model_for(store, options)
            if options.change_model:
                model = with_dim(model, options.dim, options.force_dim)
            else:
                model = replace(model, truncate_dim=store.truncate_dim)
                if options.dim is not None and options.dim != store.dim:
                    raise ModelMismatch(
                        f"This index holds {store.dim}-dimension vectors, not {options.dim}; to change, re-embed "
                        f"it with: semsearch index --change-model --dim {options.dim} (or use another --index folder)."
                    )
            stored_kind = store.meta("vector_kind", "fp32")
            self._backend = options.backend or ("onnx-int8" if stored_kind == "int8" else DEFAULT_BACKEND)
            kind = vector_kind(self._backend)
            prefixes = {"query_prefix": model.query_prefix, "document_prefix": model.document_prefix}
            if options.change_model and (
                model.fingerprint != store.meta("model_fingerprint")
                or kind != stored_kind
                or model.truncate_dim != store.truncate_dim
                or store.recorded_prefixes() != prefixes
            ):
                store.set_model(model, self._load_encoder(model).dim)
                store.set_meta("vector_kind", kind)
                self.paths.faiss_meta.unlink(missing_ok=True)  # its vectors belong to the old model
            store.check_model(model)
            if kind != store.meta("vector_kind", "fp32"):
                raise ModelMismatch(
                    f"This index holds {stored_kind} vectors; --backend {self._backend} makes {kind} ones. "
                    f"To switch, re-embed it with: semsearch index --backend {self._backend} --change-model"
                )
        except BaseException:
            store.close()
            raise
        return store, model

    def _load_encoder(self, model: ModelSpec):
        """The document encoder: ONNX (exported once into the index folder) unless asked for torch."""
        if self._encoder is not None:
            return self._encoder
        from semsearch.model.encoders import OnnxTextEncoder, TorchEncoder, export_for_index

        kind = vector_kind(self._backend)
        if self._backend != "torch":
            try:
                folder = export_for_index(model, self.paths, kind)
                self._encoder = OnnxTextEncoder(model, folder)
                return self._encoder
            except (ExportFailed, OnnxUnavailable) as e:
                if kind == "int8":
                    raise
                self.progress.note(f"semsearch: {e} Indexing with the full model instead (slower).")
        self.progress.note(f"loading model {model.name}")
        self._encoder = TorchEncoder(model)
        return self._encoder

    def _ensure_query_export(self, store: IndexStore, model: ModelSpec) -> None:
        """Queries encode with the ONNX export: make it once per model, even when indexing with torch."""
        from semsearch.model.encoders import export_for_index, ready_onnx_folder

        kind = store.meta("vector_kind", "fp32")
        if self._given_encoder or ready_onnx_folder(model, self.paths, kind) is not None:
            return
        if store.meta("onnx_failed") == model.fingerprint:
            return  # tried for this model already; queries fall back to the full model
        try:
            export_for_index(model, self.paths, kind)
        except (ExportFailed, OnnxUnavailable) as e:
            store.set_meta("onnx_failed", model.fingerprint)
            self.progress.note(f"semsearch: {e} Queries will load the full model (slower start).")

    def _get_chunker(self, model: ModelSpec, max_tokens: int) -> Chunker:
        if self._chunker is None:
            self._chunker = Chunker(load_tokenizer(model), max_tokens, prefix=model.document_prefix)
        return self._chunker

    # -- the run -------------------------------------------------------------------------------

    def _run(self, store: IndexStore, model: ModelSpec, roots: list[Path], options: IndexOptions) -> IndexReport:
        report = IndexReport()

        def add_roots() -> None:
            with store.write():
                for root in roots:
                    store.add_root(root)

        store.retrying(add_roots)
        roots = roots or store.roots()
        existing = store.files()
        chunk_tokens = min(options.chunk_tokens or model.max_seq_length, model.max_seq_length)
        if options.only is not None:  # a pass over a few changed paths keeps the index's chunk size
            chunk_tokens = int(store.meta("chunk_tokens", str(model.max_seq_length)))
        # A new chunk size applies to every file, changed or not (chunks whose text stays keep their vectors).
        rechunk = store.meta("chunk_tokens", str(model.max_seq_length)) != str(chunk_tokens)
        crawl_options = options.crawl
        crawl_options.exclude_dirs = [*crawl_options.exclude_dirs, self.paths.root]
        crawl_options.inside = store.roots()  # a link may lead into any of the index's folders
        seen: set[Path] = set()
        todo: list[_Work] = []
        crawl_options.only = options.only
        only = Targets(options.only) if options.only is not None else None
        for item in crawl(roots, crawl_options):
            if isinstance(item, Skipped):
                report.skipped.append((item.path, item.reason))
                continue
            if item.path in seen:
                continue
            seen.add(item.path)
            old = existing.get(item.path)
            if old and old.size == item.size and old.mtime_ns == item.mtime_ns and not rechunk:
                report.unchanged += 1
            else:
                todo.append(_Work(item, old, rechunk=rechunk))
        gone = [
            row
            for path, row in existing.items()
            if path not in seen and (only is None or only.covers(os.fspath(path))) and _under_any(path, roots)
        ]

        self.progress.start(len(todo), sum(w.found.size for w in todo))
        try:
            self._process(store, model, todo, report, chunk_tokens)
            if gone:

                def delete_gone() -> None:
                    with store.write() as gen:
                        store.delete_files(gen, [row.id for row in gone])

                store.retrying(delete_gone)
                report.removed = len(gone)
        except KeyboardInterrupt:
            report.interrupted = True
        finally:
            self.progress.finish()
        # Finished or interrupted, the vector file follows the database. After a failure (a full disk...)
        # it is left as it is: the next load catches up with the database, which holds every finished batch.
        # The watcher's batches leave it behind on purpose (save_vectors=False) and save it now and then.
        if options.save_vectors or options.rebuild:
            report.rebuilt_vectors = store.sync_vectors(options.rebuild)
        if not report.interrupted:
            if rechunk and set(store.roots()) <= set(roots):  # every root was chunked anew
                store.set_meta("chunk_tokens", str(chunk_tokens))
            store.drop_unused_embeddings()
            self._ensure_query_export(store, model)
        return report

    def save_vectors(self) -> None:
        """Bring the saved vector file up to the database, after passes run with ``save_vectors=False``."""
        with write_lock(self.paths, self.progress):
            store = open_store(self.paths)
            try:
                store.sync_vectors()
            finally:
                store.close()

    def _process(
        self, store: IndexStore, model: ModelSpec, todo: list[_Work], report: IndexReport, chunk_tokens: int
    ) -> None:
        if not todo:
            return
        chunker = self._get_chunker(model, chunk_tokens)
        ready: queue.Queue[_Work | None] = queue.Queue(maxsize=QUEUE_FILES)
        stop = threading.Event()
        failure: list[BaseException] = []

        def read_ahead() -> None:
            try:
                for work in todo:
                    if stop.is_set():
                        return
                    _prepare(work, chunker)
                    while not stop.is_set():
                        try:
                            ready.put(work, timeout=0.1)
                            break
                        except queue.Full:
                            continue
            except BaseException as e:  # surfaced in the main thread
                failure.append(e)
            finally:
                ready.put(None)

        reader = threading.Thread(target=read_ahead, name="semsearch-reader", daemon=True)
        reader.start()
        pending: list[_Work] = []
        pending_texts: dict[str, str] = {}
        try:
            while True:
                work = ready.get()
                if work is None:
                    break
                if work.keep or work.touch or work.error or not work.chunks:
                    pending.append(work)
                else:
                    known = store.known_hashes(h for h in work.hashes if h not in pending_texts)
                    for h, c in zip(work.hashes, work.chunks):
                        if h in known or h in pending_texts:
                            report.chunks_reused += 1
                        else:
                            pending_texts[h] = c.embed_text
                    pending.append(work)
                if len(pending_texts) >= EMBED_BATCH or (len(pending) >= QUEUE_FILES and ready.empty()):
                    self._flush(store, model, pending, pending_texts, report)
                    pending, pending_texts = [], {}
            self._flush(store, model, pending, pending_texts, report)
        finally:
            stop.set()
            reader.join(timeout=5)
        if failure:
            raise failure[0]

    def _flush(
        self, store: IndexStore, model: ModelSpec, pending: list[_Work], texts: dict[str, str], report: IndexReport
    ):
        """Embed the new texts (kept as soon as encoded), then record the files in one transaction."""
        if texts:
            encoder = self._load_encoder(model)
            hashes = list(texts)
            # Encode in slices, storing each: an interruption keeps every vector already computed.
            step = 32
            for start in range(0, len(hashes), step):
                part = hashes[start : start + step]
                vecs = encoder.encode_documents([texts[h] for h in part])
                store.put_embeddings(part, vecs)
                report.chunks_embedded += len(part)
                self.progress.advance(chunks=len(part))
        if not pending:
            return
        # in path order: two writers of a shared (PostgreSQL) index lock the same files' rows in one order
        ordered = sorted(pending, key=lambda w: os.fsencode(w.found.path))

        def record() -> None:  # one transaction, run again whole after a lost connection (shared store)
            with store.write() as gen:
                batch: list[FileWrite] = []  # the files replaced between two touched ones, written together
                for work in ordered:
                    found = work.found
                    if work.keep:
                        continue
                    if work.touch:
                        store.replace_files(gen, batch)
                        batch = []
                        store.touch_file(work.existing.id, found.size, found.mtime_ns)
                        continue
                    batch.append(
                        FileWrite(found.path, found.size, found.mtime_ns, work.sha256, work.chunks, work.error)
                    )
                store.replace_files(gen, batch)

        store.retrying(record)
        for work in ordered:
            found = work.found
            if work.keep:
                report.skipped.append((found.path, work.error or "unreadable"))
            elif work.touch:
                report.unchanged += 1
            else:
                if work.error:
                    report.skipped.append((found.path, work.error))
                report.warnings.extend((found.path, w) for w in work.warnings)
                if work.existing:
                    report.updated += 1
                else:
                    report.added += 1
        for work in pending:
            self.progress.advance(files=1, nbytes=work.found.size)


def _prepare(work: _Work, chunker: Chunker) -> None:
    """Read, hash, extract and chunk one file (in the reader thread). Never raises for a bad file."""
    path = work.found.path
    try:
        # never blocks on a FIFO, a device or a socket swapped in since the crawl (the crawl took regular files only)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            os.set_blocking(fd, True)
            data = f.read()
    except OSError as e:
        work.keep = True
        work.error = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
        if work.existing is None:
            work.keep = False  # nothing to keep: record it as skipped so status can list it
        return
    work.sha256 = file_hash(data)
    if work.existing and work.existing.sha256 == work.sha256 and not work.existing.error and not work.rechunk:
        work.touch = True
        return
    if path.suffix.lower() not in BINARY_FORMATS and looks_binary(data):
        work.error = "binary file"
        return
    try:
        document = extract(path, data)
        work.chunks = chunker.chunk(document)
    except ExtractError as e:
        work.error = e.reason
        return
    except RecursionError:
        work.error = "too deeply nested to read"
        return
    except Exception as e:  # a bug in an extractor must not end the run: report the file and go on
        log.debug("unexpected error while reading %s", path, exc_info=True)
        work.error = f"could not be read ({type(e).__name__}: {e})"
        return
    work.warnings = document.warnings
    work.hashes = [text_hash(c.embed_text) for c in work.chunks]


def _model_for(store: IndexStore, options: IndexOptions) -> ModelSpec:
    """The model a run uses: the options' when given, else the index's; its prefixes: the options', else the
    index's (or, when changing to another model, that model's own)."""
    recorded = {} if (options.change_model and options.model) else store.recorded_prefixes()
    return resolve_model(
        options.model or store.model_ref,
        options.query_prefix if options.query_prefix is not None else recorded.get("query_prefix"),
        options.document_prefix if options.document_prefix is not None else recorded.get("document_prefix"),
    )


def _under_any(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def plan(index_dir: Path, paths: list[Path], options: CrawlOptions):
    """What ``index`` would read (FoundFile) and skip (Skipped, with the reason) under ``paths`` (default: the
    index's roots), changing nothing."""
    if not paths:
        store = open_store(IndexPaths(index_dir))
        try:
            paths = store.roots()
        finally:
            store.close()
    for p in paths:
        if not p.exists() and not p.is_symlink():
            raise PathNotFound(f"No such file or folder: {p.absolute()}")
    options = replace(options, report_skipped=True, exclude_dirs=[index_dir])
    for item in crawl(paths, options):
        if isinstance(item, FoundFile) and (reason := _binary_content(item.path)):
            yield Skipped(item.path, reason)
        else:
            yield item


def _binary_content(path: Path) -> str | None:
    """Why indexing would skip a file once read: its first bytes are binary (what ``_prepare`` checks)."""
    if path.suffix.lower() in BINARY_FORMATS:
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError as e:
        return "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
    return "binary file" if looks_binary(head) else None


@dataclass
class RemoveReport:
    files: int
    root_removed: bool


def remove(index_dir: Path, target: Path, progress: Progress | None = None) -> RemoveReport:
    """Take a root, a folder or a file out of the index (the files on disk are not touched)."""
    paths = IndexPaths(index_dir)
    target = Path(os.path.normpath(target.expanduser().absolute()))
    with writing_index(paths), write_lock(paths, progress):
        store = open_store(paths)
        try:
            files = [row for path, row in store.files().items() if _under_any(path, [target])]
            is_root = target in store.roots()
            if not files and not is_root:
                raise PathNotFound(f"Nothing in the index is at or under {target}; see semsearch status for its roots.")

            def delete() -> None:
                with store.write() as gen:
                    store.delete_files(gen, [row.id for row in files])
                    if is_root:
                        store.remove_root(gen, target)

            store.retrying(delete)
            store.sync_vectors()
            store.drop_unused_embeddings()
        finally:
            store.close()
    return RemoveReport(len(files), is_root)
