"""Read the queries of `semsearch query --queries FILE`: one per line, or JSON Lines with ``id`` and ``text``."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from semsearch.errors import UsageError


@dataclass(frozen=True)
class BatchQuery:
    id: str | int | float | None  # the JSON line's ``id`` as given, else the 1-based line number
    text: str


_INF = float("inf")


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def read_queries(source: str) -> list[BatchQuery]:
    """``source`` is a file path or ``-`` for standard input. A file whose first non-blank line is a JSON
    object is JSON Lines (``{"id": ..., "text": ...}`` each); otherwise every non-blank line is one query."""
    if source == "-":
        content = sys.stdin.read()
        name = "standard input"
    else:
        path = Path(source).expanduser()
        try:
            content = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"No such queries file: {path}; give a file with one query per line, or -.") from None
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"Cannot read the queries file {path} ({e}); it must be UTF-8 text.") from None
        name = str(path)
    lines = content.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    queries: list[BatchQuery] = []
    if first.startswith("{"):
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line, parse_constant=_no_constant)
            except ValueError:
                raise UsageError(
                    f"Line {number} of {name} is not JSON; in a JSON Lines queries file every line is "
                    '{"id": ..., "text": ...}.'
                ) from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
                raise UsageError(
                    f'Line {number} of {name} has no "text"; give each query as {{"id": ..., "text": ...}}.'
                )
            qid = row.get("id", number)
            if (
                isinstance(qid, bool)
                or not isinstance(qid, str | int | float | None)
                or qid != qid
                or qid in (_INF, -_INF)
            ):
                raise UsageError(
                    f'Line {number} of {name} has an "id" that is not a string or a finite number; '
                    'give ids such as "q1" or 17.'
                )
            queries.append(BatchQuery(qid, row["text"]))
    else:
        queries = [BatchQuery(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    if not queries:
        raise UsageError(f"{name} holds no queries; write one query per line.")
    return queries
