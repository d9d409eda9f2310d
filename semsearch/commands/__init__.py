"""One module per subcommand; importing this package registers them all on ``semsearch.cli.app``."""

from . import check, config, dupes, index, mcp, query, remove, similar, status, topics, watch  # noqa: F401
