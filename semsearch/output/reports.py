"""Reports for people and programs: status, check, similar, dupes, topics and config, as text or JSON."""

from __future__ import annotations

import json
import os
import time

from rich.console import Console
from rich.text import Text

from semsearch.output.formats import print_vimgrep
from semsearch.output.hits import hit_json, print_hits, print_json_lines, safe
from semsearch.output.terminal import path_style
from semsearch.search.hits import display_path


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
        unset = {"min_score": "(the calibrated cut-off)"}.get(name, "(the model's limit)")
        shown = unset if value.value is None else str(value.value)
        if name == "store":
            from semsearch.storespec import mask

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


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def human_time(ts: float | None) -> str:
    if not ts:
        return "never"
    ago = time.time() - ts
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    for unit, seconds in (("d", 86400), ("h", 3600), ("min", 60)):
        if ago >= seconds:
            return f"{when} ({int(ago // seconds)} {unit} ago)"
    return f"{when} ({int(ago)} s ago)"


def print_status(console: Console, status) -> None:
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("index", safe(status.index_dir))
    table.add_row("model", f"{status.model} ({status.dim} dimensions)")
    table.add_row("roots", "\n".join(safe(r) for r in status.roots) or "none")
    skipped = f" ({status.files_skipped} skipped: unreadable or unsupported)" if status.files_skipped else ""
    table.add_row("files", f"{status.files}{skipped}")
    table.add_row("chunks", str(status.chunks))
    table.add_row("size", human_size(status.size_bytes))
    table.add_row("updated", human_time(status.updated_at))
    table.add_row("search", status.search)
    if not status.vectors_current and not status.watcher.get("running"):  # a watcher saves them every minute
        table.add_row("vectors", "behind the database (an interrupted run); the next index or query catches up")
    table.add_row("watcher", watcher_line(status.watcher))
    console.print(table)


def watcher_line(info: dict) -> str:
    """``running (pid 4242, up 2 h 5 min), last sync 12:03:04 (5 s ago)``, or ``not running``."""
    if not info.get("running"):
        return "not running (start one with: semsearch watch --background)"
    if "pid" not in info:
        return "starting"
    up = int(info.get("uptime_seconds") or 0)
    uptime = f"{up // 3600} h {up % 3600 // 60} min" if up >= 3600 else f"{up // 60} min {up % 60} s"
    text = f"running (pid {info['pid']}, up {uptime}), last sync {human_time(info.get('last_sync'))}"
    if info.get("phase") != "watching":
        text += f"; {info.get('phase')}"
    if info.get("indexing"):
        text += f"; indexing {info.get('indexed', 0)}/{info['indexing']} files"
    if info.get("pending"):
        text += f"; {info['pending']} changes pending"
    if info.get("serving"):
        text += "; answering queries"
    return text


def print_check(console: Console, report) -> None:
    """The result of ``semsearch check``: counts, then each problem and note as a sentence."""
    saved = "none" if report.saved_generation is None else str(report.saved_generation)
    console.print(f"index       {safe(report.index_dir)}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"generation  {report.generation} (vector file: {saved})", markup=False, highlight=False)
    console.print(
        f"counts      {report.files} files, {report.chunks} chunks, {report.vectors} vectors, "
        f"{report.embeddings} stored embeddings",
        markup=False,
        highlight=False,
    )
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    for problem in report.problems:
        console.print(f"problem: {problem}", markup=False, highlight=False, soft_wrap=True)
    if report.consistent:
        console.print("OK: the index is consistent.", markup=False, highlight=False)
    else:
        n = len(report.problems)
        console.print(f"The index has {n} problem{'s' if n != 1 else ''}.", markup=False, highlight=False)
