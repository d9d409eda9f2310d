"""The watcher's socket and the inputs of the command line as an attacker or a careless user meets them: the wire
carries data only, nesting and numbers are bounded, a crowd of clients is served by the watcher itself, and every
out-of-range number is one sentence with exit status 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polling import eventually
from test_watch_process import gone, serving

from semsearch.search.hits import Hit, QueryOptions
from semsearch.storage.layout import IndexPaths
from semsearch.watcher.client import ask_watcher, request
from semsearch.watcher.protocol import MAX_DEPTH, dumps, loads, schema, socket_address


@pytest.fixture
def watcher(cli, corpus, semsearch_cmd, isolated_home):
    """A real background watcher process on an index of the corpus; killed if a test leaves it running."""
    assert cli("index", corpus).exit_code == 0
    started = semsearch_cmd("watch", "--background", "--debounce", "0.2")
    assert started.returncode == 0, started.stderr
    info = eventually(lambda: serving(cli), "the background watcher to answer queries")
    paths = IndexPaths(isolated_home)
    yield paths
    semsearch_cmd("watch", "stop")
    if not gone(info["pid"]):
        os.kill(info["pid"], signal.SIGKILL)


def raw_exchange(path: Path, line: bytes) -> bytes:
    """Send one raw line to the watcher's socket, as a hand-written client would, and read its one-line reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock, socket_address(path) as address:
        sock.settimeout(60)
        sock.connect(address)
        sock.sendall(line)
        reply = b""
        while not reply.endswith(b"\n"):
            data = sock.recv(65536)
            if not data:
                break
            reply += data
        return reply


def test_a_message_naming_code_runs_nothing_and_the_watcher_answers_on(watcher, tmp_path):
    marker = tmp_path / "ran"
    attacks = [
        {"$enum": "semsearch.store:os.system", "value": f"id > {marker}"},
        {"$dataclass": "semsearch.store:os.system", "fields": {"command": f"id > {marker}"}},
        {"$dataclass": "subprocess:Popen", "fields": {"args": ["sh", "-c", f"id > {marker}"]}},
    ]
    for attack in attacks:
        for message in (attack, {"op": "search", "schema": schema(), "options": attack}):
            reply = json.loads(raw_exchange(watcher.query_socket, json.dumps(message).encode() + b"\n"))
            assert reply["ok"] is False and reply["error"].startswith("bad request"), reply
    assert not marker.exists()
    deep = raw_exchange(watcher.query_socket, b"[" * 100_000 + b"]" * 100_000 + b"\n")
    assert json.loads(deep) == {"ok": False, "error": f"bad request: message nested more than {MAX_DEPTH} deep"}
    huge = {"op": "search", "schema": schema(), "options": {"$dataclass": "QueryOptions", "fields": {"text": "x"}}}
    huge["options"]["fields"]["k"] = 99999999999999999999
    reply = json.loads(raw_exchange(watcher.query_socket, json.dumps(huge).encode() + b"\n"))
    assert reply["ok"] is False and "from 1 to 10000" in reply["error"]
    # and the watcher still answers properly
    assert ask_watcher(watcher.root, QueryOptions("baking bread", k=1, show_all=True))[0].path.name == "sourdough.txt"
    assert "Traceback" not in watcher.log.read_text()


def test_fifty_clients_at_once_are_all_answered_by_the_watcher(watcher):
    before = request(watcher.query_socket, {"op": "ping"})["served"]
    barrier = threading.Barrier(50)
    answers: list[list[Hit] | None] = [None] * 50

    def client(i: int) -> None:
        barrier.wait()  # all connect at the same moment
        answers[i] = ask_watcher(watcher.root, QueryOptions("baking bread at home", k=1, show_all=True))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(a is not None for a in answers) == 50  # None would mean "fell back to in-process search"
    assert all(a[0].path.name == "sourdough.txt" for a in answers)
    assert request(watcher.query_socket, {"op": "ping"})["served"] - before == 50


def test_fifty_connections_pending_before_any_is_accepted_are_all_answered(watcher):
    """The listen backlog holds a crowd that connects while the watcher is busy: none is refused."""
    line = dumps({"op": "ping", "schema": schema()})
    socks = []
    try:
        with socket_address(watcher.query_socket) as address:
            for _ in range(50):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(60)
                sock.connect(address)  # ECONNREFUSED / EAGAIN when the backlog overflows
                socks.append(sock)
        for sock in socks:
            sock.sendall(line)
        replies = [loads(sock.makefile("rb").readline()) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert [r["ok"] for r in replies] == [True] * 50


# -- the decoder alone -----------------------------------------------------------------------------------------


def test_only_the_wires_own_classes_are_built():
    options = QueryOptions("q", k=3)
    assert loads(dumps({"options": options}))["options"] == options
    with pytest.raises(ValueError):
        loads(b'{"$dataclass": "QueryOptions", "fields": {"text": "q", "k": "3"}}\n')  # a string where an int goes
    with pytest.raises(ValueError):
        loads(b'{"$dataclass": "QueryOptions", "fields": {"text": "q", "__class__": 1}}\n')
    with pytest.raises(ValueError):
        loads(b'{"$dataclass": "Hit", "fields": {"path": "/x"}}\n')  # fields missing, a str for a path
    with pytest.raises(ValueError):
        loads(b'{"$path": 3}\n')
    with pytest.raises(ValueError):
        loads(b'{"x": 1e400}\n')
    with pytest.raises(ValueError):
        loads(b'{"x": NaN}\n')
    with pytest.raises(ValueError):
        dumps({"x": float("inf")})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)
tags = st.sampled_from(["$path", "$tuple", "$dataclass", "$enum", "fields", "value", "QueryOptions", "Hit", "text"])


def tagged(children):
    return st.dictionaries(tags, children, max_size=3) | st.builds(
        lambda name, fields: {"$dataclass": name, "fields": fields},
        st.sampled_from(["QueryOptions", "Hit", "semsearch.hits:Hit", "os:system"]),
        st.dictionaries(st.sampled_from(["text", "k", "path", "start_line", "score", "exact", "depth"]), children),
    )


messages = st.recursive(json_values, lambda children: tagged(children) | st.lists(children, max_size=3), max_leaves=20)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_the_decoder_returns_a_message_or_a_value_error_for_any_json(value):
    line = json.dumps(value).encode() + b"\n"
    try:
        message = loads(line)
    except ValueError:
        return
    assert isinstance(message, dict)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=5000))
def test_the_decoder_survives_any_bytes_and_any_nesting(noise, depth):
    for line in (noise, b"[" * depth + noise, b'{"a":' * depth + noise + b"}" * depth):
        try:
            loads(line)
        except ValueError:
            pass


# -- bounded numbers at the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, env",
    [
        (["query", "bread", "-k", "99999999999999999999"], {}),
        (["query", "bread", "-k", "999999999"], {}),
        (["query", "bread"], {"SEMSEARCH_TOP_K": "99999999999999999999"}),
        (["similar", "x.md", "-k", "99999999999999999999"], {}),
        (["query", "bread", "--rerank-depth", "99999999999999999999"], {}),
        (["topics", "-n", "99999999999"], {}),
        (["topics", "--seed", "99999999999999999999"], {}),
        (["index", "--max-size", "1e400", "."], {}),
        (["index", "--max-size", "nan", "."], {}),
        (["index", "--chunk-size", "99999999999999999999", "."], {}),
    ],
)
def test_numbers_out_of_range_are_one_error_exit_2(semsearch_cmd, corpus, args, env):
    result = semsearch_cmd(*args, cwd=corpus, env=env)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_top_k_in_a_config_file_out_of_range_is_one_sentence(semsearch_cmd, corpus, isolated_config, cli):
    assert cli("index", corpus).exit_code == 0
    isolated_config.parent.mkdir(parents=True, exist_ok=True)
    isolated_config.write_text("top_k = 99999999999999999999\n")
    result = semsearch_cmd("query", "bread")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "from 1 to 10000" in result.stderr


def test_a_queries_file_with_an_infinite_id_is_refused_not_printed_as_invalid_json(
    semsearch_cmd, corpus, cli, tmp_path
):
    assert cli("index", corpus).exit_code == 0
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": 1e400, "text": "bread"}\n')
    result = semsearch_cmd("query", "--queries", queries)
    assert result.returncode == 2 and '"id"' in result.stderr and result.stdout == ""
    queries.write_text('{"id": 7.5, "text": "bread"}\n{"id": "b", "text": "guitar"}\n')
    result = semsearch_cmd("query", "--queries", queries, "-k", "1")
    assert result.returncode == 0
    assert [json.loads(line)["query_id"] for line in result.stdout.splitlines()] == [7.5, "b"]


@pytest.mark.parametrize("command", [["query", "bread"], ["status"], ["index", "."], ["remove", "."], ["dupes"]])
def test_an_index_folder_that_is_a_file_or_proc_is_one_sentence(semsearch_cmd, corpus, tmp_path, command):
    regular = tmp_path / "notes.txt"
    regular.write_text("not an index\n")
    result = semsearch_cmd(*command, "--index", regular, cwd=corpus, timeout=120)
    assert result.returncode == 2 and "is a file; point --index" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # /proc/self is a folder nobody can write: no waiting for a writer that does not exist (the timeout guards)
    result = semsearch_cmd(*command, "--index", "/proc/self", cwd=corpus, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
