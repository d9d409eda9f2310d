"""File names with spaces, newlines, bytes that are not UTF-8, and very long paths: indexed, shown safely, exact in JSON."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

NAMES = {
    b"with spaces and (brackets).txt": "Planting garlic cloves in autumn, pointy end up, a hand apart.",
    b"line\nbreak.txt": "We sailed the small boat across the bay when the wind dropped at dusk.",
    b"caf\xe9 menu latin-1.txt": "Espresso, cappuccino and croissants are served all morning at the cafe.",
    b"tab\there \x1b[31mred.md": "# Owls\n\nBarn owls hunt voles at night over the meadow behind the farm.",
    "naïve ünïcödé 東京.txt".encode(): "The night train to Kyoto leaves Tokyo station at ten past eleven.",
}
QUERIES = {
    b"with spaces and (brackets).txt": "when to plant garlic",
    b"line\nbreak.txt": "sailing across the bay",
    b"caf\xe9 menu latin-1.txt": "coffee and pastries for breakfast",
    b"tab\there \x1b[31mred.md": "birds that hunt at night",
    "naïve ünïcödé 東京.txt".encode(): "overnight rail journey in Japan",
}


@pytest.fixture
def odd_corpus(tmp_path) -> bytes:
    root = os.fsencode(tmp_path / "odd")
    os.mkdir(root)
    for name, text in NAMES.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(text.encode())
    return root


def top_hit(cli, query: str) -> dict:
    result = cli("query", query, "--json", "-k", "1")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout_bytes.decode("utf-8"))  # strict: the JSON is valid UTF-8


def test_odd_names_are_indexed_and_round_trip_exactly_through_json(cli, odd_corpus):
    result = cli("index", os.fsdecode(odd_corpus))
    assert result.exit_code == 0 and f"{len(NAMES)} added" in result.stdout
    for name, query in QUERIES.items():
        hit = top_hit(cli, query)
        exact = os.path.join(odd_corpus, name)
        if "path_bytes" in hit:
            assert base64.b64decode(hit["path_bytes"]) == exact
        else:  # valid UTF-8: the string is the path
            assert hit["abspath"].encode("utf-8") == exact
        assert Path(os.fsdecode(exact)).exists()
    latin = top_hit(cli, QUERIES[b"caf\xe9 menu latin-1.txt"])
    assert "path_bytes" in latin and latin["abspath"].endswith("caf\ufffd menu latin-1.txt")
    assert "path_bytes" not in top_hit(cli, QUERIES["naïve ünïcödé 東京.txt".encode()])
    newline = top_hit(cli, QUERIES[b"line\nbreak.txt"])
    assert newline["abspath"].endswith("line\nbreak.txt") and "path_bytes" not in newline


def test_odd_names_are_escaped_in_terminal_output(cli, odd_corpus):
    cli("index", os.fsdecode(odd_corpus))
    for args in (("query", "anything at all", "-k", "50"), ("query", "anything at all", "-l", "-k", "50")):
        out = cli(*args).stdout_bytes.decode("utf-8")
        assert "\x1b" not in out and "line\nbreak" not in out
        assert "line\\nbreak.txt" in out
        assert "caf\\xe9 menu" in out
        assert "here \\x1b[31mred.md" in out  # (rich shows the tab as spaces)
        assert "naïve ünïcödé 東京.txt" in out  # printable non-ASCII is shown as it is
    listed = cli("query", "anything at all", "-l", "-k", "50").stdout.splitlines()
    assert len(listed) == len(NAMES)  # one line per file: a newline in a name does not split it


def test_odd_root_names_are_escaped_in_status_and_exact_in_status_json(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")  # no table cell cut short
    root = os.path.join(os.fsencode(tmp_path), b"notes\n\xff")
    os.mkdir(root)
    with open(os.path.join(root, b"a.txt"), "wb") as f:
        f.write(b"Bees gather nectar from the lavender in the afternoon.")
    assert cli("index", os.fsdecode(root)).exit_code == 0
    text = cli("status").stdout_bytes.decode("utf-8")
    assert "notes\\n\\xff" in text
    status = json.loads(cli("status", "--json").stdout_bytes.decode("utf-8"))
    assert [base64.b64decode(b) for b in status["roots_bytes"]] == [root]


def test_very_long_paths_are_indexed_and_paths_beyond_the_limit_are_skipped_with_a_reason(cli, tmp_path):
    root = tmp_path / "long"
    deep = root
    for i in range(14):  # 14 folders of 200 bytes: ~2.8 KB, under PATH_MAX (4096)
        deep = deep / (f"{i:02d}" + "d" * 198)
    deep.mkdir(parents=True)
    name = "n" * 251 + ".txt"  # 255 bytes: the longest name a file may have
    (deep / name).write_text("Knitting a wool scarf with a simple cable pattern on circular needles.")
    too_deep = deep
    for _ in range(8):  # past PATH_MAX: the kernel refuses these paths whole
        too_deep = too_deep / ("e" * 200)
    fd = os.open(root, os.O_RDONLY)
    try:  # make the too-long folder with paths relative to open folders
        for part in too_deep.relative_to(root).parts:
            try:
                os.mkdir(part, dir_fd=fd)
            except FileExistsError:
                pass
            new = os.open(part, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
        out = os.open("unreachable.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, b"Nobody can open this file by its absolute path.")
        os.close(out)
    finally:
        os.close(fd)
    result = cli("index", root, "-v")
    assert result.exit_code == 0, result.stderr
    assert "1 added" in result.stdout
    assert "File name too long" in result.stderr
    hit = top_hit(cli, "knitting a scarf")
    assert hit["abspath"] == str(deep / name)
    assert json.loads(cli("check", "--json").stdout)["consistent"]


def test_odd_names_in_error_messages_are_escaped_on_one_line(cli, tmp_path):
    missing = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"gone\n\x1b[2J\xff"))
    result = cli("index", missing)
    assert result.exit_code == 2
    err = result.stderr_bytes.decode("utf-8")
    assert err.count("\n") == 1 and "\x1b" not in err
    assert "gone\\n\\x1b[2J\\xff" in err
