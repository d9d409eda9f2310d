"""One module per subcommand; importing this package registers them all on ``semsearch.cli.app``."""

from . import check, index, query, remove, status, watch  # noqa: F401
