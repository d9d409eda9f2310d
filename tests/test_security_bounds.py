"""Bounded work per file and per hit: one pathological line (megabytes without a space) becomes many small chunks,
in memory that does not grow with the file, and no hit prints more than a bounded text."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import string
import subprocess
import sys
from pathlib import Path

from conftest import REPO

from semsearch.index.chunk import CHARS_PER_TOKEN
from semsearch.search.hits import MAX_HIT_CHARS


def index_peak_mb(docs: Path, index: Path) -> float:
    """Index ``docs`` in a fresh interpreter and return its peak resident memory (MB)."""
    code = (
        "import resource, sys\n"
        "from semsearch.cli import main\n"
        f"sys.argv = ['semsearch', 'index', {str(docs)!r}, '--index', {str(index)!r}, '-q']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('peak_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    return int(result.stderr.rsplit("peak_kb", 1)[1].split()[0]) / 1024


def test_a_long_line_without_spaces_indexes_in_bounded_chunks_and_memory(tmp_path, semsearch_cmd):
    small = tmp_path / "small"
    small.mkdir()
    (small / "note.txt").write_text("A short note about the harbour at dawn.\n")
    baseline = index_peak_mb(small, tmp_path / "index-small")

    big = tmp_path / "big"
    big.mkdir()
    random.seed(16)
    size = 4 * 1024 * 1024
    blob = "".join(random.choices(string.ascii_letters + string.digits, k=size))
    (big / "blob.txt").write_text("find-me-here " + blob + "\n")
    index = tmp_path / "index-big"
    peak = index_peak_mb(big, index)
    # before: the whole line was one chunk, and tokenizing it took about 100 MB per MB of text
    assert peak - baseline < 150, (peak, baseline)

    conn = sqlite3.connect(f"file:{index / 'index.sqlite3'}?mode=ro", uri=True)
    count, longest, total = conn.execute("SELECT COUNT(*), MAX(LENGTH(text)), SUM(LENGTH(text)) FROM chunks").fetchone()
    conn.close()
    assert longest <= CHARS_PER_TOKEN * 256 and count >= size // (CHARS_PER_TOKEN * 256)
    assert total >= size  # nothing of the line was lost: the pieces join up again
    result = semsearch_cmd("query", "find-me-here", "--mode", "keyword", "--json", "-k", "3", "--index", index)
    assert result.returncode == 0, result.stderr
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert hits and all(len(h["text"]) <= MAX_HIT_CHARS for h in hits)
    assert hits[0]["text"].startswith("find-me-here") and hits[0]["start_line"] == hits[0]["end_line"] == 1
    assert len(result.stdout) < 3 * (MAX_HIT_CHARS + 1000)
