"""Kill -9 `semsearch index` at many seeded random moments and count how often the index ended inconsistent.

Usage:  python benchmarks/crash_trials.py [--trials 100] [--seed 1] [--per-sequence 10] [--keep DIR]

Trials run in sequences on fresh indexes (see tests/crashkit.py): within a sequence the corpus changes
before every run, each run is SIGKILLed at a random moment of its real work, and the index is checked
(semsearch check, status, a query) after each kill. Each sequence ends with one uninterrupted run whose
result is compared with a clean build of the same corpus. Prints one line per trial and a summary;
exits 1 when any trial or final comparison found a problem.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import crashkit  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="how many runs to kill in all (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill moments (default 1)")
    parser.add_argument("--per-sequence", type=int, default=crashkit.DEFAULT_TRIALS, help="kills per index")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="semsearch-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"clean build of the final corpus in {work / 'clean'} ...", flush=True)
    clean = crashkit.clean_build(work / "clean", args.per_sequence)
    print(f"clean build: {len(clean.content)} chunks ({time.monotonic() - started:.0f}s)", flush=True)

    trials: list[crashkit.Trial] = []
    finals: list[list[str]] = []
    sequence = 0
    while len(trials) < args.trials:
        n = min(args.per_sequence, args.trials - len(trials))
        sequence += 1
        print(f"sequence {sequence}: {n} trials on a fresh index", flush=True)
        result = crashkit.run_sequence(
            args.seed * 1000 + sequence,
            work / f"sequence-{sequence:03d}",
            clean if n == args.per_sequence else crashkit.clean_build(work / f"clean-{n}", n),
            n,
            log=lambda line: print("  " + line, flush=True),
        )
        for t in result.trials:
            t.number = len(trials) + 1
            trials.append(t)
        finals.append(result.final_problems)
        verdict = "same as the clean build" if not result.final_problems else "; ".join(result.final_problems)
        print(f"  finished run: {verdict}", flush=True)

    inconsistent = sum(1 for t in trials if t.problems)
    killed = sum(1 for t in trials if t.killed)
    phases = collections.Counter(t.phase for t in trials)
    triggers = collections.Counter(t.trigger for t in trials)
    bad_finals = sum(1 for f in finals if f)
    print()
    print(f"{len(trials)} trials in {sequence} sequences, seed {args.seed}, {time.monotonic() - started:.0f}s")
    print(f"killed mid-run: {killed}; finished before the kill: {len(trials) - killed}")
    print("kill counted from: " + ", ".join(f"{k} {v}" for k, v in sorted(triggers.items())))
    print("index found after the kill: " + ", ".join(f"{k} {v}" for k, v in sorted(phases.items())))
    print(f"inconsistent after a kill: {inconsistent}")
    print(f"finished runs differing from the clean build: {bad_finals} of {len(finals)}")
    return 1 if inconsistent or bad_finals else 0


if __name__ == "__main__":
    sys.exit(main())
