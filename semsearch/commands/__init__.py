"""One module per subcommand: parse its options, call one service function, render the result.

``semsearch.cli.app`` registers them. Importing this package loads nothing: ``query`` must stay importable
without Typer, for the light entry of a plain query.
"""

INDEX_HELP = "Index folder (default: $SEMSEARCH_HOME, else the user data folder)."
STORE_HELP = (
    "A PostgreSQL database to keep the index in (a shared index): postgresql://USER@HOST/DATABASE, with "
    "?index=NAME to pick one of several (default: $SEMSEARCH_STORE, else 'store' in a config file)."
)
