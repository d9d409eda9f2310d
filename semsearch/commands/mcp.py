"""`semsearch mcp`: serve the index to AI assistants over the Model Context Protocol (stdio)."""

from __future__ import annotations

from semsearch.commands.common import IndexDir, command


@command("mcp")
def mcp_command(index_dir: IndexDir = None):
    """Run a Model Context Protocol server on stdin/stdout with the tools search, similar, read and status.

    An MCP client (Claude Desktop, Claude Code, an IDE) starts it; see the README for how to register it.

    Example:  claude mcp add semsearch -- semsearch mcp --index ~/.local/share/semsearch/index
    """
    from semsearch.agents.mcp_server import serve
    from semsearch.config import resolve

    settings = resolve({"index": index_dir})
    serve(settings.index, settings.top_k, settings.min_score)
