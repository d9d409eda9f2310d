"""Facts about processes and files of this machine that every layer may need: is a process still running."""

from __future__ import annotations

import os
import stat


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not; one of another user does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


PRIVATE_FOLDER = 0o700  # the index holds the text of every indexed file: its owner's only, as ~/.ssh
PRIVATE_FILE = 0o600


def private_opener(path: str, flags: int, dir_fd: int | None = None) -> int:
    """An ``opener`` for ``open()`` that creates the file 0600 whatever the umask."""
    return os.open(path, flags, PRIVATE_FILE, dir_fd=dir_fd)


def make_private(folder) -> None:
    """Make an index folder its owner's only: the folder (and its subfolders) 0700, every file directly in it 0600,
    whatever the umask was when they were made. Cheap when nothing is to change; an index made by an earlier
    version is fixed on its next write. Files in subfolders (the ONNX export, hard-linked from the user's cache)
    keep their modes: nobody else can reach them through a 0700 folder. Never fails: a folder that cannot be
    changed (not ours, read-only) is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            return
        if st.st_mode & 0o7777 != PRIVATE_FOLDER:
            os.fchmod(fd, PRIVATE_FOLDER)
        with os.scandir(fd) as entries:
            for entry in entries:
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                    if entry.is_dir(follow_symlinks=False):
                        if mode & 0o077:
                            os.chmod(entry.name, PRIVATE_FOLDER, dir_fd=fd)
                    elif stat.S_ISREG(mode) or stat.S_ISSOCK(mode):
                        if mode & 0o077:
                            os.chmod(entry.name, mode & PRIVATE_FILE or PRIVATE_FILE, dir_fd=fd)
                except OSError:
                    continue
    except OSError:
        pass
    finally:
        os.close(fd)
