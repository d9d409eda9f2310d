"""`semsearch index`: crawl, chunk, embed and store, or bring the index up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from semsearch.commands.common import (
    Exclude,
    Follow,
    Include,
    IndexDir,
    MaxSize,
    command,
    crawl_options,
    root_name_option,
    use_root_name,
)
from semsearch.errors import ExitCode, UsageError
from semsearch.model.backends import BACKENDS
from semsearch.output.terminal import stderr_console, stdout_console


@command()
def index(
    paths: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Folders or files to index (default: the index's roots).", show_default=False),
    ] = None,
    index_dir: IndexDir = None,
    max_size: MaxSize = 10,
    follow: Follow = False,
    include: Include = None,
    exclude: Exclude = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be indexed and skipped; change nothing.")
    ] = False,
    model: Annotated[
        Optional[str],
        typer.Option("--model", help="Folder of a sentence-transformers model (default: all-MiniLM-L6-v2, packaged)."),
    ] = None,
    change_model: Annotated[
        bool, typer.Option("--change-model", help="Re-embed everything with --model, replacing the index's model.")
    ] = False,
    backend: Annotated[
        Optional[str],
        typer.Option(
            "--backend",
            help="Encoder for documents: onnx (default; same vectors as torch, no torch at query time), "
            "torch, or onnx-int8 (faster, slightly lower quality).",
            show_default=False,
        ),
    ] = None,
    chunk_size: Annotated[
        Optional[int],
        typer.Option(
            "--chunk-size",
            min=32,
            max=100_000,
            help="Most tokens in a chunk (default: the model's limit; below it only).",
            show_default=False,
        ),
    ] = None,
    dim: Annotated[
        Optional[int],
        typer.Option(
            "--dim",
            min=1,
            help="Keep the first N dimensions of each vector (Matryoshka-trained models only); pinned in the index.",
            show_default=False,
        ),
    ] = None,
    force_dim: Annotated[
        bool, typer.Option("--force-dim", help="Allow --dim for a model that does not declare Matryoshka training.")
    ] = False,
    query_prefix: Annotated[
        Optional[str],
        typer.Option(
            "--query-prefix",
            help="Text put before every query for the model, e.g. 'query: ' for e5 (default: the model's own prompt).",
        ),
    ] = None,
    document_prefix: Annotated[
        Optional[str],
        typer.Option(
            "--document-prefix",
            help="Text put before every chunk for the model, e.g. 'passage: ' for e5 (default: the model's own prompt).",
        ),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Rebuild the vector file from the stored vectors (no re-embedding).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, only the summary and warnings.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every skipped file and why.")] = False,
    root_name: Annotated[Optional[str], root_name_option("record these files")] = None,
):
    """Index folders and files, or bring the index up to date with them.

    Example:  semsearch index ~/notes ./docs --exclude '*.log'
    """
    from semsearch.config import resolve

    if backend is not None and backend not in BACKENDS:
        raise UsageError(f"Unknown --backend {backend!r}; choose one of: {', '.join(BACKENDS)}.")
    settings = resolve(
        {"index": index_dir, "model": model, "exclude": exclude, "chunk_size": chunk_size, "follow": follow or None}
    )
    crawl = crawl_options(settings, max_size, include)
    root = settings.index
    use_root_name(root_name)
    if dry_run:
        return _dry_run(root, paths or [], crawl)
    from semsearch.index.indexer import Indexer, IndexOptions
    from semsearch.output.progress import progress_for

    err = stderr_console()
    indexer = Indexer(root, progress_for(err, quiet))
    report = indexer.run(
        IndexOptions(
            paths=paths or [],
            model=None if settings.is_default("model") else settings.model,
            change_model=change_model,
            chunk_tokens=settings.chunk_size,
            dim=dim,
            force_dim=force_dim,
            query_prefix=query_prefix,
            document_prefix=document_prefix,
            rebuild=rebuild,
            backend=backend,
            crawl=crawl,
        )
    )
    from semsearch.output.hits import safe

    if report.rebuilt_vectors:
        err.print(f"semsearch: rebuilt the vector file from stored vectors ({report.rebuilt_vectors})", markup=False)
    shown = report.skipped if verbose else [s for s in report.skipped if not s[1].startswith("binary file type")]
    for path, reason in shown[:20]:
        err.print(f"skipped {safe(str(path))}: {reason}", markup=False, highlight=False, soft_wrap=True)
    if verbose:
        for path, warning in report.warnings:
            err.print(f"warning {safe(str(path))}: {warning}", markup=False, highlight=False, soft_wrap=True)
    if len(shown) > 20:
        err.print(f"... and {len(shown) - 20} more skipped (see semsearch index --dry-run)", markup=False)
    if report.interrupted:
        err.print(
            f"semsearch: interrupted; {report.added + report.updated} files and {report.chunks_embedded} chunks were kept. "
            "Run the same command again to finish.",
            markup=False,
        )
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    stdout_console().print(report.summary(), markup=False, highlight=False)


def _dry_run(index_root: Path, paths: list[Path], options) -> None:
    from semsearch.index.crawl import FoundFile
    from semsearch.index.indexer import plan
    from semsearch.output.hits import safe

    out = stdout_console()
    found = skipped = 0
    for item in plan(index_root, paths, options):
        if isinstance(item, FoundFile):
            found += 1
            out.print(f"index  {safe(str(item.path))}", markup=False, highlight=False, soft_wrap=True)
        else:
            skipped += 1
            out.print(f"skip   {safe(str(item.path))}  ({item.reason})", markup=False, highlight=False, soft_wrap=True)
    out.print(f"{found} files would be indexed, {skipped} skipped", markup=False)
