"""The MCP server's `read` as an agent fed a hostile folder meets it, through the official MCP client over stdio:
it reads only what was indexed, never follows a link out of the indexed folders, never blocks on a FIFO or reads a
device, and one call never holds up the others."""

from __future__ import annotations

import os

import anyio
import pytest

SECRET = "-----BEGIN OPENSSH PRIVATE KEY----- do-not-leak-0xC0FFEE"


async def _concurrent_session(index_dir, cwd, errlog, calls):
    """Run every call at the same time in one session; their results by name."""
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client
    from test_mcp import server_params

    params = server_params(index_dir, cwd)
    results = {}
    with anyio.fail_after(240):
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()

                async def call(name, tool, arguments):
                    results[name] = await session.call_tool(tool, arguments)

                async with anyio.create_task_group() as tg:
                    for name, (tool, arguments) in calls.items():
                        tg.start_soon(call, name, tool, arguments)
    return results


def text_of(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


@pytest.fixture
def hostile(cli, corpus, tmp_path):
    """An index of the corpus plus five files that are then swapped for a link out, a link to an unindexed file
    inside, a FIFO, a link to /dev/zero, and a folder swapped for a link to a folder outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_ed25519").write_text(SECRET + "\n")
    (outside / "sub").mkdir()
    (outside / "sub" / "note.md").write_text(SECRET + "\n")
    names = ["victim.md", "inner.md", "fifo.md", "zero.md"]
    for name in names:
        (corpus / name).write_text(f"# {name}\n\nAn ordinary note about {name} and the weather.\n")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "note.md").write_text("# sub note\n\nA note in a folder.\n")
    (corpus / ".env").write_text(SECRET + "\n")  # hidden: never indexed
    folder = tmp_path / "index"
    assert cli("index", corpus, "--index", folder).exit_code == 0
    (corpus / "victim.md").unlink()
    (corpus / "victim.md").symlink_to(outside / "id_ed25519")
    (corpus / "inner.md").unlink()
    (corpus / "inner.md").symlink_to(corpus / ".env")
    (corpus / "fifo.md").unlink()
    os.mkfifo(corpus / "fifo.md")
    (corpus / "zero.md").unlink()
    (corpus / "zero.md").symlink_to("/dev/zero")
    (corpus / "sub" / "note.md").unlink()
    (corpus / "sub").rmdir()
    (corpus / "sub").symlink_to(outside / "sub")
    return folder


def test_read_refuses_whatever_was_swapped_in_since_indexing_and_blocks_nobody(hostile, corpus, tmp_path):
    guitar = str(corpus / "music" / "guitar.txt")
    calls = {
        "victim": ("read", {"path": str(corpus / "victim.md"), "start_line": 1}),
        "inner": ("read", {"path": str(corpus / "inner.md"), "start_line": 1}),
        "fifo": ("read", {"path": str(corpus / "fifo.md"), "start_line": 1}),
        "zero": ("read", {"path": str(corpus / "zero.md"), "start_line": 1}),
        "folder": ("read", {"path": str(corpus / "sub" / "note.md"), "start_line": 1}),
        "status": ("status", {}),  # asked while the others run: answered all the same
        "fine": ("read", {"path": guitar, "start_line": 1, "context": 0}),
        "big_k": ("similar", {"target": guitar, "k": 10**12}),
    }
    with open(tmp_path / "server-stderr.txt", "w") as errlog:
        results = anyio.run(_concurrent_session, hostile, corpus, errlog, calls)
    for name in ("victim", "inner", "fifo", "zero", "folder"):
        assert results[name].is_error, name
        assert SECRET not in text_of(results[name]), name
    assert "outside the indexed folders" in text_of(results["victim"])
    assert "replaced by a link" in text_of(results["inner"])
    assert "not a regular file" in text_of(results["fifo"]) or "regular file" in text_of(results["fifo"])
    assert "outside the indexed folders" in text_of(results["folder"])
    assert not results["status"].is_error and results["status"].structured_content["files"] == 11
    assert not results["fine"].is_error and results["fine"].structured_content["text"] == "Practising guitar"
    assert results["big_k"].is_error and "from 1 to" in text_of(results["big_k"])
    assert "Traceback" not in (tmp_path / "server-stderr.txt").read_text()


def test_read_returns_a_long_line_cut_to_a_bounded_size(cli, corpus, tmp_path):
    (corpus / "minified.txt").write_text("x" * 300_000 + "\n")
    folder = tmp_path / "index"
    assert cli("index", corpus, "--index", folder).exit_code == 0
    calls = {"read": ("read", {"path": str(corpus / "minified.txt"), "start_line": 1})}
    with open(tmp_path / "server-stderr.txt", "w") as errlog:
        results = anyio.run(_concurrent_session, folder, corpus, errlog, calls)
    text = results["read"].structured_content["text"]
    assert text.startswith("xxxx") and len(text) < 5000
