"""The watcher's pure parts, deterministic: how changes settle and coalesce, the wire format, the fast query parser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semsearch.cli.light import parse_query_args
from semsearch.search.hits import Hit, QueryOptions
from semsearch.watcher.daemon import Changes
from semsearch.watcher.protocol import dumps, loads


class FakeDisk:
    """A clock and a stat function the test moves by hand."""

    def __init__(self):
        self.now = 100.0
        self.stats: dict[str, tuple] = {}

    def clock(self) -> float:
        return self.now

    def stat(self, path: str):
        return self.stats.get(path)

    def write(self, path: str, size: int) -> None:
        self.stats[path] = (size, int(self.now * 1e9), 1)


@pytest.fixture
def disk():
    return FakeDisk()


def changes(disk, quiet=1.0, max_wait=10.0) -> Changes:
    return Changes(quiet, max_wait, clock=disk.clock, stat=disk.stat)


def test_a_save_storm_becomes_one_change_after_the_quiet_window(disk):
    c = changes(disk)
    for _ in range(20):  # an editor writing, renaming, touching the same file
        disk.write("/r/a.md", 10)
        c.add("/r/a.md")
        disk.now += 0.05
    assert c.take() == []  # the last event is only 0.05 s old
    disk.now += 1.0
    assert c.take() == ["/r/a.md"]
    assert c.take() == [] and len(c) == 0


def test_a_checkout_of_many_files_is_one_batch(disk):
    c = changes(disk)
    for i in range(300):
        disk.write(f"/r/src/f{i}.py", i)
        c.add(f"/r/src/f{i}.py")
        disk.now += 0.001
    disk.now += 1.0
    batch = c.take()
    assert len(batch) == 300 and len(c) == 0


def test_a_file_still_growing_is_held_until_its_size_rests(disk):
    c = changes(disk)
    disk.write("/r/big.txt", 100)
    c.add("/r/big.txt")
    disk.now += 1.5
    disk.write("/r/big.txt", 200)  # written again, and (say) no event reached us yet
    assert c.take() == []  # size differs from the one seen at the event: not read half-way
    disk.now += 0.5
    assert c.take() == []  # looked again less than a quiet window ago
    disk.now += 1.0
    assert c.take() == ["/r/big.txt"]


def test_a_folder_waits_for_the_unsettled_files_under_it_and_covers_the_settled_ones(disk):
    c = changes(disk)
    disk.stats["/r/new"] = (0, 0, 7)
    c.add("/r/new", is_dir=True)
    disk.write("/r/new/a.md", 5)
    c.add("/r/new/a.md")
    disk.now += 0.9
    disk.write("/r/new/b.md", 5)
    c.add("/r/new/b.md")  # b is still being copied
    disk.now += 0.5
    assert c.take() == []  # everything waits: the last event is 0.5 s old
    disk.now += 0.6
    assert c.take() == ["/r/new"]  # one target for the folder, its files included


def test_a_never_ending_storm_still_indexes_what_has_settled(disk):
    c = changes(disk, quiet=1.0, max_wait=5.0)
    disk.write("/r/done.md", 1)
    c.add("/r/done.md")
    for _ in range(100):  # a log file written every 0.1 s, for 10 s
        disk.now += 0.1
        disk.write("/r/app.log.txt", int(disk.now * 10))
        c.add("/r/app.log.txt")
        batch = c.take()
        if batch:
            break
    assert batch == ["/r/done.md"]  # after max_wait, without the file still being written
    assert len(c) == 1


def test_a_deleted_path_settles_as_missing(disk):
    c = changes(disk)
    c.add("/r/gone.md")  # stat: None
    disk.now += 1.0
    assert c.take() == ["/r/gone.md"]


def test_hits_and_options_cross_the_wire_intact():
    odd = Path(os.fsdecode(b"/tmp/caf\xe9-\xff.md"))  # not valid UTF-8: surrogate escapes
    hit = Hit(odd, 3, 9, 0.5, "text with \u00e9 and \n newline", None, "A > B", 2, 77)
    options = QueryOptions(text="q", k=3, path_glob="*.md", min_score=0.1, files_only=True)
    line = dumps({"ok": True, "hits": [hit], "options": options})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    back = loads(line)
    assert back["hits"] == [hit] and os.fsencode(back["hits"][0].path) == os.fsencode(odd)
    assert back["options"] == options


def test_the_wire_refuses_to_build_classes_from_elsewhere():
    with pytest.raises(ValueError):
        loads(b'{"$dataclass": "subprocess:Popen", "fields": {"args": ["true"]}}\n')


@pytest.mark.parametrize(
    "line",
    [
        b'{"$dataclass": "semsearch.search.engine:Hit", "fields": {"explain": 1}}\n',  # a field this version lacks
        b'{"$dataclass": "semsearch.nowhere:Thing", "fields": {}}\n',  # a class this version lacks
        b'{"$enum": "semsearch.search.engine:Mode", "value": "hybrid"}\n',
        b"[1, 2]\n",
        b"not json\n",
    ],
)
def test_a_message_from_another_version_is_a_value_error(line):
    with pytest.raises(ValueError):
        loads(line)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["bread"], {"text": "bread", "k": None, "mode": None}),  # None: the settings decide
        (["bread", "-k", "3", "--json"], {"k": 3, "json_output": True}),
        (["-k5", "bread"], {"k": 5}),
        (["bread", "--top=7", "-l"], {"k": 7, "files_only": True}),
        (["bread", "--path", "*.md", "--min-score", "-0.25"], {"path": "*.md", "min_score": -0.25}),
        (["bread", "--path=docs/*", "--min-score=.5", "--index", "/x"], {"path": "docs/*", "index_dir": Path("/x")}),
        (["bread", "--mode", "keyword", "--explain", "--format", "vimgrep"], {"mode": "keyword", "explain": True}),
        (["--", "-bread"], {"text": "-bread"}),
        (["bread", "--rerank", "/models/ce", "--rerank-depth", "12"], {"rerank": "/models/ce", "rerank_depth": 12}),
        (["--queries", "q.txt"], {"queries": "q.txt", "text": None}),
    ],
)
def test_fast_query_parser_reads_plain_arguments(argv, expected):
    parsed = parse_query_args(argv)
    assert parsed is not None
    assert {k: parsed[k] for k in expected} == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["bread", "--no-such-option"],  # an option it does not know: the full command line decides
        ["bread", "-k", "0"],
        ["bread", "-k", "three"],
        ["bread", "--min-score", "high"],
        ["bread", "butter"],
        ["bread", "-k"],
        ["-x", "bread"],
        ["bread", "-lk5"],
    ],
)
def test_fast_query_parser_leaves_everything_else_to_the_full_command_line(argv):
    assert parse_query_args(argv) is None
