"""Start-up stays light: help and status never import the machine-learning stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

HEAVY = ("torch", "sentence_transformers", "transformers", "faiss", "onnxruntime", "numpy", "mcp")

PROBE = """
import json, sys
args, heavy = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
sys.argv = ["semsearch", *args]
from semsearch.cli import main
try:
    main()
except SystemExit:
    pass
print("HEAVY=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)), file=sys.stderr)
"""


def heavy_modules(args: list[str]) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("HEAVY=")][-1]
    return json.loads(line[len("HEAVY=") :])


@pytest.mark.parametrize(
    "args", [["--help"], ["query", "--help"], ["index", "--help"], ["mcp", "--help"], ["similar", "--help"], ["config"]]
)
def test_help_imports_nothing_heavy(args):
    assert heavy_modules(args) == []


def test_status_imports_nothing_heavy(cli, corpus, isolated_home):
    cli("index", corpus)
    assert heavy_modules(["status", "--index", str(isolated_home)]) == []
    assert heavy_modules(["status", "--json", "--index", str(isolated_home)]) == []
