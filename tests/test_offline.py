"""The suite runs offline: the hub is switched off, and any outbound connection, here or in a subprocess, fails.

And semsearch needs no network at all: a real index and query run in a network namespace with no
interface but loopback (where the machine lets us make one).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
from conftest import NETGUARD_LOG
from crashkit import semsearch_command, semsearch_env

UNROUTABLE = ("203.0.113.7", 443)  # TEST-NET-3: never a real host


def test_the_hub_is_switched_off_here_and_in_subprocesses(semsearch_cmd):
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE
    probe = "import os, huggingface_hub.constants as c; print(os.environ['HF_HUB_OFFLINE'], c.HF_HUB_OFFLINE)"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=semsearch_env(), timeout=120
    )
    assert out.stdout.split() == ["1", "True"], out.stderr


def test_an_outbound_connection_in_the_test_process_fails():
    with pytest.raises(AssertionError, match="tried to reach the network"):
        socket.create_connection(UNROUTABLE, timeout=1)


def test_an_outbound_connection_in_a_subprocess_fails_and_is_recorded():
    probe = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection({UNROUTABLE!r}, timeout=1)\n"
        "except OSError as e:\n"
        "    print('blocked:', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=semsearch_env(), timeout=120
    )
    assert "outbound network connection blocked" in out.stdout, out.stdout + out.stderr
    assert "203.0.113.7" in NETGUARD_LOG.read_text()
    NETGUARD_LOG.unlink()  # recorded as it should be: this test's own attempt is not a failure


def test_index_and_query_work_with_no_network_at_all(corpus, tmp_path):
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a network namespace here")
    index_dir = tmp_path / "index"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [unshare, "-n", *semsearch_command(), *args, "--index", str(index_dir)],
            capture_output=True,
            text=True,
            env=semsearch_env(),
            timeout=600,
        )

    indexed = run("index", str(corpus))
    assert indexed.returncode == 0, indexed.stderr
    found = run("query", "baking a loaf of bread", "--json", "-k", "1")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["path"].endswith("kitchen/sourdough.txt")
