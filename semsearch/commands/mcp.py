"""`semsearch mcp`: serve the index to AI assistants over the Model Context Protocol (stdio)."""

from __future__ import annotations

from ..cli import IndexDir, app, handle_errors


@app.command("mcp")
@handle_errors
def mcp_command(index_dir: IndexDir = None):
    """Run a Model Context Protocol server on stdin/stdout with the tools search, similar, read and status.

    An MCP client (Claude Desktop, Claude Code, an IDE) starts it; see the README for how to register it.

    Example:  claude mcp add semsearch -- semsearch mcp --index ~/.local/share/semsearch/index
    """
    from ..config import resolve
    from ..mcp_server import serve

    settings = resolve({"index": index_dir})
    serve(settings.index, settings.top_k)
