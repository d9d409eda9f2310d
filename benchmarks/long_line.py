"""Index one pathological file (a single line without spaces, as a minified bundle or a base64 blob) through the
installed ``semsearch index`` and print its time, peak memory, chunks and the longest stored chunk, per size.

    python benchmarks/long_line.py                 # 1, 3 and 9 MB
    python benchmarks/long_line.py --sizes 9 50    # (50 MB needs --max-size 60, passed on by the script)

Time and memory should grow in proportion to the size (issue 16: 9 MB took 17 s and 900 MB, one 9.4 MB chunk).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(size_mb: float, work: Path) -> None:
    docs = work / f"docs-{size_mb:g}"
    docs.mkdir(parents=True, exist_ok=True)
    random.seed(size_mb)
    alphabet = string.ascii_letters + string.digits
    (docs / "blob.txt").write_text("".join(random.choices(alphabet, k=int(size_mb * 1024 * 1024))) + "\n")
    index = work / f"index-{size_mb:g}"
    code = (
        "import resource, sys\n"
        "from semsearch.cli import main\n"
        f"sys.argv = ['semsearch', 'index', {str(docs)!r}, '--index', {str(index)!r}, '-q', '--max-size', "
        f"'{size_mb * 1.2 + 1:g}']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('peak_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    peak_mb = int(result.stderr.rsplit("peak_kb", 1)[1].split()[0]) / 1024
    import sqlite3

    conn = sqlite3.connect(f"file:{index / 'index.sqlite3'}?mode=ro", uri=True)
    chunks, longest = conn.execute("SELECT COUNT(*), MAX(LENGTH(text)) FROM chunks").fetchone()
    print(f"{size_mb:6g} MB  {seconds:7.1f} s  peak {peak_mb:7.0f} MB  {chunks:6d} chunks  longest {longest} chars")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 3, 9])
    args = parser.parse_args()
    print(f"peak memory of the interpreter alone: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    with tempfile.TemporaryDirectory(prefix="semsearch-long-line-") as tmp:
        for size in args.sizes:
            run(size, Path(tmp))


if __name__ == "__main__":
    main()
