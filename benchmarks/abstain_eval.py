"""Does semsearch say "no match" when nothing matches, and only then? And do its scores mean what they say?

Over the collections of ``../shared/eval`` (SciFact, sampled, see calibration_data.py; NPL; MED; CACM; the 19 code
repositories), each indexed once into the cache, every query runs through ``semsearch.search`` as
``semsearch query`` runs it, with the default cut-off and with ``--all``:

(a) foreign queries: each collection's queries against every other's index, where no passage is relevant: the share
    answered with no hits (the goal is at least 90%); with --cutoff-alone, also by the hits' cut-off alone (without
    the gate). Only queries the fit did not see run (every second one; --foreign-every 4: every fourth).
(b) in-domain: nDCG@10 with the default cut-off and with ``--all`` on every collection (documents ranked by their best
    passage, as ``-l``, for prose; semble's chunk protocol for code), and the share of queries answered "no match".
(c) reliability: the hits of in-domain queries (``--all``, first 10) in bins of their score, against the share
    judged relevant.
(d) passages and files: how often the hits a query shows by default repeat a file, and how many lines the text
    output takes with the passages of one file grouped under it (the default) and one hit after another.

    python benchmarks/abstain_eval.py --cache /work/cache-calib
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration_data import GROUPS, CodeCollection, Searcher, collections, default_cache  # noqa: E402


def ndcg_docs(labels: list[int], n_relevant: int) -> float:
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(labels[:10]))
    idcg = sum(1 / math.log2(i + 2) for i in range(min(10, n_relevant)))
    return dcg / idcg if idcg else 0.0


def ndcg_code(coll: CodeCollection, hits, q) -> float:
    seen, gains = set(), []
    for h in hits[:10]:
        new = set(coll.matches(h, q)) - seen
        seen |= new
        gains.append(1.0 if new else 0.0)
    return ndcg_docs(gains, len(q.judged))


def text_lines(hits, query: str, group: bool) -> int:
    """How many lines ``semsearch query`` prints for these hits (text output, no colour)."""
    import io

    from semsearch.output.hits import print_hits
    from semsearch.output.terminal import PlainConsole

    out = io.StringIO()
    print_hits(PlainConsole(out), hits, query, group=group)
    return out.getvalue().count("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=default_cache(), help="the indexes (calibration_data.py)")
    parser.add_argument(
        "--foreign-every",
        type=int,
        default=2,
        help="run every n-th foreign query (1: all; 2: those the fit did not see)",
    )
    parser.add_argument(
        "--cutoff-alone",
        action="store_true",
        help="also count foreign queries the hits' cut-off alone refuses (no gate)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    colls = [c for c in collections(args.cache) if (c.index.parent / "built").exists()]
    encoders: dict = {}
    from semsearch.search import calibration

    cutoff = calibration.load().threshold
    foreign = defaultdict(lambda: [0, 0])  # (source group, target group) -> [no hits, queries]
    cutoff_only = [0, 0]  # foreign queries answered "no match" by the cut-off alone (no gate: --min-score CUT-OFF)
    indomain = {}
    scores, labels = [], []
    foreign_scores = []
    grouping = defaultdict(
        lambda: [0, 0, 0, 0, 0]
    )  # group -> [queries, with a repeated file, files, lines grouped, lines flat]
    for target in colls:
        s = Searcher(target.index, encoders)
        try:
            code = isinstance(target, CodeCollection)
            full = cut = silenced = 0.0
            for q in target.queries:
                shown = s.hits(q.text, 10, files_only=not code)
                every = s.hits(q.text, 10, files_only=not code, show_all=True)
                if code:
                    full += ndcg_code(target, every, q)
                    cut += ndcg_code(target, shown, q)
                else:
                    n = sum(1 for g in q.judged.values() if g > 0)
                    full += ndcg_docs([target.label(h, q) for h in every], n)
                    cut += ndcg_docs([target.label(h, q) for h in shown], n)
                silenced += not shown
                for h in s.hits(q.text, 10, show_all=True):
                    scores.append(h.score)
                    labels.append(target.label(h, q))
                passages = s.hits(q.text, 10)
                if passages:
                    g = grouping[target.group]
                    files = len({h.path for h in passages})
                    g[0] += 1
                    g[1] += files < len(passages)
                    g[2] += files
                    g[3] += text_lines(passages, q.text, True)
                    g[4] += text_lines(passages, q.text, False)
            n = len(target.queries)
            indomain[target.name] = (target.group, n, full / n, cut / n, silenced / n)
            for source in colls:
                if source is target:
                    continue
                for q in source.queries[1 :: args.foreign_every] if args.foreign_every > 1 else source.queries:
                    hits = s.hits(q.text, 10)
                    cell = foreign[(source.group, target.group)]
                    cell[0] += not hits
                    cell[1] += 1
                    if args.cutoff_alone:
                        cutoff_only[0] += not s.hits(q.text, 10, min_score=cutoff)
                        cutoff_only[1] += 1
                    foreign_scores += [h.score for h in s.hits(q.text, 1, show_all=True)]
        finally:
            s.close()
        print(f"{target.name} done ({time.monotonic() - started:.0f}s)", file=sys.stderr, flush=True)

    groups = [g for g in GROUPS if any(v[0] == g for v in indomain.values())]
    print("(a) foreign queries answered with no hits (rows: whose queries; columns: whose index)")
    print("| queries \\ index | " + " | ".join(groups) + " | all |\n" + "|---" * (len(groups) + 2) + "|")
    total = [0, 0]
    for sg in groups:
        cells, row = [], [0, 0]
        for tg in groups:
            a, n = foreign.get((sg, tg), (0, 0))
            row[0] += a
            row[1] += n
            cells.append(f"{a / n:.1%} of {n}" if n else "-")
        total[0] += row[0]
        total[1] += row[1]
        print(f"| {sg} | " + " | ".join(cells) + f" | {row[0] / max(1, row[1]):.1%} |")
    print(f"overall: {total[0] / max(1, total[1]):.1%} of {total[1]} foreign queries answered 'no match' (goal >= 90%)")
    if args.cutoff_alone:
        print(f"(the hits' cut-off alone, without the gate: {cutoff_only[0] / max(1, cutoff_only[1]):.1%})")

    print("\n(b) in-domain: nDCG@10 with --all and with the default cut-off; queries answered 'no match'")
    print("| collection | queries | nDCG@10 --all | nDCG@10 default | change | no match |\n|---|---|---|---|---|---|")
    by_group = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for name, (group, n, f, c, sil) in indomain.items():
        agg = by_group[group]
        if group == "code":  # the repositories' mean, as semble reports it
            agg[0] += n
            agg[1] += f
            agg[2] += c
            agg[3] += sil * n
            agg.append(1)
        else:
            print(f"| {name} | {n} | {f:.4f} | {c:.4f} | {c - f:+.4f} | {sil:.1%} |")
    if "code" in by_group:
        n, f, c, sil, *repos = by_group["code"]
        r = len(repos)
        print(
            f"| code ({r} repositories, mean) | {n} | {f / r:.4f} | {c / r:.4f} | {(c - f) / r:+.4f} | {sil / n:.1%} |"
        )
        worst = min((v[3] - v[2], k) for k, v in indomain.items() if v[0] == "code")
        print(f"(largest change on one repository: {worst[1]} {worst[0]:+.4f})")
    all_n = sum(v[1] for v in indomain.values())
    all_sil = sum(v[1] * v[4] for v in indomain.values())
    print(
        f"in-domain queries answered 'no match': {all_sil:.0f} of {all_n} ({all_sil / max(1, all_n):.1%}; goal <= 2%)"
    )

    pred, obs = np.array(scores), np.array(labels, dtype=float)
    print(f"\n(c) reliability: in-domain hits (--all, first 10 of each query), {len(pred)} hits")
    print("| score | hits | mean score | judged relevant |\n|---|---|---|---|")
    err = 0.0
    for i in range(10):
        lo, hi = i / 10, (i + 1) / 10
        sel = (pred >= lo) & ((pred < hi) if i < 9 else (pred <= hi))
        if sel.any():
            err += sel.sum() * abs(pred[sel].mean() - obs[sel].mean())
            print(f"| {lo:.1f}-{hi:.1f} | {sel.sum()} | {pred[sel].mean():.3f} | {obs[sel].mean():.3f} |")
        else:
            print(f"| {lo:.1f}-{hi:.1f} | 0 | - | - |")
    print(
        f"expected calibration error {err / max(1, len(pred)):.3f}; best hit of foreign queries: mean score "
        f"{np.mean(foreign_scores):.3f} (none relevant)"
    )
    print("\n(d) passages and files: the hits in-domain queries show by default (first 10)")
    print(
        "| collection | queries with hits | a file shown twice or more | files per query | text lines, grouped "
        "| text lines, one hit after another |\n|---|---|---|---|---|---|"
    )
    for group in groups:
        n, rep, files, grouped, flat = grouping[group]
        if n:
            print(f"| {group} | {n} | {rep / n:.0%} | {files / n:.1f} | {grouped / n:.1f} | {flat / n:.1f} |")
    print(f"\n{len(colls)} indexes, {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
