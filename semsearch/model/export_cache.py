"""A per-user cache of finished ONNX exports, so that a new index of a model exported before gets its export
in a fraction of a second (hard links, checked against recorded hashes) instead of loading torch and
exporting again (several seconds and about 90 MB per index).

The cache lives in ``$SEMSEARCH_CACHE`` when set (an empty value turns it off), else in the user cache
folder (``~/.cache/semsearch`` on Linux). It is only ever a source of copies: every index keeps its own
export, so deleting the cache loses nothing. A cached export whose files do not match the sizes and
SHA-256 recorded when it was stored is not used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from semsearch.userdirs import cache_dir

STAMP = "semsearch-cache.json"
FORMAT = 1
LINK_AT_LEAST = 1 << 20  # bytes

log = logging.getLogger(__name__)


def cached_export(fingerprint: str, kind: str) -> Path | None:
    """Where the export of the model with ``fingerprint`` for vectors of ``kind`` is (or would be) kept."""
    root = cache_dir()
    return None if root is None else root / "onnx" / f"{fingerprint}-{kind}"


def fetch(fingerprint: str, kind: str, dst: Path) -> bool:
    """Put the cached export into ``dst`` (an index's export folder, replaced atomically); False when the
    cache has no sound copy, and then ``dst`` is as it was."""
    src = cached_export(fingerprint, kind)
    if src is None:
        return False
    try:
        stamp = json.loads((src / STAMP).read_text(encoding="utf-8"))
        if stamp.get("format") != FORMAT or stamp.get("fingerprint") != fingerprint:
            return False
        files = {str(name): (int(size), str(digest)) for name, (size, digest) in stamp["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    if not files or any(Path(name).name != name for name in files):
        return False
    try:
        _copy_checked(src, dst, files)
    except ValueError as e:  # the cached files changed since they were stored: drop them, the next export
        log.debug("not using the cached ONNX export %s: %s", src, e)  # stores a sound copy
        shutil.rmtree(src, ignore_errors=True)
        return False
    except OSError as e:
        log.debug("not using the cached ONNX export %s: %s", src, e)
        return False
    return True


def publish(fingerprint: str, kind: str, src: Path) -> None:
    """Keep a finished export (``src``, an index's folder) for later indexes; quietly nothing on failure."""
    dst = cached_export(fingerprint, kind)
    if dst is None or (dst / STAMP).is_file():
        return
    try:
        files = {p.name: (p.stat().st_size, _sha256(p)) for p in sorted(src.iterdir()) if p.is_file()}
        _copy_checked(src, dst, files, stamp={"format": FORMAT, "fingerprint": fingerprint, "files": files})
    except (OSError, ValueError) as e:
        log.debug("could not keep the ONNX export in %s: %s", dst, e)


def _copy_checked(src: Path, dst: Path, files: dict[str, tuple[int, str]], stamp: dict | None = None) -> None:
    """Hard-link (or copy) ``files`` from ``src`` into a new folder beside ``dst``, check each against its
    size and hash, then move the folder into place."""
    from semsearch.model.onnx_export import fsync_tree, move_into_place, remove_stale_siblings

    dst.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(dst)  # what copies killed half-way left behind
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-{os.getpid()}-", dir=dst.parent))
    try:
        tmp.chmod(0o755)
        for name, (size, digest) in files.items():
            target = tmp / name
            linked = False
            if size >= LINK_AT_LEAST:  # the model itself; small files are copied, so nothing ever edits both
                try:
                    os.link(src / name, target)
                    linked = True
                except OSError:  # another file system, or links not allowed
                    pass
            if not linked:
                shutil.copyfile(src / name, target)
            if target.stat().st_size != size or _sha256(target) != digest:
                raise ValueError(f"{name} differs from the export that was stored")
        if stamp is not None:
            (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        fsync_tree(tmp)
        move_into_place(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
