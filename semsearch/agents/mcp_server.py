"""A Model Context Protocol server over stdio: search, similar passages, a hit's surrounding text and index status as tools.

Built on the official ``mcp`` SDK (imported only when the server starts). One server serves one index;
the query model is loaded on the first search and kept for the life of the process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

INSTRUCTIONS = (
    "semsearch searches the user's own indexed files by meaning, offline. Use `search` with a question or "
    "description in plain words; each hit gives a path, a line range and the passage. Use `read` to see more "
    "of a file around a hit, `similar` to find passages and files like one file or one passage, and `status` "
    "to see which folders the index covers."
)


TOOL_TIMEOUT = 300.0  # seconds: the longest one tool call may take (the first search loads the model)
READ_TIMEOUT = 30.0  # seconds: reading and extracting one indexed file


def build_server(index_dir: Path, default_k: int = 10, default_min_score: float | None = None):
    """The MCP server for the index at ``index_dir`` (tools run one at a time; the model loads once)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from semsearch.config import MAX_TOP_K
    from semsearch.errors import SemsearchError
    from semsearch.output import hits as render
    from semsearch.search.hits import display_path

    server = MCPServer(name="semsearch", instructions=INSTRUCTIONS, log_level="WARNING")
    # Tools run on worker threads, each with its own store connection. Only searches share something (the query
    # model, loaded once): they take turns, and nothing else waits for them.
    model_lock = threading.Lock()

    def run(call, *args, lock: threading.Lock | None = None, timeout: float = TOOL_TIMEOUT, **kwargs):
        """``call``'s result, a SemsearchError as the tool's error, and never longer than TOOL_TIMEOUT: a call
        that overruns is left to finish on its own thread while the tool answers with an error."""
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                if lock is None:
                    outcome["value"] = call(*args, **kwargs)
                else:
                    with lock:
                        outcome["value"] = call(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 - handed to the waiting tool call
                outcome["error"] = e

        worker = threading.Thread(target=work, name="semsearch-mcp-call", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise ToolError(f"This call took more than {timeout:g} seconds and was abandoned; try a narrower one.")
        if "error" in outcome:
            if isinstance(outcome["error"], SemsearchError):
                raise ToolError(str(outcome["error"])) from None
            raise outcome["error"]
        return outcome["value"]

    @server.tool(
        description="Search the indexed files by meaning. Returns the best passages with path, line range, "
        "heading, score and text (or one entry per file with files_only). score is the passage's relevance, 0 to 1 "
        "(the estimated chance that it is relevant); passages unlikely to be relevant are left out, and when none "
        "is left, hits is empty and note says so. all: return the best k whatever their score. path: a glob such "
        "as '*.md' or 'docs/*'; min_score: return only hits with at least this relevance (0..1) instead of the "
        "default cut-off; mode: hybrid (meaning and keywords, the default), semantic or keyword; explain: add each "
        "hit's dense and keyword rank and score."
    )
    def search(
        query: str,
        k: int = default_k,
        path: str | None = None,
        min_score: float | None = None,
        files_only: bool = False,
        mode: str = "hybrid",
        explain: bool = False,
        all: bool = False,  # noqa: A002 (the name of the command line's --all)
    ) -> dict[str, Any]:
        from semsearch.search.engine import search as run_search
        from semsearch.search.hits import QueryOptions

        if not 1 <= k <= MAX_TOP_K:
            raise ToolError(f"k must be from 1 to {MAX_TOP_K}.")
        if min_score is None:
            min_score = default_min_score  # the min_score setting (None: the calibrated cut-off)
        try:
            options = QueryOptions(
                text=query, k=k, path_glob=path, min_score=min_score, files_only=files_only, mode=mode, show_all=all
            )
        except SemsearchError as e:
            raise ToolError(str(e)) from None
        hits = run(run_search, index_dir, options, lock=model_lock)
        result: dict[str, Any] = {"hits": [render.hit_json(h, files_only=files_only, explain=explain) for h in hits]}
        if not hits and not all:
            result["note"] = (
                "No passage matches this query well. Call search again with all=true to see the closest "
                "passages anyway (with low scores), or rephrase the query."
            )
        return result

    @server.tool(
        description="Find the passages and files most similar to an indexed file, or to the passage at one of its "
        "lines ('path:LINE', or any location a search hit gives). The file itself is left out."
    )
    def similar(target: str, k: int = default_k) -> dict[str, Any]:
        from semsearch.analysis.similar import similar as run_similar

        if not 1 <= k <= MAX_TOP_K:
            raise ToolError(f"k must be from 1 to {MAX_TOP_K}.")
        result = run(run_similar, index_dir, target, k)
        return {
            "source": {"abspath": os.fsdecode(result.source), "lines": list(result.source_lines or [])},
            "files": [
                {"path": display_path(m.path), "abspath": os.fsdecode(m.path), "score": round(m.score, 6)}
                for m in result.files
            ],
            "passages": [render.hit_json(h) for h in result.passages],
        }

    @server.tool(
        description="Read the text around a hit: lines start_line-context to end_line+context of an indexed file "
        "(give page for PDF hits and cell for notebook hits). Only indexed files can be read."
    )
    def read(
        path: str,
        start_line: int,
        end_line: int | None = None,
        context: int = 10,
        page: int | None = None,
        cell: int | None = None,
    ) -> dict[str, Any]:
        from semsearch.analysis.context import read_context

        passage = run(read_context, index_dir, path, start_line, end_line, context, page, cell, timeout=READ_TIMEOUT)
        return {
            "abspath": os.fsdecode(passage.path),
            "start_line": passage.start_line,
            "end_line": passage.end_line,
            "page": passage.page,
            "cell": passage.cell,
            "text": passage.text,
        }

    @server.tool(
        description="Describe the index: its folder, model, roots (the folders it covers), counts and freshness."
    )
    def status() -> dict[str, Any]:
        from semsearch.analysis.status import index_status

        return run(index_status, index_dir).to_json()

    return server


def serve(index_dir: Path, default_k: int = 10, default_min_score: float | None = None) -> None:
    """Answer MCP requests on stdin/stdout until the client closes the connection."""
    build_server(index_dir, default_k, default_min_score).run("stdio")
