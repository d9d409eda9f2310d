"""The command line: parse arguments, call one service function, render its result."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import ExitCode, SemsearchError
from .paths import resolve_index_dir

app = typer.Typer(
    name="semsearch",
    help="Search your files by meaning, offline. Index a folder, then ask it questions.\n\n"
    "Example:  semsearch index ./docs && semsearch query \"how do I rotate the api keys\"",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

IndexDir = Annotated[
    Optional[Path],
    typer.Option(
        "--index",
        help="Index folder (default: $SEMSEARCH_HOME, else the user data folder).",
        show_default=False,
    ),
]


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _stdout():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def handle_errors(command):
    """Turn a user-facing error into one sentence on stderr and its exit status; Ctrl-C into 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SemsearchError as e:
            _stderr().print(f"semsearch: {e}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(int(e.exit_code)) from None
        except KeyboardInterrupt:
            _stderr().print("semsearch: interrupted", markup=False)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper


@app.command()
@handle_errors
def index(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Folders or files to index (default: the index's roots).", show_default=False)] = None,
    index_dir: IndexDir = None,
    max_size: Annotated[float, typer.Option("--max-size", help="Skip files larger than this many MB.")] = 10,
    include: Annotated[Optional[list[str]], typer.Option("--include", help="Only index files matching this glob (repeatable).")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="Skip files and folders matching this glob (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be indexed and skipped; change nothing.")] = False,
    model: Annotated[Optional[str], typer.Option("--model", help="Folder of a sentence-transformers model (default: all-MiniLM-L6-v2, packaged).")] = None,
    change_model: Annotated[bool, typer.Option("--change-model", help="Re-embed everything with --model, replacing the index's model.")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild the vector file from the stored vectors (no re-embedding).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, only the summary and warnings.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every skipped file and why.")] = False,
):
    """Index folders and files, or bring the index up to date with them.

    Example:  semsearch index ~/notes ./docs --exclude '*.log'
    """
    from .crawl import CrawlOptions

    crawl_options = CrawlOptions(max_bytes=int(max_size * 1024 * 1024), include=include or [], exclude=exclude or [])
    root = resolve_index_dir(index_dir)
    if dry_run:
        return _dry_run(root, paths or [], crawl_options)
    from .indexer import Indexer, IndexOptions

    err = _stderr()
    indexer = Indexer(root, _progress(err, quiet))
    report = indexer.run(
        IndexOptions(paths=paths or [], model=model, change_model=change_model, rebuild=rebuild, crawl=crawl_options)
    )
    from .render import safe

    if report.rebuilt_vectors:
        err.print(f"semsearch: rebuilt the vector file from stored vectors ({report.rebuilt_vectors})", markup=False)
    shown = report.skipped if verbose else [s for s in report.skipped if not s[1].startswith("unsupported")]
    for path, reason in shown[:20]:
        err.print(f"skipped {safe(str(path))}: {reason}", markup=False, highlight=False, soft_wrap=True)
    if len(shown) > 20:
        err.print(f"... and {len(shown) - 20} more skipped (see semsearch index --dry-run)", markup=False)
    if report.interrupted:
        err.print(
            f"semsearch: interrupted; {report.added + report.updated} files and {report.chunks_embedded} chunks were kept. "
            "Run the same command again to finish.",
            markup=False,
        )
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    _stdout().print(report.summary(), markup=False, highlight=False)


def _progress(console, quiet: bool):
    from .progress import PlainProgress, Progress, RichProgress

    if quiet:
        return Progress()
    return RichProgress(console) if console.is_terminal else PlainProgress()


def _dry_run(index_root: Path, paths: list[Path], options) -> None:
    from .crawl import FoundFile, crawl
    from .render import safe

    if not paths:
        from .store import Store
        from .paths import IndexPaths

        store = Store.open(IndexPaths(index_root))
        paths = store.roots()
        store.close()
    for p in paths:
        if not p.exists() and not p.is_symlink():
            from .errors import PathNotFound

            raise PathNotFound(f"No such file or folder: {p.absolute()}")
    options.report_skipped = True
    options.exclude_dirs = [index_root]
    out = _stdout()
    found = skipped = 0
    for item in crawl(paths, options):
        if isinstance(item, FoundFile):
            found += 1
            out.print(f"index  {safe(str(item.path))}", markup=False, highlight=False, soft_wrap=True)
        else:
            skipped += 1
            out.print(f"skip   {safe(str(item.path))}  ({item.reason})", markup=False, highlight=False, soft_wrap=True)
    out.print(f"{found} files would be indexed, {skipped} skipped (binary files are found when read)", markup=False)


@app.command()
@handle_errors
def query(
    text: Annotated[str, typer.Argument(help="What you are looking for, in your own words.", show_default=False)],
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many hits to show.")] = 10,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per hit (JSON Lines).")] = False,
    files_only: Annotated[bool, typer.Option("-l", "--files-only", help="Print each matching file once, best first.")] = False,
    path: Annotated[Optional[str], typer.Option("--path", help="Only hits whose path matches this glob, e.g. '*.md' or 'docs/*'.")] = None,
    min_score: Annotated[Optional[float], typer.Option("--min-score", help="Drop hits scoring below this (cosine, -1..1).")] = None,
    index_dir: IndexDir = None,
):
    """Search the index by meaning. Exit status: 0 with hits, 1 with none, 2 on error.

    Example:  semsearch query "how do I rotate the api keys" -k 5 --path '*.md'
    """
    from .search import QueryOptions, search

    hits = search(
        resolve_index_dir(index_dir),
        QueryOptions(text=text, k=k, path_glob=path, min_score=min_score, files_only=files_only),
    )
    from . import render

    if json_output:
        render.print_json_lines(
            sys.stdout,
            ({"path": render.hit_json(h)["path"], "abspath": render.hit_json(h)["abspath"], "score": round(h.score, 6)} for h in hits)
            if files_only
            else (render.hit_json(h) for h in hits),
        )
    elif files_only:
        render.print_files(_stdout(), hits)
    else:
        render.print_hits(_stdout(), hits, text)
    if not hits:
        raise typer.Exit(int(ExitCode.NO_MATCH))


@app.command()
@handle_errors
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print the status as one JSON object.")] = False,
    index_dir: IndexDir = None,
):
    """Show where the index is, its model, roots, counts, size and last update.

    Example:  semsearch status --json
    """
    from .status import index_status

    info = index_status(resolve_index_dir(index_dir))
    if json_output:
        from .render import print_json_lines

        print_json_lines(sys.stdout, [info.to_json()])
    else:
        from .render import print_status

        print_status(_stdout(), info)


@app.command()
@handle_errors
def remove(
    path: Annotated[Path, typer.Argument(help="A root, folder or file to take out of the index.", show_default=False)],
    index_dir: IndexDir = None,
):
    """Take a root, folder or file out of the index (files on disk are not touched).

    Example:  semsearch remove ~/old-notes
    """
    from .indexer import remove as remove_path

    report = remove_path(resolve_index_dir(index_dir), path)
    what = "root and its" if report.root_removed else ""
    _stdout().print(f"Removed {what} {report.files} files from the index.".replace("  ", " "), markup=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
