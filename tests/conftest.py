"""Shared test fixtures: an isolated index home, no network, a small corpus, and ways to run the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/pgserver.py

REPO = Path(__file__).resolve().parent.parent

# Everything runs offline: the model comes from an installed package, never from a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(sock: socket.socket, address) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("127."):
        raise AssertionError(f"a test tried to reach the network: {address!r}")


def _guarded_connect(self, address):
    _check_address(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check_address(self, address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]

# Python subprocesses get the same guard from tests/netguard/sitecustomize.py, and log their attempts.
NETGUARD_LOG = Path(tempfile.mkdtemp(prefix="semsearch-netguard-")) / "attempts.log"
os.environ["SEMSEARCH_TEST_NETGUARD"] = "1"
os.environ["SEMSEARCH_TEST_NETGUARD_LOG"] = str(NETGUARD_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(REPO / "tests" / "netguard"), os.environ.get("PYTHONPATH")])
)


@pytest.fixture(autouse=True)
def no_network_in_subprocesses():
    """Fail a test whose subprocesses tried to reach the network (even if the attempt's error was swallowed)."""
    NETGUARD_LOG.unlink(missing_ok=True)
    yield
    if NETGUARD_LOG.exists():
        attempts = NETGUARD_LOG.read_text()
        NETGUARD_LOG.unlink()
        pytest.fail(f"a subprocess tried to reach the network:\n{attempts}")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch) -> Path:
    """Each test gets its own default index folder; nothing touches the user's real one."""
    home = tmp_path / "semsearch-home"
    monkeypatch.setenv("SEMSEARCH_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def export_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export-cache")


@pytest.fixture(autouse=True)
def isolated_export_cache(export_cache_dir, monkeypatch) -> Path:
    """ONNX exports are cached for the whole session in a folder of its own, never in the user's cache."""
    monkeypatch.setenv("SEMSEARCH_CACHE", str(export_cache_dir))
    return export_cache_dir


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch, request) -> Path:
    """No test reads the user's own config file: the user config file is one under tmp_path (absent).

    Queries show every hit (``SEMSEARCH_MIN_SCORE=0``, as ``--all``): the tiny corpora of the tests have few
    passages relevant to anything, and most tests are about something else than the relevance cut-off. Tests
    marked ``default_cutoff`` (tests/test_calibration.py) run with the calibrated cut-off, as users do."""
    user_file = tmp_path / "user-config" / "config.toml"
    monkeypatch.setenv("SEMSEARCH_CONFIG", str(user_file))
    for name in (
        "SEMSEARCH_STORE",
        "SEMSEARCH_MODEL",
        "SEMSEARCH_EXCLUDE",
        "SEMSEARCH_CHUNK_SIZE",
        "SEMSEARCH_MODE",
        "SEMSEARCH_TOP_K",
    ):
        monkeypatch.delenv(name, raising=False)
    if request.node.get_closest_marker("default_cutoff") is None:
        monkeypatch.setenv("SEMSEARCH_MIN_SCORE", "0")
    else:
        monkeypatch.delenv("SEMSEARCH_MIN_SCORE", raising=False)
    return user_file


CORPUS = {
    "ops/credentials.md": """# Credentials

## Rotating API keys

Service keys expire every 90 days. To issue a new key, open the admin console,
choose Settings, Access tokens, and create a token with the same scopes as
the old one. Deploy the new token first, then revoke the old one.
""",
    "kitchen/sourdough.txt": """Sourdough, the way that finally worked

Feed the starter the evening before with equal weights of flour and water.
Mix flour, water, starter and salt; stretch and fold every half hour.
Shape, leave it in the fridge overnight, and put it in a very hot oven
inside a covered cast-iron pot.
""",
    "garden/tomatoes.md": """# Garden log

## Tomatoes

Planted six tomato seedlings along the south fence in May. The leaves curled in
the July heat, so I added mulch to keep the soil moist. First ripe fruit in August.
""",
    "code/retry.py": '''"""Call flaky network services with exponential backoff."""

import random
import time


def with_backoff(call, attempts=5, base_delay=0.5):
    """Retry call when it raises, sleeping twice as long after each failure, with jitter."""
    for attempt in range(attempts):
        try:
            return call()
        except ConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(base_delay * 2**attempt * (1 + random.random()))
''',
    "travel/checklist.rst": """Travel checklist
================

Before leaving
--------------

Check that the passport is valid for six more months, print the boarding
passes, and tell the bank which countries you will visit.
""",
    "music/guitar.txt": """Practising guitar

Twenty minutes of scales every morning, then chord changes between G, C and D
with a metronome at sixty beats per minute. Fingertips hurt for the first weeks.
""",
}


def write_corpus(root: Path, files: dict[str, str] = CORPUS) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "docs")


@pytest.fixture
def cli():
    """Run the Typer app in-process; returns the click Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from semsearch.cli.app import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def index_dir(cli, corpus, tmp_path) -> Path:
    """An index of the test corpus in its own folder (``--index``), built through the command line."""
    folder = tmp_path / "index"
    assert cli("index", corpus, "--index", folder).exit_code == 0
    return folder


def installed_command() -> list[str]:
    exe = Path(sys.executable).parent / "semsearch"
    assert exe.exists(), f"the semsearch command is not installed beside {sys.executable}"
    return [str(exe)]


@pytest.fixture
def semsearch_cmd(isolated_home):
    """Run the installed ``semsearch`` command in a subprocess (this checkout's code, no terminal)."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.update(env or {})
        return subprocess.run(
            installed_command() + [str(a) for a in args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


# -- PostgreSQL -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL 18 + pgvector server for the session (tests/pgserver.py), stopped at the end.

    It must start: a PostgreSQL test is never skipped (under CI, or anywhere), so a server that cannot
    start fails every test that needs it, with the server's own words.
    """
    from pgserver import PgTestServer, ServerUnavailable

    server = PgTestServer()
    try:
        server.start()
    except (ServerUnavailable, OSError, subprocess.SubprocessError) as e:
        server.stop()
        pytest.fail(f"the PostgreSQL test server did not start: {e}", pytrace=False)
    yield server
    server.stop()


_pg_databases = iter(range(1, 1_000_000))


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh database with the ``vector`` extension, for one test; its URL (Unix socket, no password)."""
    return pg_server.create_database(f"t{os.getpid()}_{next(_pg_databases)}")
