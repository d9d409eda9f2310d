"""Code search: NDCG@10 of semsearch on the repositories of ../shared/eval/code, beside the published figures.

Each repository folder is indexed on its own with semsearch's Indexer (all files, as a user indexes a project, and
a second index of code files only, as semble indexes), into a cache folder kept between runs (vectors come from
the shared embedding cache, see evalkit.py). Every query runs through semsearch.search as
``semsearch query --queries FILE --json -k 10`` does, and is scored the way semble's benchmark scores it
(../shared/eval/code/README.md): the chunk protocol over the 10 passages as returned, the file protocol over the
distinct files of the hits. A repository's score is the mean over its queries; the overall score, the mean over
repositories.

    python benchmarks/code_eval.py                       # every repository, all files and code only
    python benchmarks/code_eval.py --repos click,gin --modes hybrid
    python benchmarks/code_eval.py --json results.json   # the figures, for comparing runs
    python benchmarks/code_eval.py --store postgresql://...   # also through a PostgreSQL store, beside the default

With ``--store``, each repository is also indexed into that PostgreSQL database (an index named
``code_<repository>_<set>``; its vectors come from the same embedding cache, so nothing is embedded twice), its
queries run through it the same way, and each store's figures are printed side by side with their difference.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from pathlib import Path

from evalkit import EVAL, Clock, EmbeddingCache, build_index, default_cache, run_queries

CODE = EVAL / "code"
# the suffixes semble indexes (../shared/eval/code/README.md)
CODE_SUFFIXES = (
    ".py .js .jsx .ts .tsx .go .rs .java .kt .kts .rb .php .c .h .cpp .hpp .cs .swift .scala .sbt .ex .exs .dart "
    ".lua .sql .sh .bash .zig .hs"
).split()
REFERENCES = ("semble", "CRE-hybrid", "semble-bm25", "BM25-raw", "ColGREP", "ck")


def load_queries(name: str) -> list[dict]:
    with (CODE / "queries" / f"{name}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _same_path(a: str, b: str) -> bool:
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def ndcg10(items: list[tuple[str, int | None, int | None]], targets: list[dict]) -> float:
    """semble's NDCG@10: items are (path, start, end) best first (start None: a file, any span matches)."""
    items = items[:10]
    gains = [0] * len(items)
    for t in targets:
        for r, (path, start, end) in enumerate(items):
            if not _same_path(path, t["path"]):
                continue
            if start is not None and t.get("start_line") is not None:
                if end < t["start_line"] or start > t.get("end_line", t["start_line"]):
                    continue
            gains[r] = 1
            break
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
    idcg = sum(1 / math.log2(i + 2) for i in range(min(10, len(targets))))
    return dcg / idcg if idcg else 0.0


def score_repo(index: Path, root: Path, queries: list[dict], mode: str) -> dict[str, float]:
    texts = [q["text"] for q in queries]
    chunks = run_queries(index, texts, k=10, mode=mode)
    files = run_queries(index, texts, k=10, mode=mode, files_only=True)

    def rel(p: Path) -> str:
        return os.fsdecode(p.relative_to(root)) if p.is_relative_to(root) else os.fsdecode(p)

    out = {"chunk": 0.0, "file": 0.0}
    per_category: dict[str, list[float]] = {}
    for q, ch, fi in zip(queries, chunks, files, strict=True):
        c = ndcg10([(rel(h.path), h.start_line, h.end_line) for h in ch], q["targets"])
        out["chunk"] += c
        out["file"] += ndcg10([(rel(h.path), None, None) for h in fi], q["targets"])
        per_category.setdefault(q.get("category", "?"), []).append(c)
    n = len(queries)
    result = {"chunk": out["chunk"] / n, "file": out["file"] / n}
    result.update({f"chunk:{k}": sum(v) / len(v) for k, v in per_category.items()})
    return result


def pg_folder(url: str, index_name: str, base: Path) -> Path:
    """The folder that stands for an index in the PostgreSQL database at ``url``."""
    from semsearch import storespec

    sep = "&" if "?" in url else "?"
    return storespec.select(f"{url}{sep}index={re.sub(r'[^a-z0-9_]', '_', index_name.lower())}", base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", help="comma-separated repository names (default: all)")
    parser.add_argument("--modes", default="hybrid,keyword,semantic", help="search modes to run (comma-separated)")
    parser.add_argument("--sets", default="all,code", help="'all' (every file), 'code' (semble's suffixes) or both")
    parser.add_argument("--cache", type=Path, help="where the indexes and the embedding cache live")
    parser.add_argument("--tag", default="", help="a suffix for the index folders (to keep indexes of another build)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--store", help="a PostgreSQL URL: measure that store beside the embedded one")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    clock = Clock()
    meta = json.loads((CODE / "repos.json").read_text(encoding="utf-8"))
    names = args.repos.split(",") if args.repos else list(meta)
    modes = args.modes.split(",")
    sets = args.sets.split(",")
    base = args.cache or default_cache()
    cache = EmbeddingCache(base / "embeddings.sqlite")
    results: dict[str, dict] = {}
    index_seconds = 0.0
    for name in names:
        root = (CODE / "repos" / name).resolve()
        queries = load_queries(name)
        results[name] = {}
        for which in sets:
            index = base / "code" / f"{name}-{which}{args.tag}"
            include = [f"*{s}" for s in CODE_SUFFIXES] if which == "code" else None
            # the embedded index, then (--store) the same files through PostgreSQL, the results keyed "pg ..."
            targets = [("", index, "")]
            if args.store:
                targets.append(("pg ", pg_folder(args.store, f"code_{name}_{which}", index.parent), ", PostgreSQL"))
            for key, target, label in targets:
                t = Clock()
                summary = build_index(root, target, cache, include=include)
                if not key:
                    index_seconds += t.seconds
                for mode in modes:
                    results[name][f"{key}{which}/{mode}"] = score_repo(target, root, queries, mode)
                print(
                    f"{name} [{which}{label}]: {summary}; "
                    + ", ".join(f"{m} {results[name][f'{key}{which}/{m}']['chunk']:.3f}" for m in modes),
                    flush=True,
                )

    def mean(values) -> float:
        values = list(values)
        return sum(values) / len(values) if values else float("nan")

    stores = ["", "pg "] if args.store else [""]
    columns = [(f"{st}{w}/{m}", p) for w in sets for m in modes for st in stores for p in ("chunk", "file")]
    print(
        f"\nNDCG@10 per repository ({len(names)} repositories; chunk = semble's chunk protocol, file = file protocol)"
    )
    head = ["repo", "lang"] + [f"{c} {p}" for c, p in columns] + list(REFERENCES)
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name in names:
        row = [name, meta[name]["language"]] + [f"{results[name][c][p]:.3f}" for c, p in columns]
        row += [f"{meta[name]['published_ndcg10'].get(r, float('nan')):.3f}" for r in REFERENCES]
        print("| " + " | ".join(row) + " |")
    overall = [f"{mean(results[n][c][p] for n in names):.3f}" for c, p in columns]
    refs = [f"{mean(meta[n]['published_ndcg10'][r] for n in names):.3f}" for r in REFERENCES]
    print("| **mean** | | " + " | ".join(overall + refs) + " |")
    categories = sorted({k.split(":", 1)[1] for n in names for c in results[n].values() for k in c if ":" in k})
    if args.store:
        print("\nPostgreSQL minus embedded, chunk protocol (largest gap per column, and the mean)")
        for w in sets:
            for m in modes:
                gaps = {n: results[n][f"pg {w}/{m}"]["chunk"] - results[n][f"{w}/{m}"]["chunk"] for n in names}
                worst = max(gaps, key=lambda n: abs(gaps[n]))
                print(f"  {w}/{m}: mean {mean(gaps.values()):+.4f}; largest {worst} {gaps[worst]:+.4f}; "
                      + ", ".join(f"{n} {g:+.4f}" for n, g in gaps.items() if abs(g) > 0.01))  # fmt: skip
    if categories:
        print("\nchunk protocol by query category (mean over repositories that have it)")
        for c in [c for c, p in columns if p == "chunk"]:
            parts = []
            for cat in categories:
                vals = [results[n][c][f"chunk:{cat}"] for n in names if f"chunk:{cat}" in results[n][c]]
                parts.append(f"{cat} {mean(vals):.3f}")
            print(f"  {c}: " + ", ".join(parts))
    print(
        f"\nembedding cache: {cache.hits} reused, {cache.misses} embedded; indexing {index_seconds:.1f}s; total {clock}"
    )
    if args.json:
        args.json.write_text(json.dumps({"results": results, "seconds": round(clock.seconds, 1)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
