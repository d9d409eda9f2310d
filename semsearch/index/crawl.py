"""Find the files to index under the given roots, honouring ignore rules, and say why others are skipped."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from semsearch.index.extractors import BINARY_FORMATS, skip_reason

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# PDFs and Word files carry images and fonts besides their text: their cap is this many times larger.
DOCUMENT_CAP_FACTOR = 10
IGNORE_FILES = (".gitignore", ".semsearchignore")

# Folders nobody wants searched: dependencies, caches, virtual environments and build output.
SKIP_DIRS = frozenset(
    "node_modules __pycache__ site-packages build dist _build target .git .hg .svn venv .venv env .tox .nox "
    ".mypy_cache .pytest_cache .ruff_cache bower_components jspm_packages .next .nuxt .cache".split()
)
# Files that are generated, not written: lock files, minified bundles, source maps.
SKIP_FILE_GLOBS = (
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "Pipfile.lock",
    "Cargo.lock",
    "composer.lock",
    "Gemfile.lock",
    "uv.lock",
    "go.sum",
    "*.min.js",
    "*.min.css",
    "*.map",
    "*.lock",
    "*.pyc",
    "*.bundle.js",
    "*-lock.json",
    # editors' and downloaders' scratch files: backups, swap files, temporary and partial downloads
    "*~",
    "*.tmp",
    "*.temp",
    "*.swp",
    "*.swo",
    "*.bak",
    "*.orig",
    "*.rej",
    "#*#",
    "*.part",
    "*.crdownload",
)


@dataclass(frozen=True)
class FoundFile:
    path: Path  # absolute, as reached from its root (symlinks not resolved)
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass
class CrawlOptions:
    max_bytes: int = DEFAULT_MAX_BYTES
    include: list[str] = field(default_factory=list)  # globs; when given, only matching files
    exclude: list[str] = field(
        default_factory=list
    )  # globs, matched against the path relative to the root and the name
    exclude_dirs: list[Path] = field(default_factory=list)  # absolute folders never entered (the index itself)
    report_skipped: bool = False  # yield Skipped entries for ignored files and folders too
    only: list[Path] | None = None  # look only at these files and folders (and the way to them)
    # Symbolic links are followed as ripgrep does: only when the target stays inside an indexed folder (the
    # roots crawled and ``inside``), unless ``follow`` (--follow, as rg -L) follows every one.
    follow: bool = False
    inside: list[Path] = field(default_factory=list)  # the index's other roots, where links may lead too


def within(path: str, folders: list[str]) -> bool:
    """Whether the real path ``path`` is one of ``folders`` (real paths too) or lies under one."""
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def size_cap(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """The most bytes a file of this type may have to be indexed (PDF and Word files: ten times more)."""
    return max_bytes * (DOCUMENT_CAP_FACTOR if path.suffix.lower() in BINARY_FORMATS else 1)


def _matches(globs: list[str], rel: str, name: str) -> bool:
    return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) or fnmatch.fnmatch(rel, f"*/{g}") for g in globs)


def _is_venv(path: str) -> bool:
    return os.path.exists(os.path.join(path, "pyvenv.cfg"))


def _load_ignore(folder: str) -> pathspec.PathSpec | None:
    lines: list[str] = []
    for name in IGNORE_FILES:
        try:
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                lines.extend(f.read().splitlines())
        except OSError:
            continue
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


class Targets:
    """The paths a restricted crawl looks at (``only``): each target, all below it, and the folders leading to it."""

    def __init__(self, paths: list[Path]):
        self.exact = {os.path.normpath(os.path.abspath(p)) for p in paths}
        self.leading: set[str] = set()
        for p in self.exact:
            parent = os.path.dirname(p)
            while parent not in self.leading and parent != p:
                self.leading.add(parent)
                p, parent = parent, os.path.dirname(parent)

    def covers(self, path: str) -> bool:
        """``path`` is a target or lies under one."""
        while True:
            if path in self.exact:
                return True
            parent = os.path.dirname(path)
            if parent == path:
                return False
            path = parent


def crawl(roots: list[Path], options: CrawlOptions | None = None) -> Iterator[FoundFile | Skipped]:
    """Yield every indexable file under ``roots`` (files or folders), and Skipped entries for problems.

    Unreadable folders and broken links are reported as Skipped, never raised. With
    ``options.report_skipped`` ignored entries are reported too (for ``--dry-run``). With ``options.only``
    (changed files and folders under the roots) just those are looked at, under the same rules as a
    full crawl: the folders leading to them are entered (their ignore files read), nothing else.
    """
    opts = options or CrawlOptions()
    excluded = {os.path.normcase(str(p)) for p in opts.exclude_dirs}
    inside = sorted({os.path.realpath(p) for p in [*roots, *opts.inside]})
    targets = Targets(opts.only) if opts.only is not None else None
    for root in roots:
        root = root.absolute()
        restricted = targets is not None and not targets.covers(os.path.normpath(root))
        if restricted and os.path.normpath(root) not in targets.leading:
            continue  # nothing to look at under this root
        try:
            st = root.stat()
        except OSError as e:
            yield Skipped(root, _os_reason(e))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, opts, excluded, targets if restricted else None, inside)
        elif not restricted:
            yield from _check_file(root, root.name, root.name, st, opts, explicit=True)


def _os_reason(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, FileNotFoundError):
        return "it no longer exists"
    return e.strerror or str(e)


def _check_file(path: Path, rel: str, name: str, st: os.stat_result, opts: CrawlOptions, explicit: bool = False):
    if not explicit:
        if opts.include and not _matches(opts.include, rel, name):
            if opts.report_skipped:
                yield Skipped(path, "not matched by --include")
            return
    reason = skip_reason(path)
    if reason:
        if opts.report_skipped or explicit:
            yield Skipped(path, reason)
        return
    cap = size_cap(path, opts.max_bytes)
    if st.st_size > cap:
        yield Skipped(path, f"larger than the size cap ({cap / (1024 * 1024):g} MB)")
        return
    yield FoundFile(path, st.st_size, st.st_mtime_ns)


def _walk(
    root: Path, opts: CrawlOptions, excluded: set[str], targets: Targets | None = None, inside: list[str] = ()
) -> Iterator[FoundFile | Skipped]:
    seen_dirs: set[tuple[int, int]] = set()
    root_st = root.stat()
    seen_dirs.add((root_st.st_dev, root_st.st_ino))
    # stack of (folder path, its path relative to root, ignore specs in force: [(folder rel, spec)],
    # and whether only the targets below it are to be looked at)
    stack: list[tuple[str, str, list[tuple[str, pathspec.PathSpec]], bool]] = []
    spec = _load_ignore(str(root))
    stack.append((str(root), "", [("", spec)] if spec else [], targets is not None))
    while stack:
        folder, rel_folder, specs, restricted = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            yield Skipped(Path(folder), _os_reason(e))
            continue
        subdirs = []
        for entry in entries:
            inner = restricted
            if restricted:
                if entry.path in targets.exact:
                    inner = False
                elif entry.path not in targets.leading:
                    continue  # not asked about, and no target below it
            name = entry.name
            rel = f"{rel_folder}/{name}" if rel_folder else name
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if name.startswith("."):
                if opts.report_skipped and name not in IGNORE_FILES:
                    yield Skipped(path, "hidden")
                continue
            if _ignored(specs, rel, is_dir):
                if opts.report_skipped:
                    yield Skipped(path, "ignored by .gitignore or .semsearchignore")
                continue
            if opts.exclude and _matches(opts.exclude, rel, name):
                if opts.report_skipped:
                    yield Skipped(path, "excluded by --exclude")
                continue
            if not opts.follow and entry.is_symlink() and not within(os.path.realpath(entry.path), inside):
                if opts.report_skipped:
                    yield Skipped(path, "symbolic link leading outside the indexed folders; --follow follows it")
                continue
            if is_dir:
                if (
                    name in SKIP_DIRS
                    or _is_venv(entry.path)
                    or os.path.exists(os.path.join(entry.path, "CACHEDIR.TAG"))
                ):
                    if opts.report_skipped:
                        yield Skipped(path, "dependency, cache or build folder")
                    continue
                if os.path.normcase(entry.path) in excluded:
                    continue
                try:
                    st = entry.stat(follow_symlinks=True)
                except OSError as e:
                    yield Skipped(path, _os_reason(e))
                    continue
                key = (st.st_dev, st.st_ino)
                if key in seen_dirs:
                    if opts.report_skipped:
                        yield Skipped(path, "already visited (symbolic link loop)")
                    continue
                seen_dirs.add(key)
                sub_spec = _load_ignore(entry.path)
                subdirs.append((entry.path, rel, specs + [(rel, sub_spec)] if sub_spec else specs, inner))
                continue
            if inner:
                continue  # a file on the way to a target, not a target
            if any(fnmatch.fnmatch(name, g) for g in SKIP_FILE_GLOBS):
                if opts.report_skipped:
                    yield Skipped(
                        path, "generated or scratch file (lock file, minified bundle, backup or temporary file)"
                    )
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError as e:
                yield Skipped(path, "broken symbolic link" if entry.is_symlink() else _os_reason(e))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            yield from _check_file(path, rel, name, st, opts)
        stack.extend(reversed(subdirs))


def _ignored(specs: list[tuple[str, pathspec.PathSpec]], rel: str, is_dir: bool) -> bool:
    """Apply ignore files from the outermost folder inwards; a deeper file can re-include with ``!``."""
    ignored = False
    for base, spec in specs:
        sub = rel[len(base) + 1 :] if base else rel
        if is_dir:
            sub += "/"
        result = spec.check_file(sub)
        if result.include is not None:
            ignored = result.include
    return ignored
