"""`semsearch remove`: take a root, folder or file out of the index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from semsearch.commands.common import IndexDir, command, use_root_name
from semsearch.config import resolve
from semsearch.output.terminal import stdout_console


@command()
def remove(
    path: Annotated[Path, typer.Argument(help="A root, folder or file to take out of the index.", show_default=False)],
    index_dir: IndexDir = None,
    root_name: Annotated[
        Optional[str],
        typer.Option(
            "--root-name",
            help="With a shared (--store) index: remove from the files recorded under this name (see "
            "semsearch index --root-name), not this machine's.",
            show_default=False,
        ),
    ] = None,
):
    """Take a root, folder or file out of the index (files on disk are not touched).

    Example:  semsearch remove ~/old-notes
    """
    from semsearch.index.indexer import remove as remove_path

    use_root_name(root_name)
    report = remove_path(resolve({"index": index_dir}).index, path)
    what = "root and its" if report.root_removed else ""
    stdout_console().print(f"Removed {what} {report.files} files from the index.".replace("  ", " "), markup=False)
