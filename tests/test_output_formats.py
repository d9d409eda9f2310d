"""--format text|json|jsonl|files|vimgrep, and colour and hyperlinks only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest
from conftest import REPO

VIMGREP = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+):(?P<text>.*)$")


@pytest.fixture
def indexed(cli, corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    assert cli("index", ".").exit_code == 0
    return corpus


def test_vimgrep_lines_parse_and_point_at_the_matching_line(cli, indexed):
    result = cli("query", "rotate the api keys", "--format", "vimgrep", "-k", "4")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    for line in lines:
        m = VIMGREP.match(line)
        assert m, line
        file_lines = (indexed / m["path"]).read_text().split("\n")
        # the line number and text are the file's own: an editor jumps to the right place
        assert file_lines[int(m["line"]) - 1].rstrip() == m["text"].rstrip()
        assert 1 <= int(m["col"]) <= max(1, len(m["text"]))
    first = VIMGREP.match(lines[0])
    assert first["path"] == "ops/credentials.md"
    assert first["text"][int(first["col"]) - 1 :].lower().startswith(("rotat", "api", "keys"))


def test_json_is_one_array_and_jsonl_one_object_per_line(cli, indexed):
    array = json.loads(cli("query", "bread", "--format", "json", "-k", "3").stdout)
    lines = [json.loads(x) for x in cli("query", "bread", "--format", "jsonl", "-k", "3").stdout.splitlines()]
    assert isinstance(array, list) and len(array) == 3 and array == lines
    assert (
        cli("query", "bread", "--json", "-k", "3").stdout
        == cli("query", "bread", "--format", "jsonl", "-k", "3").stdout
    )
    files = cli("query", "bread", "--format", "files", "-k", "2").stdout.splitlines()
    assert files == cli("query", "bread", "-l", "-k", "2").stdout.splitlines() and len(files) == 2


def test_conflicting_or_unknown_formats_are_refused(cli, indexed):
    result = cli("query", "bread", "--format", "xml")
    assert result.exit_code == 2 and "Unknown --format 'xml'" in result.stderr
    result = cli("query", "bread", "--json", "--format", "json")
    assert result.exit_code == 2 and "--json means --format jsonl" in result.stderr


def test_no_colour_when_the_output_is_not_a_terminal(semsearch_cmd, cli, indexed):
    result = semsearch_cmd("query", "bread", "-k", "1", cwd=indexed)
    assert result.returncode == 0 and "\x1b" not in result.stdout


def _run_in_terminal(args: list[str], env: dict, cwd, timeout: float = 120) -> bytes:
    """Run the CLI with a pseudo-terminal as its standard output; return all it wrote."""
    main, sub = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "semsearch", *args], stdout=sub, stderr=subprocess.PIPE, env=env, cwd=cwd
    )
    os.close(sub)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(main)
        process.wait(timeout=60)
    assert process.returncode == 0, process.stderr.read()
    return out


def test_colour_and_hyperlinks_on_a_terminal_and_no_colour_with_no_color(cli, indexed):
    env = dict(os.environ, PYTHONPATH=str(REPO), TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    env.pop("FORCE_HYPERLINK", None)
    shown = _run_in_terminal(["query", "bread", "-k", "1"], env, indexed)
    assert b"\x1b[35m" in shown  # the path in magenta
    uri = (indexed / "kitchen" / "sourdough.txt").as_uri().encode()
    assert b"\x1b]8;" in shown and uri in shown  # and a hyperlink to the file
    plain = _run_in_terminal(["query", "bread", "-k", "1"], dict(env, NO_COLOR="1"), indexed)
    assert not re.search(rb"\x1b\[(3\d|9\d)m", plain)  # no foreground colour
    unlinked = _run_in_terminal(["query", "bread", "-k", "1"], dict(env, FORCE_HYPERLINK="0"), indexed)
    assert b"\x1b]8;" not in unlinked and b"\x1b[35m" in unlinked


def test_piped_text_is_what_rich_prints_without_loading_it(tmp_path):
    """Hits printed to a pipe skip Rich (it costs a warm query a third of its time); the lines are the ones
    Rich's console writes there, and a subprocess shows Rich never loaded."""
    import io

    from rich.console import Console

    from semsearch.output.hits import print_files, print_hits
    from semsearch.output.terminal import PlainConsole, text_console
    from semsearch.search.hits import Hit

    hits = [
        Hit(
            tmp_path / "notes" / "keys.md", 3, 5, 0.8123, "Rotate the API keys\nevery quarter\n\nsee ops", heading="Ops"
        ),
        Hit(tmp_path / "ünïcode 東京 \x1b[2J.md", 1, 1, 0.5, "東京 keys [bold]not markup[/bold] \\ back", page=2),
        Hit(
            tmp_path / "b.ipynb",
            7,
            7,
            0.25,
            "x = keys()",
            cell=3,
            mode="hybrid",
            dense_rank=1,
            dense_score=0.5,
            keyword_rank=None,
            keyword_score=0.0,
            fused_score=0.1234,
            exact=("keys",),
        ),
    ]
    for explain in (False, True):
        plain, rich = io.StringIO(), io.StringIO()
        print_hits(PlainConsole(plain), hits, "rotate keys", explain=explain)
        print_hits(Console(file=rich, highlight=False, soft_wrap=True), hits, "rotate keys", explain=explain)
        assert plain.getvalue() == rich.getvalue() and "Rotate the API keys" in plain.getvalue()
        plain, rich = io.StringIO(), io.StringIO()
        print_files(PlainConsole(plain), hits, explain=explain)
        print_files(Console(file=rich, highlight=False, soft_wrap=True), hits, explain=explain)
        assert plain.getvalue() == rich.getvalue()
    assert isinstance(text_console(io.StringIO()), PlainConsole)

    probe = (
        "import sys; from pathlib import Path; from semsearch.output.hits import print_hits; from semsearch.search.hits import Hit; "
        "from semsearch.output.terminal import text_console; "
        "print_hits(text_console(sys.stdout), [Hit(Path('a.md'), 1, 1, 0.5, 'text')], 'q'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "FORCE_HYPERLINK")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout
    assert out.splitlines()[0].startswith("a.md:1") and out.splitlines()[-1] == "[]"
    forced = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=dict(env, FORCE_COLOR="1"), check=True
    ).stdout
    assert "\x1b[" in forced and "rich.console" in forced.splitlines()[-1]
