"""Turn disk, permission and database failures met while using an index into one plain sentence."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from semsearch.errors import IndexBusy, IndexCorrupt, IndexUnreadable, IndexWriteFailed, SemsearchError
from semsearch.storage.layout import IndexPaths

_ADVICE = {
    errno.ENOSPC: "free some space and run the same command again",
    errno.EDQUOT: "free some space (you are over your disk quota) and run the same command again",
    errno.EACCES: "make the folder and its files writable for you (or choose another with --index) and run again",
    errno.EPERM: "make the folder and its files writable for you (or choose another with --index) and run again",
    errno.EROFS: "the file system is read-only; choose another folder with --index",
}
_SQLITE_ERRNO = {
    "SQLITE_FULL": errno.ENOSPC,
    "SQLITE_READONLY": errno.EACCES,
    "SQLITE_READONLY_DIRECTORY": errno.EACCES,
    "SQLITE_READONLY_DBMOVED": errno.EACCES,
    "SQLITE_READONLY_RECOVERY": errno.EACCES,
    "SQLITE_READONLY_CANTLOCK": errno.EACCES,
    "SQLITE_READONLY_CANTINIT": errno.EACCES,
    "SQLITE_PERM": errno.EACCES,
    "SQLITE_AUTH": errno.EACCES,
}


FULL_BELOW = 1024 * 1024  # free bytes under which an I/O error from SQLite is taken for a full disk


def _reason(paths: IndexPaths, e: BaseException) -> tuple[str, int | None]:
    """A short description of ``e`` and the errno it stands for (when there is one)."""
    if isinstance(e, OSError):
        return (e.strerror or str(e)), e.errno
    name = getattr(e, "sqlite_errorname", "") or ""
    code = _SQLITE_ERRNO.get(name)
    if code is None and name.startswith("SQLITE_IOERR"):
        # SQLite does not pass the errno on; a write that failed on an (almost) full disk is a full disk
        code = errno.ENOSPC if _free_bytes(paths) < FULL_BELOW else errno.EIO
    text = {errno.ENOSPC: "No space left on device", errno.EACCES: "Permission denied"}.get(code, str(e))
    return text, code


def _free_bytes(paths: IndexPaths) -> int:
    folder = paths.root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return FULL_BELOW
    return st.f_bavail * st.f_frsize


def writing_index(paths: IndexPaths):
    """Around a run that changes the index: a failed write becomes IndexWriteFailed (or IndexCorrupt)."""
    return _translating(paths, writing=True)


def reading_index(paths: IndexPaths):
    """Around a command that only reads the index: a failure becomes one sentence naming the index."""
    return _translating(paths, writing=False)


@contextmanager
def _translating(paths: IndexPaths, writing: bool) -> Iterator[None]:
    try:
        yield
    except SemsearchError:
        raise
    except (sqlite3.DatabaseError, OSError) as e:
        raise _translate(paths, e, writing=writing) from e
    except Exception as e:
        if type(e).__module__.startswith("psycopg"):  # a PostgreSQL store (never imported here otherwise)
            from semsearch.storage.postgres import translate

            raise translate(paths, e, writing=writing) from e
        raise


def _translate(paths: IndexPaths, e: BaseException, writing: bool) -> SemsearchError:
    name = getattr(e, "sqlite_errorname", "") or ""
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or name.startswith("SQLITE_CORRUPT"):
        return IndexCorrupt(
            f"The index database {paths.db} is damaged ({e}); nothing was changed. Move it aside and index again "
            "to rebuild it (semsearch check tells more)."
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return IndexBusy(f"The index at {paths.root} is locked by another process ({e}); try again in a moment.")
    reason, code = _reason(paths, e)
    where = getattr(e, "filename", None)
    place = f"{paths.root}" if not where else f"{paths.root} ({where})"
    if not writing:
        return IndexUnreadable(
            f"Could not read the index at {place}: {reason}; check that you can read that folder and its files."
        )
    advice = _ADVICE.get(code, "run the same command again")
    return IndexWriteFailed(
        f"Could not write the index at {place}: {reason}; {advice}. The index is intact: what was stored "
        "before the error is kept and the rest is indexed by the next run."
    )
