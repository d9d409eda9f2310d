"""`semsearch topics`: group the index into K topics, each named by its words and example files."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from semsearch.commands.common import IndexDir, command
from semsearch.output.terminal import stdout_console


@command()
def topics(
    n: Annotated[int, typer.Option("-n", "--topics", min=2, max=1000, help="How many topics (clusters) to make.")] = 8,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, max=2**32 - 1, help="Seed of the clustering; the same seed gives the same topics."
        ),
    ] = 1234,
    json_output: Annotated[bool, typer.Option("--json", help="Print the topics as one JSON object.")] = False,
    index_dir: IndexDir = None,
):
    """Group the index's passages into N topics (k-means over their vectors), each labelled by its
    characteristic words and example files. No model is loaded.

    Example:  semsearch topics -n 5
    """
    from semsearch.analysis.topics import find_topics
    from semsearch.config import resolve
    from semsearch.output.reports import show_topics

    report = find_topics(resolve({"index": index_dir}).index, n, seed)
    show_topics(stdout_console(), sys.stdout, json_output, report)
