"""`semsearch mcp` answers the official MCP SDK's own client through a real stdio session against a real index."""

from __future__ import annotations

import json
import os
import sys

import anyio
from conftest import REPO


def server_params(index_dir, cwd):
    """How the tests start `semsearch mcp`: this checkout, offline, with the test's config and cut-off."""
    from mcp import StdioServerParameters

    env = {
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "SEMSEARCH_CONFIG": os.environ["SEMSEARCH_CONFIG"],
        **({"SEMSEARCH_MIN_SCORE": os.environ["SEMSEARCH_MIN_SCORE"]} if "SEMSEARCH_MIN_SCORE" in os.environ else {}),
    }
    return StdioServerParameters(
        command=sys.executable, args=["-m", "semsearch", "mcp", "--index", str(index_dir)], env=env, cwd=str(cwd)
    )


async def _session(index_dir, cwd, errlog, calls):
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    params = server_params(index_dir, cwd)
    results = {}
    with anyio.fail_after(240):
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                results["init"] = await session.initialize()
                results["tools"] = await session.list_tools()
                for name, (tool, arguments) in calls.items():
                    results[name] = await session.call_tool(tool, arguments)
    return results


def test_mcp_tools_answer_through_a_stdio_session(index_dir, corpus, tmp_path):
    guitar = str(corpus / "music" / "guitar.txt")
    calls = {
        "search": ("search", {"query": "baking a loaf of bread at home", "k": 2}),
        "files": ("search", {"query": "trip abroad", "k": 1, "files_only": True}),
        "filtered": ("search", {"query": "anything", "k": 5, "path": "*.py"}),
        "keyword": ("search", {"query": "metronome", "k": 1, "mode": "keyword", "explain": True}),
        "bad_mode": ("search", {"query": "x", "mode": "fuzzy"}),
        "similar": ("similar", {"target": guitar, "k": 3}),
        "read": ("read", {"path": guitar, "start_line": 3, "context": 0}),
        "status": ("status", {}),
        "outside": ("read", {"path": str(REPO / "pyproject.toml"), "start_line": 1}),
        "missing": ("similar", {"target": str(tmp_path / "nope.md")}),
    }
    with open(tmp_path / "server-stderr.txt", "w") as errlog:
        results = anyio.run(_session, index_dir, corpus, errlog, calls)
    assert results["init"].server_info.name == "semsearch"
    assert {t.name for t in results["tools"].tools} == {"search", "similar", "read", "status"}
    search_schema = next(t for t in results["tools"].tools if t.name == "search").input_schema
    assert {"query", "k", "path", "min_score", "files_only", "mode", "explain"} <= set(search_schema["properties"])

    hits = results["search"].structured_content["hits"]
    assert not results["search"].is_error and len(hits) == 2
    assert hits[0]["abspath"] == str(corpus / "kitchen" / "sourdough.txt") and "starter" in hits[0]["text"]
    assert json.loads(results["search"].content[0].text)["hits"] == hits  # text content for clients without structure
    assert results["files"].structured_content["hits"][0]["abspath"].endswith("travel/checklist.rst")
    assert [h["abspath"][-8:] for h in results["filtered"].structured_content["hits"]] == ["retry.py"]

    (keyword_hit,) = results["keyword"].structured_content["hits"]
    assert keyword_hit["abspath"].endswith("music/guitar.txt")
    assert keyword_hit["explain"]["mode"] == "keyword" and keyword_hit["explain"]["keyword_rank"] == 1
    assert results["bad_mode"].is_error and "fuzzy" in results["bad_mode"].content[0].text

    similar = results["similar"].structured_content
    assert similar["files"] and all(f["abspath"] != guitar for f in similar["files"] + similar["passages"])

    read = results["read"].structured_content
    assert read["start_line"] == 3 and read["text"] == (corpus / "music" / "guitar.txt").read_text().split("\n")[2]

    status = results["status"].structured_content
    assert status["files"] == 6 and status["roots"] == [str(corpus)] and status["index_dir"] == str(index_dir)

    # mistakes come back as tool errors with the one plain sentence, and the session goes on
    assert results["outside"].is_error and "only indexed files can be read" in results["outside"].content[0].text
    assert results["missing"].is_error and "is not in the index" in results["missing"].content[0].text
    assert "Traceback" not in (tmp_path / "server-stderr.txt").read_text()


def test_mcp_help_has_an_example(semsearch_cmd):
    result = semsearch_cmd("mcp", "--help")
    assert result.returncode == 0 and "Example:" in result.stdout and "semsearch mcp" in result.stdout
