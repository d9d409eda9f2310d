"""One module per subcommand: parse its options, call one service function, render the result.

``semsearch.cli.app`` registers them. Importing this package loads nothing: ``query`` must stay importable
without Typer, for the light entry of a plain query.
"""

INDEX_HELP = "Index folder (default: $SEMSEARCH_HOME, else the user data folder)."
