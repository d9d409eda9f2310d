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


QUERY_PROBE = """
import json, sys
sys.argv = ["semsearch", *json.loads(sys.argv[1])]
from semsearch.cli import main
try:
    main()
except SystemExit as e:
    code = e.code
print("STATUS=" + json.dumps([code, "typer" in sys.modules, "click" in sys.modules]), file=sys.stderr)
"""


def run_probe(args: list[str], **env: str) -> tuple[str, str, list]:
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **env)
    result = subprocess.run(
        [sys.executable, "-c", QUERY_PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("STATUS=")][-1]
    err = "\n".join(ln for ln in result.stderr.splitlines() if not ln.startswith("STATUS="))
    return result.stdout, err, json.loads(line[len("STATUS=") :])


def test_a_plain_query_in_process_never_loads_the_command_line_framework(cli, corpus, isolated_home, monkeypatch):
    """Without a watcher, `semsearch query` with plain arguments still skips Typer (about 60 ms of a cold
    query) and prints what the command prints, with the same exit status and the same one-sentence errors."""
    monkeypatch.chdir(corpus)
    args = ["query", "baking bread at home", "-k", "2"]
    out, err, (code, typer_loaded, click_loaded) = run_probe(args)  # no index yet: an error, as the command's
    expected = cli(*args)
    assert (code, out, err.strip()) == (2, "", expected.stderr.strip()) and expected.exit_code == 2
    assert err.startswith("semsearch: No index") and err.count("\n") == 0
    assert not typer_loaded and not click_loaded

    cli("index", corpus)
    for argv in (args, [*args, "--json"], ["query", "zzzz qqqq", "--mode", "keyword"], ["query", "bread", "-l"]):
        out, err, (code, typer_loaded, _) = run_probe(argv, SEMSEARCH_NO_WATCHER="1")
        expected = cli(*argv)
        assert (out, code or 0) == (expected.stdout, expected.exit_code) and not typer_loaded, argv
    out, err, (code, typer_loaded, _) = run_probe(["query", "bread", "--no-such-option"])  # the full command decides
    assert typer_loaded and code == 2 and "No such option" in err
