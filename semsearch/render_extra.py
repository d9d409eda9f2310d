"""Show what similar, dupes, topics and config find: text for people, JSON for programs."""

from __future__ import annotations

import json
import os

from rich.console import Console
from rich.text import Text

from .hits import display_path
from .render import hit_json, print_hits, print_json_lines, safe
from .render_formats import print_vimgrep
from .term import path_style


def _json(stream, obj) -> None:
    stream.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
    stream.flush()


# -- similar ---------------------------------------------------------------------------------------


def _source_json(result) -> dict:
    data = {"path": display_path(result.source), "abspath": os.fsdecode(result.source)}
    if result.source_lines:
        data["start_line"], data["end_line"] = result.source_lines
    return data


def _file_match_json(match) -> dict:
    return {"path": display_path(match.path), "abspath": os.fsdecode(match.path), "score": round(match.score, 6)}


def show_similar(console: Console, stream, fmt: str, result) -> None:
    if fmt == "json":
        _json(
            stream,
            {
                "source": _source_json(result),
                "files": [_file_match_json(m) for m in result.files],
                "passages": [hit_json(h) for h in result.passages],
            },
        )
    elif fmt == "jsonl":
        print_json_lines(
            stream,
            [{"kind": "file", **_file_match_json(m)} for m in result.files]
            + [{"kind": "passage", **hit_json(h)} for h in result.passages],
        )
    elif fmt == "files":
        for m in result.files:
            console.print(Text(safe(display_path(m.path)), style=path_style(console, m.path)), soft_wrap=True)
    elif fmt == "vimgrep":
        print_vimgrep(stream, result.passages, result.source_text)
    else:
        where = safe(display_path(result.source))
        if result.source_lines:
            where += f":{result.source_lines[0]}-{result.source_lines[1]}"
        console.print(Text(f"Files like {where}", style="bold"), soft_wrap=True)
        for m in result.files:
            row = Text(f"  {m.score:.3f}  ", style="dim")
            row.append(safe(display_path(m.path)), style=path_style(console, m.path))
            console.print(row, soft_wrap=True)
        if result.passages:
            console.print()
            console.print(Text(f"Passages like {where}", style="bold"), soft_wrap=True)
            print_hits(console, result.passages, result.source_text)


# -- dupes -----------------------------------------------------------------------------------------


def _place_json(place) -> dict:
    return {
        "path": display_path(place.path),
        "abspath": os.fsdecode(place.path),
        "start_line": place.start_line,
        "end_line": place.end_line,
        "page": place.page,
        "cell": place.cell,
    }


def _place_text(place) -> str:
    path = safe(display_path(place.path))
    if place.page is not None:
        path += f":p{place.page}"
    elif place.cell is not None:
        path += f":cell{place.cell}"
    span = f"{place.start_line}-{place.end_line}" if place.end_line != place.start_line else str(place.start_line)
    return f"{path}:{span}"


def dupes_json(report, limit: int | None) -> dict:
    return {
        "threshold": report.threshold,
        "passages_compared": report.passages_compared,
        "files": [
            {
                "a": display_path(p.a),
                "b": display_path(p.b),
                "a_abspath": os.fsdecode(p.a),
                "b_abspath": os.fsdecode(p.b),
                "score": round(p.score, 6),
                "a_matched": p.a_matched,
                "a_passages": p.a_total,
                "b_matched": p.b_matched,
                "b_passages": p.b_total,
            }
            for p in report.files
        ],
        "passage_pairs": len(report.passages),
        "passages": [
            {"score": round(p.score, 6), "a": _place_json(p.a), "b": _place_json(p.b)} for p in report.passages[:limit]
        ],
    }


def show_dupes(console: Console, stream, json_output: bool, report, limit: int | None) -> None:
    if json_output:
        _json(stream, dupes_json(report, limit))
        return
    if report.files:
        console.print(Text(f"Near-duplicate files ({len(report.files)}):", style="bold"))
        for p in report.files:
            row = Text(f"  {p.score:.3f}  ", style="dim")
            row.append(safe(display_path(p.a)), style=path_style(console, p.a))
            row.append("  ==  ")
            row.append(safe(display_path(p.b)), style=path_style(console, p.b))
            row.append(f"  ({p.a_matched}/{p.a_total} and {p.b_matched}/{p.b_total} passages)", style="dim")
            console.print(row, soft_wrap=True)
    in_files = {(p.a, p.b) for p in report.files} | {(p.b, p.a) for p in report.files}
    rest = [p for p in report.passages if (p.a.path, p.b.path) not in in_files]
    if report.files and len(rest) < len(report.passages):
        inside = len(report.passages) - len(rest)
        console.print(Text(f"  ({inside} passage pairs inside these files; --json lists them)", style="dim"))
    if rest:
        if report.files:
            console.print()
        console.print(Text(f"Near-duplicate passages ({len(rest)}):", style="bold"))
        for p in rest[:limit]:
            console.print(Text(f"  {p.score:.3f}  {_place_text(p.a)}  ~  {_place_text(p.b)}"), soft_wrap=True)
        if limit is not None and len(rest) > limit:
            console.print(Text(f"  ... and {len(rest) - limit} more (--limit)", style="dim"))
    if not report.files and not rest:
        console.print(
            f"No near-duplicates at or above {report.threshold} among {report.passages_compared} passages.",
            markup=False,
        )


# -- topics ----------------------------------------------------------------------------------------


def topics_json(report) -> dict:
    return {
        "k": report.k,
        "passages": report.passages,
        "topics": [
            {
                "topic": t.number,
                "passages": t.size,
                "terms": t.terms,
                "examples": [display_path(p) for p in t.examples],
                "files": [{"path": display_path(p), "abspath": os.fsdecode(p), "passages": n} for p, n in t.files],
            }
            for t in report.topics
        ],
    }


def show_topics(console: Console, stream, json_output: bool, report) -> None:
    if json_output:
        _json(stream, topics_json(report))
        return
    for i, t in enumerate(report.topics):
        if i:
            console.print()
        head = Text(f"{t.number:>3}. ", style="bold")
        head.append(safe(", ".join(t.terms) or "(no words)"), style="bold cyan")
        head.append(f"  {t.size} passages in {len(t.files)} files", style="dim")
        console.print(head, soft_wrap=True)
        for path in t.examples:
            row = Text("     ")
            row.append(safe(display_path(path)), style=path_style(console, path))
            console.print(row, soft_wrap=True)


# -- config ----------------------------------------------------------------------------------------


def print_settings(console: Console, settings) -> None:
    """Each setting, its value and where it came from; then the files that were read."""
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_column(style="dim")
    for name, value in settings.values.items():
        if name in settings.parts and settings.parts[name]:
            for i, part in enumerate(settings.parts[name]):
                table.add_row(name if i == 0 else "", safe(str(part.value)), safe(part.source))
            continue
        shown = "(the model's limit)" if value.value is None else str(value.value)
        if name == "store":
            from .storespec import mask

            shown = "(none: the index folder)" if value.value is None else mask(str(value.value))
        if isinstance(value.value, list):
            shown = ", ".join(value.value) or "(none)"
        table.add_row(name, safe(shown), safe(value.source))
    console.print(table)
    exists = "" if settings.user_file.is_file() else "  (not present)"
    console.print(
        f"user file     {safe(str(settings.user_file))}{exists}", markup=False, highlight=False, soft_wrap=True
    )
    project = safe(str(settings.project_file)) if settings.project_file else "(none found from here upward)"
    console.print(f"project file  {project}", markup=False, highlight=False, soft_wrap=True)
