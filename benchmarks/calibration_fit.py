"""Fit semsearch's relevance calibration: a logistic regression from a hit's raw signals to the probability that it
is relevant, on every collection of ``../shared/eval`` at once (SciFact, NPL, MED, CACM and the 19 code
repositories), and the default cut-off below which hits are not shown.

1. ``--collect`` runs each collection's judged queries against its own index (the first 30 hits) and every other
   collection's queries (every second one) against it (the first 10 hits, none relevant: the answer should be "no
   match"), in each search mode, and keeps every hit's raw signals in the cache (``signals/INDEX.jsonl``; indexes done before are not run again without ``--collect``).
2. The fit: one model per search mode, each collection (the code repositories together count as one) weighing the
   same, and queries asked of a foreign index weighing ``--foreign-weight`` times the in-domain ones together.
   Coefficients keep their sign (more cosine or BM25 never lowers the score; a worse place or a larger gap to the
   best cosine never raises it): a feature whose sign the data would flip is left out.
3. The cut-off: the highest that keeps, on every collection, nDCG@10 within ``--max-ndcg-loss`` of no cut-off and
   "no match" for at most ``--max-silenced`` of the in-domain queries, both with the fit's own predictions and with
   predictions made leaving each collection out of the fit (as the cut-off will meet collections nobody fitted on).
4. Writes ``semsearch/calibration.json`` (``--write``) and prints the held-out reliability table.

    python benchmarks/calibration_fit.py --cache /work/cache-calib --collect --write
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration_data import EVAL, REPO, code_repos, collect, default_cache, load_signals  # noqa: E402

FEATURES = {
    "hybrid": [
        "dense",
        "dense_gap",
        "top_dense",
        "dense_peak",
        "keyword_log",
        "keyword_ratio",
        "top_keyword_log",
        "keyword_per_term",
        "top_keyword_per_term",
        "fused",
        "log_rank",
        "exact",
        "coverage",
    ],
    "semantic": ["dense", "dense_gap", "top_dense", "dense_peak", "log_rank", "coverage"],
    "keyword": [
        "keyword_log",
        "keyword_ratio",
        "top_keyword_log",
        "keyword_per_term",
        "top_keyword_per_term",
        "log_rank",
        "exact",
        "coverage",
    ],
}
# The gate (whether the index holds an answer at all) reads only what the query's candidates say together.
GATE_FEATURES = {
    "hybrid": ["top_dense", "top_keyword_per_term", "coverage"],
    "semantic": ["top_dense", "coverage"],
    "keyword": ["top_keyword_log", "top_keyword_per_term", "coverage"],
}
SURE = 0.5  # a hit more likely relevant than not is shown whatever the gate says
SIGN = {"dense_gap": -1, "log_rank": -1}  # every other feature: +1
PARAMS = REPO / "semsearch" / "search" / "calibration.json"
GROUPS = ("scifact", "npl", "med", "cacm", "code")


def feature_matrix(rows: list[dict], names: list[str]) -> np.ndarray:
    sys.path.insert(0, str(REPO))
    import dataclasses

    from semsearch.search.calibration import Evidence, features

    fields = [f.name for f in dataclasses.fields(Evidence)]
    return np.array(
        [features(Evidence(**{k: r[k] for k in fields if k in r}), names) for r in rows], dtype=np.float64
    ).reshape(len(rows), len(names))


def logistic(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1e-3, iters: int = 50
) -> tuple[np.ndarray, float]:
    """Weighted logistic regression by Newton's method (IRLS), a small ridge on the coefficients."""
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    ridge = np.full(d + 1, l2 * w.sum())
    ridge[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(A @ beta, -35, 35)))
        grad = A.T @ (w * (p - y)) + ridge * beta
        H = (A * (w * p * (1 - p))[:, None]).T @ A + np.diag(ridge) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(H, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta[:-1], float(beta[-1])


def fit_signed(X: np.ndarray, y: np.ndarray, w: np.ndarray, names: list[str]) -> tuple[list[str], np.ndarray, float]:
    """Fit, then leave out the feature whose coefficient has the wrong sign (the worst first) until none has."""
    keep = list(range(len(names)))
    # standardize for the fit (the ridge treats features alike); coefficients are returned on the raw scale
    mu, sd = X.mean(0), X.std(0)
    sd[sd == 0] = 1.0
    while True:
        Z = (X[:, keep] - mu[keep]) / sd[keep]
        coef, b = logistic(Z, y, w)
        wrong = [
            (coef[i] * SIGN.get(names[j], 1), i) for i, j in enumerate(keep) if coef[i] * SIGN.get(names[j], 1) < 0
        ]
        if not wrong:
            raw = coef / sd[keep]
            return [names[j] for j in keep], raw, float(b - (raw * mu[keep]).sum())
        keep.pop(min(wrong)[1])


def predict(X: np.ndarray, names_all: list[str], names: list[str], coef: np.ndarray, b: float) -> np.ndarray:
    idx = [names_all.index(n) for n in names]
    return 1.0 / (1.0 + np.exp(-np.clip(X[:, idx] @ coef + b, -35, 35)))


def weights(rows: list[dict], foreign_weight: float) -> np.ndarray:
    """Each collection's in-domain queries weigh 1 together (every query alike); foreign ones ``foreign_weight`` x that."""
    queries = defaultdict(set)
    hits_of = defaultdict(int)
    for r in rows:
        key = (r["index"], r["source"], r["query"])
        hits_of[key] += 1
        queries[(r["group"] if r["own"] else "foreign")].add(key)
    n_groups = len([g for g in queries if g != "foreign"])
    w = np.empty(len(rows))
    for i, r in enumerate(rows):
        key = (r["index"], r["source"], r["query"])
        g = r["group"] if r["own"] else "foreign"
        total = foreign_weight * n_groups if g == "foreign" else 1.0
        w[i] = total / len(queries[g]) / hits_of[key]
    return w


# -- the measures of a cut-off ----------------------------------------------------------------------------------------


def judged_counts(cache: Path) -> dict[tuple[str, str], int]:
    """(index name, query id) -> how many relevant documents (prose) or targets (code) the query has."""
    out = {}
    for name in ("scifact", "npl", "med", "cacm"):
        for line in (EVAL / name / "qrels" / "test.tsv").open(encoding="utf-8"):
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and parts[0] != "query-id" and int(parts[2]) > 0:
                out[(name, parts[0])] = out.get((name, parts[0]), 0) + 1
    for repo in code_repos():
        for line in (EVAL / "code" / "queries" / f"{repo}.jsonl").open(encoding="utf-8"):
            if line.strip():
                q = json.loads(line)
                out[(f"code/{repo}", str(q["id"]))] = len(q["targets"])
    return out


def ndcg10(hits: list[dict], n_judged: int, code: bool) -> float:
    """Prose: documents ranked by their best passage (``-l``), gain 1 per relevant document. Code: semble's chunk
    protocol (the first 10 passages; a position gains 1 when it is the first to match some target)."""
    gains = []
    if code:
        seen = set()
        for h in hits[:10]:
            new = set(h["matches"]) - seen
            seen |= new
            gains.append(1.0 if new else 0.0)
    else:
        docs = []
        for h in hits:
            if h["doc"] not in {d["doc"] for d in docs}:
                docs.append(h)
        gains = [float(h["label"]) for h in docs[:10]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    idcg = sum(1 / math.log2(i + 2) for i in range(min(10, n_judged)))
    return dcg / idcg if idcg else 0.0


def measures(by_query, p: dict, floor: float, judged, gate: dict | None = None, cut: float = 0.0) -> dict:
    """What the default output does when a query is answered only if its gate reaches ``cut`` (or a hit is SURE)
    and then shows its hits that reach ``floor`` (``gate`` None: every query is answered, the cut-off alone):
    nDCG@10 without and with it per group of collections (``ndcg``, queries pooled, and "all"), nDCG@10 lost per
    group (``loss``; code: the repositories' mean), share of in-domain queries silenced per group (and "all"),
    share of foreign queries answered "no match" (of their first 10 hits), overall and by (queries of, index of)."""
    nd = defaultdict(lambda: [0.0, 0.0, 0])
    loss = defaultdict(lambda: [0.0, 0])
    silenced = defaultdict(lambda: [0, 0])
    foreign = defaultdict(lambda: [0, 0])
    for key, hits in by_query.items():
        index, source, qid, own = key
        probs = [p[id(h)] for h in hits]
        answered = gate is None or gate[key] >= cut or max(probs[:10], default=0.0) >= SURE
        kept = [h for h, q in zip(hits, probs) if q >= floor] if answered else []
        if own:
            group = hits[0]["group"]
            code = group == "code"
            n = judged.get((index, qid), 0)
            full, shown = ndcg10(hits, n, code), ndcg10(kept, n, code)
            cell = loss[index]
            cell[0] += full - shown
            cell[1] += 1
            for g in (group, "all"):
                nd[g][0] += full
                nd[g][1] += shown
                nd[g][2] += 1
                silenced[g][0] += not kept[:10]
                silenced[g][1] += 1
        else:
            cell = foreign[(hits[0]["source_group"], hits[0]["group"])]
            cell[0] += not kept[:10]
            cell[1] += 1
    by_group = defaultdict(list)
    for index, (lost, n) in loss.items():
        by_group["code" if index.startswith("code/") else index].append(lost / n)
    worst = max(loss, key=lambda i: loss[i][0] / loss[i][1], default=None)
    return {
        "ndcg": {g: (a / n, b / n) for g, (a, b, n) in nd.items()},
        "loss": {g: sum(v) / len(v) for g, v in by_group.items()},
        "worst": (worst, loss[worst][0] / loss[worst][1]) if worst else (None, 0.0),  # the index that loses most
        "silenced": {g: a / n for g, (a, n) in silenced.items()},
        "foreign": sum(a for a, _ in foreign.values()) / max(1, sum(n for _, n in foreign.values())),
        "pairs": {k: a / n for k, (a, n) in foreign.items()},
    }


def choose_threshold(
    by_query, predictions: list[dict], judged, max_loss: float, max_silenced: float
) -> tuple[float, dict]:
    """The highest cut-off that meets the goals under every set of predictions given (held-out and full fit)."""
    best = (0.0, measures(by_query, predictions[0], 0.0, judged))
    for t in np.round(np.arange(0.005, 0.60, 0.005), 3):
        ok = True
        for p in predictions:
            m = measures(by_query, p, float(t), judged)
            ok = ok and all(full - cut <= max_loss for g, (full, cut) in m["ndcg"].items() if g != "all")
            ok = ok and m["silenced"]["all"] <= max_silenced
        if not ok:
            break
        best = (float(t), measures(by_query, predictions[0], float(t), judged))
    return best


# -- the gate: does this index hold an answer to the query at all? ---------------------------------------------------


def query_key(r: dict) -> tuple:
    return (r["index"], r["source"], r["query"], r["own"])


def gate_weights(qrows: list[dict], foreign_weight: float) -> np.ndarray:
    """One row per query: each collection's in-domain queries weigh 1 together, the foreign ones ``foreign_weight``
    times as much as all collections' together."""
    count = defaultdict(int)
    for r in qrows:
        count[r["group"] if r["own"] else "foreign"] += 1
    groups = len([g for g in count if g != "foreign"])
    return np.array(
        [1.0 / count[r["group"]] if r["own"] else foreign_weight * groups / count["foreign"] for r in qrows]
    )


def choose_gate(by_query, predictions, floor, judged, max_loss, max_silenced, max_index_loss) -> tuple[float, dict]:
    """The highest gate threshold that meets the goals under every set of (hit, gate) predictions given: no
    collection (code: the repositories' mean) loses more than ``max_loss``, no single index more than
    ``max_index_loss`` (a mean over 19 repositories would hide one whose users lose several answers)."""
    best = (0.0, measures(by_query, predictions[0][0], floor, judged, predictions[0][1], 0.0))
    for t in np.round(np.arange(0.01, 0.99, 0.01), 3):
        ok = True
        for p, g in predictions:
            m = measures(by_query, p, floor, judged, g, float(t))
            ok = ok and all(v <= max_loss for v in m["loss"].values()) and m["silenced"]["all"] <= max_silenced
            ok = ok and m["worst"][1] <= max_index_loss
        if not ok:
            break
        best = (float(t), measures(by_query, predictions[0][0], floor, judged, predictions[0][1], float(t)))
    return best


def gate_ceiling(by_query, gate: dict) -> float:
    """The share of foreign queries a gate could refuse with its threshold set per index by an oracle: just
    below the lowest gate of that index's in-domain queries that have a relevant hit in their first 10, so that
    no answered query is lost (no threshold learnt without the answers can do better with the same gate)."""
    lowest: dict[str, float] = {}
    for key, hits in by_query.items():
        if key[3] and any(r["label"] > 0 for r in hits if r["rank"] <= 10):
            lowest[key[0]] = min(lowest.get(key[0], 1.0), gate[key])
    foreign = [gate[key] < lowest.get(key[0], 1.0) for key in by_query if not key[3]]
    return sum(foreign) / max(1, len(foreign))


def fit_gate(mode: str, rows: list[dict], held: np.ndarray, full: np.ndarray, floor: float, judged, args):
    """Fit the mode's gate on one row per query (its best candidate's evidence), held out by collection as the
    hits' model is; choose its threshold; print what it does."""
    names = GATE_FEATURES[mode]
    by_query = defaultdict(list)
    for r in rows:
        by_query[query_key(r)].append(r)
    qrows = [hits[0] for hits in by_query.values()]
    X = feature_matrix(qrows, names)
    y = np.array([float(r["own"]) for r in qrows])
    w = gate_weights(qrows, args.gate_foreign_weight)
    kept, coef, b = fit_signed(X, y, w, names)
    g_full = predict(X, names, kept, coef, b)
    g_held = g_full.copy()
    for g in GROUPS:
        train = [i for i, r in enumerate(qrows) if r["group"] != g and r["source_group"] != g]
        test = [i for i, r in enumerate(qrows) if r["group"] == g]
        if test:
            k2, c2, b2 = fit_signed(X[train], y[train], w[train], names)
            g_held[test] = predict(X[test], names, k2, c2, b2)
    keys = [query_key(r) for r in qrows]
    gh, gf = dict(zip(keys, g_held)), dict(zip(keys, g_full))
    ph = {id(r): q for r, q in zip(rows, held)}
    pf = {id(r): q for r, q in zip(rows, full)}
    cut, m = choose_gate(
        by_query, [(ph, gh), (pf, gf)], floor, judged, args.max_ndcg_loss, args.max_silenced, args.max_index_loss
    )
    print(
        f"\n{mode} gate: " + ", ".join(f"{n} {c:+.3f}" for n, c in zip(kept, coef)) + f", intercept {b:+.3f}; "
        f"threshold {cut:.2f} (held-out): foreign queries answered 'no match' {m['foreign']:.1%}; in-domain "
        f"silenced {m['silenced']['all']:.1%}; nDCG@10 lost "
        + ", ".join(f"{g} {v:+.4f}" for g, v in sorted(m["loss"].items()))
    )
    print(
        "  foreign 'no match' by (queries of, index of): "
        + "; ".join(f"{a}->{b_} {v:.0%}" for (a, b_), v in sorted(m["pairs"].items()))
    )
    m0 = measures(by_query, ph, floor, judged)
    print(f"  (without the gate, the cut-off alone: foreign {m0['foreign']:.1%}, silenced {m0['silenced']['all']:.1%})")
    for t in (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10):
        mt = measures(by_query, ph, floor, judged, gh, t)
        print(
            f"  at {t:.2f}: foreign {mt['foreign']:.1%}, silenced {mt['silenced']['all']:.1%}, most lost by one index "
            f"{mt['worst'][1]:.3f} ({mt['worst'][0]}); "
            + ", ".join(f"{g} {v:+.4f}" for g, v in sorted(mt["loss"].items()))
        )
    print(f"  ceiling: {gate_ceiling(by_query, gf):.1%} of foreign queries refused by a threshold per index chosen "
          "knowing the answers (the lowest gate of an in-domain query with a relevant hit in its first 10)")  # fmt: skip
    return {"features": kept, "coef": [round(float(c), 6) for c in coef], "intercept": round(b, 6), "threshold": cut}


def reliability(pred: np.ndarray, y: np.ndarray, bins: int = 10) -> list[tuple[str, int, float, float]]:
    out = []
    for i in range(bins):
        lo, hi = i / bins, (i + 1) / bins
        sel = (pred >= lo) & ((pred < hi) if i < bins - 1 else (pred <= hi))
        if sel.any():
            out.append((f"{lo:.1f}-{hi:.1f}", int(sel.sum()), float(pred[sel].mean()), float(y[sel].mean())))
        else:
            out.append((f"{lo:.1f}-{hi:.1f}", 0, float("nan"), float("nan")))
    return out


def ece(pred: np.ndarray, y: np.ndarray) -> float:
    return sum(n * abs(mp - obs) for _, n, mp, obs in reliability(pred, y) if n) / max(1, len(pred))


def print_reliability(title: str, pred: np.ndarray, y: np.ndarray) -> None:
    print(f"\n{title} (ECE {ece(pred, y):.3f}, {len(pred)} hits)")
    print("| predicted | hits | mean predicted | observed relevant |\n|---|---|---|---|")
    for label, n, mp, obs in reliability(pred, y):
        print(f"| {label} | {n} | {mp:.3f} | {obs:.3f} |" if n else f"| {label} | 0 | - | - |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=default_cache(), help="indexes and signals (calibration_data.py)")
    parser.add_argument("--collect", action="store_true", help="run the queries again (after a ranking change)")
    parser.add_argument("--signals", type=Path, help="folder of the hits' signals (default: CACHE/signals)")
    parser.add_argument("--foreign-weight", type=float, default=0.5)
    parser.add_argument(
        "--max-ndcg-loss", type=float, default=0.005, help="per collection, on held-out predictions (the goal)"
    )
    parser.add_argument(
        "--max-silenced", type=float, default=0.02, help="in-domain queries, on held-out predictions (the goal)"
    )
    parser.add_argument(
        "--max-index-loss", type=float, default=0.03, help="nDCG@10 the gate may cost any one index (held-out)"
    )
    parser.add_argument(
        "--gate-foreign-weight", type=float, default=1.0, help="the gate's foreign queries, against in-domain ones"
    )
    parser.add_argument("--write", action="store_true", help=f"write {PARAMS.relative_to(REPO)}")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    signals = args.signals or args.cache / "signals"
    collect(args.cache, signals, force=args.collect)
    rows_all = load_signals(signals)
    judged = judged_counts(args.cache)
    models, report = {}, {}
    threshold = None
    for mode, names in FEATURES.items():
        rows = [r for r in rows_all if r["mode"] == mode]
        fit_rows = [r for r in rows if r["rank"] <= 10]
        X = feature_matrix(fit_rows, names)
        y = np.array([r["label"] for r in fit_rows], dtype=np.float64)
        w = weights(fit_rows, args.foreign_weight)
        kept, coef, b = fit_signed(X, y, w, names)
        models[mode] = {"features": kept, "coef": [round(float(c), 6) for c in coef], "intercept": round(b, 6)}
        # held out: each group's hits (in-domain and as a foreign index) predicted by a fit without that group
        # (its queries asked elsewhere are left out too)
        Xa = feature_matrix(rows, names)
        held = np.empty(len(rows))
        held[:] = predict(Xa, names, kept, coef, b)  # (a group alone: no held-out fit possible)
        for g in GROUPS:
            train = [i for i, r in enumerate(fit_rows) if r["group"] != g and r["source_group"] != g]
            test = [i for i, r in enumerate(rows) if r["group"] == g]
            if not test or not y[train].any():
                continue
            k2, c2, b2 = fit_signed(X[train], y[train], w[train], names)
            held[test] = predict(Xa[test], names, k2, c2, b2)
        full = predict(Xa, names, kept, coef, b)
        report[mode] = (rows, held, full)
        print(f"\n{mode}: " + ", ".join(f"{n} {c:+.3f}" for n, c in zip(kept, coef)) + f", intercept {b:+.3f}")
        if mode == "hybrid":
            by_query = defaultdict(list)
            for r in rows:
                by_query[(r["index"], r["source"], r["query"], r["own"])].append(r)
            p_held = {id(r): q for r, q in zip(rows, held)}
            p_full = {id(r): q for r, q in zip(rows, full)}
            threshold, m = choose_threshold(by_query, [p_held, p_full], judged, args.max_ndcg_loss, args.max_silenced)
            print(
                f"cut-off {threshold:.3f} (held-out predictions): foreign queries answered 'no match' "
                f"{m['foreign']:.1%}; in-domain silenced {m['silenced']['all']:.1%}"
            )
            for g in GROUPS:
                if g in m["ndcg"]:
                    f0, f1 = m["ndcg"][g]
                    print(f"  {g}: nDCG@10 {f0:.4f} -> {f1:.4f}; silenced {m['silenced'][g]:.1%}")
            print(
                "  foreign 'no match' by (queries of, index of): "
                + "; ".join(f"{a}->{b} {v:.0%}" for (a, b), v in sorted(m["pairs"].items()))
            )
            for t in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5):
                mt = measures(by_query, p_held, t, judged)
                print(
                    f"  at {t:.2f}: foreign {mt['foreign']:.1%}, silenced {mt['silenced']['all']:.1%}, "
                    + ", ".join(f"{g} {f0 - f1:+.4f}" for g, (f0, f1) in mt["ndcg"].items() if g != "all")
                )
            m2 = measures(by_query, p_full, threshold, judged)
            print(
                f"same cut-off, full fit: foreign 'no match' {m2['foreign']:.1%}; silenced {m2['silenced']['all']:.1%}; "
                + "; ".join(f"{g} {m2['ndcg'][g][0]:.4f}->{m2['ndcg'][g][1]:.4f}" for g in GROUPS if g in m2["ndcg"])
            )
    gates = {
        mode: fit_gate(mode, rows, held, full, threshold, judged, args) for mode, (rows, held, full) in report.items()
    }
    for mode, (rows, held, full) in report.items():
        top = np.array([r["rank"] <= 10 and r["own"] for r in rows])
        y = np.array([r["label"] for r in rows], dtype=np.float64)
        print_reliability(f"{mode}, in-domain hits (first 10), held-out predictions", held[top], y[top])
        if mode == "hybrid":
            print_reliability(f"{mode}, in-domain hits (first 10), full fit", full[top], y[top])
    if args.write:
        data = {
            "about": "semsearch relevance calibration; fitted by benchmarks/calibration_fit.py on ../shared/eval "
            "(scifact, npl, med, cacm, 19 code repositories)",
            "threshold": threshold,
            "sure": SURE,
            "models": models,
            "gates": gates,
        }
        PARAMS.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {PARAMS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
