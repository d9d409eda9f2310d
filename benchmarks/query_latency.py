"""How long a `semsearch query` process takes: answered in-process (cold) and by a running watcher (warm).

Each measurement is a fresh `semsearch query` process, as a user would run it, repeated; medians are
reported as wall-clock time and as the CPU time of the process (user + system, steadier on a busy
machine), both in full and beyond Python's own start-up (`python -c pass`, measured the same way).
Cold processes are measured twice: by the light path (the index's ONNX export, onnxruntime and the
model's tokenizer; what every query uses) and by the full path (sentence-transformers and torch, what a
query falls back to when a model cannot be exported; measured by hiding the export, only on an index this
script built). The warm figure's wall time includes the watcher's work (encoding the
query, searching); its CPU time does not, so the watcher's CPU per query is reported on its own.
Queries print as a person would see them in a file (text); one more row prints JSON lines. With
--collection, the queries are the collection's first four test queries, else four everyday questions.
The target: warm under 50 ms (wall) beyond start-up, and ten times faster than cold.

    python benchmarks/query_latency.py                    # index the sample documents in a temporary folder
    python benchmarks/query_latency.py --index ~/.local/share/semsearch/index --runs 11
    # about 100,000 chunks: SciFact's 5,183 abstracts (13,659 chunks) in 8 folders; identical texts are
    # embedded once, so building it embeds one copy (minutes); --workdir keeps it for the next run
    python benchmarks/query_latency.py --collection ../shared/eval/scifact --copies 8 --workdir /tmp/latency-100k
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
QUERIES = ["how do I rotate the api keys", "retry with exponential backoff", "what to pack for a trip", "sourdough"]


def command() -> list[str]:
    exe = Path(sys.executable).parent / "semsearch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "semsearch"]


def environment(index: Path) -> dict:
    env = dict(os.environ, SEMSEARCH_HOME=str(index), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")  # this checkout's code
    env.pop("SEMSEARCH_NO_WATCHER", None)
    # An installed semsearch has its bytecode compiled (pip does it); a checkout run with this variable set
    # would compile every module from source in every process, which is not what users pay.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed(args: list[str], env: dict) -> tuple[float, float, bytes]:
    """Run one process; (wall seconds, CPU seconds, stdout)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(args)} failed with status {proc.returncode}")
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, out.read()


def measure(name: str, make_args, runs: int, env: dict) -> dict:
    walls, cpus, outputs = [], [], []
    for i in range(runs):
        wall, cpu, out = timed(make_args(i), env)
        walls.append(wall)
        cpus.append(cpu)
        outputs.append(out)
    return {"name": name, "wall": statistics.median(walls), "cpu": statistics.median(cpus), "outputs": outputs}


def query_args(i: int, *extra: str) -> list[str]:
    return [*command(), "query", QUERIES[i % len(QUERIES)], "-k", "5", *extra]


def wait_for_watcher(env: dict, timeout: float = 300) -> int:
    """The pid of the watcher, once it answers queries."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([*command(), "status", "--json"], env=env, capture_output=True, text=True).stdout
        info = json.loads(out)["watcher"] if out.strip() else {}
        if info.get("serving") and info.get("phase") == "watching":
            return int(info["pid"])
        time.sleep(0.2)
    raise SystemExit("the watcher did not start answering queries in time")


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare_documents(args) -> list[Path]:
    """The folders to index: --docs, or --collection written out as Markdown; each --copies times."""
    folders = []
    if args.collection:
        from beir_eval import load_collection, write_documents

        corpus, queries, _ = load_collection(args.collection.resolve(), "test")
        # the collection's own queries, whose words the documents share (off-topic ones would spare the
        # keyword index the long posting lists that real queries walk)
        if not args.everyday_queries:
            QUERIES[:] = [queries[q] for q in sorted(queries)[:4]]
        source = args.workdir_path / "source"
        write_documents(corpus, source)
    else:
        source = args.docs.resolve()
    if args.copies == 1:
        return [source]
    for n in range(1, args.copies + 1):
        copy = args.workdir_path / "copies" / f"copy{n}"
        if not copy.exists():
            shutil.copytree(source, copy.with_suffix(".tmp"), dirs_exist_ok=True)
            copy.with_suffix(".tmp").rename(copy)
        folders.append(copy)
    return folders


def status(env: dict) -> dict:
    out = subprocess.run([*command(), "status", "--json"], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr.strip() or "semsearch status failed")
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="an existing index (default: index --docs in a temporary folder)")
    parser.add_argument(
        "--docs", type=Path, default=REPO / "examples/docs", help="documents to index (default: %(default)s)"
    )
    parser.add_argument("--collection", type=Path, help="a BEIR folder whose corpus to index instead of --docs")
    parser.add_argument(
        "--copies", type=int, default=1, help="index the documents this many times, in separate folders"
    )
    parser.add_argument("--workdir", type=Path, help="keep the documents and the index here between runs")
    parser.add_argument(
        "--everyday-queries", action="store_true", help="with --collection: ask the everyday questions, not its own"
    )
    parser.add_argument("--runs", type=int, default=7, help="processes per measurement (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    if args.copies < 1:
        parser.error("--copies must be at least 1")

    workdir = None
    if args.index:
        index = args.index.expanduser().absolute()
    else:
        if args.workdir:
            args.workdir_path = args.workdir.expanduser().absolute()
            args.workdir_path.mkdir(parents=True, exist_ok=True)
        else:
            workdir = args.workdir_path = Path(tempfile.mkdtemp(prefix="semsearch-latency-"))
        index = args.workdir_path / "index"
    env = environment(index)
    onnx = index / "onnx"
    hidden = index / "onnx.hidden-by-benchmark"
    try:
        if not args.index:
            if hidden.exists() and not onnx.exists():  # an earlier run was killed while the export was hidden
                hidden.rename(onnx)
            folders = prepare_documents(args)
            subprocess.run(
                [*command(), "index", *map(str, folders), "-q"], env=env, check=True, stdout=subprocess.DEVNULL
            )
        info = status(env)
        if info["watcher"]["running"]:
            raise SystemExit("a watcher is already running for this index; stop it first (semsearch watch stop)")

        rows = [measure("python -c pass", lambda i: [sys.executable, "-c", "pass"], args.runs, env)]
        timed(query_args(0), env)  # unmeasured: writes the bytecode cache, as installing would have
        rows.append(measure("cold, light path", query_args, args.runs, env))
        if not args.index and onnx.is_dir():
            onnx.rename(hidden)
            try:
                full = measure("cold, full model", query_args, max(3, args.runs // 2), env)
            finally:
                hidden.rename(onnx)
        else:
            full = None
        subprocess.run([*command(), "watch", "--background", "-q"], env=env, check=True, stdout=subprocess.DEVNULL)
        try:
            pid = wait_for_watcher(env)
            timed(query_args(0), env)  # one unmeasured run: the watcher's first answer
            before = cpu_seconds(pid)
            rows.append(measure("warm, watcher", query_args, args.runs, env))
            after = cpu_seconds(pid)
            rows.append(measure("warm, watcher, --json", lambda i: query_args(i, "--json"), args.runs, env))
            # the watcher's share of the work: its CPU time per query (it idles otherwise)
            watcher_cpu = (after - before) / args.runs if before is not None and after is not None else None
        finally:
            subprocess.run([*command(), "watch", "stop"], env=env, stdout=subprocess.DEVNULL)
        same = rows[1]["outputs"] == rows[2]["outputs"]
        same_full = full["outputs"] == rows[1]["outputs"][: len(full["outputs"])] if full else None
        if full:
            rows.insert(2, full)
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    base = rows[0]
    for row in rows:
        row["wall_beyond"] = row["wall"] - base["wall"]
        row["cpu_beyond"] = row["cpu"] - base["cpu"]
    cold, warm = rows[1], next(r for r in rows if r["name"] == "warm, watcher")
    built = f"{args.collection or args.docs}" + (f", {args.copies} copies" if args.copies > 1 else "")
    figures = {
        "runs": args.runs,
        "index": str(index) if args.index else built,
        "chunks": info["chunks"],
        "search": info.get("search"),
        "rows": [
            {k: round(v * 1000, 1) if isinstance(v, float) else v for k, v in r.items() if k != "outputs"} for r in rows
        ],
        "ratio_wall_beyond": round(cold["wall_beyond"] / max(warm["wall_beyond"], 1e-6), 1),
        "ratio_wall": round(cold["wall"] / warm["wall"], 1),
        "watcher_cpu_per_query": round(watcher_cpu * 1000, 1) if watcher_cpu is not None else None,
        "warm_total_cpu_beyond": round((warm["cpu_beyond"] + (watcher_cpu or 0)) * 1000, 1),
        "same_results": same,
        "same_results_full_model": same_full,
        "warm_under_50ms_beyond_startup": warm["wall_beyond"] < 0.050,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"semsearch query latency: median of {args.runs} fresh processes; index: {figures['index']} "
        f"({figures['chunks']:,} chunks, search {figures['search']})"
    )
    print(f"{'':22} {'wall ms':>9} {'beyond start-up':>16} {'CPU ms':>8} {'beyond start-up':>16}")
    for row in rows:
        beyond = "" if row is base else f"{row['wall_beyond'] * 1000:16.1f}"
        cpu_beyond = "" if row is base else f"{row['cpu_beyond'] * 1000:16.1f}"
        print(f"{row['name']:22} {row['wall'] * 1000:9.1f} {beyond:>16} {row['cpu'] * 1000:8.1f} {cpu_beyond:>16}")
    if watcher_cpu is not None:
        print(
            f"the watcher's CPU per query: {watcher_cpu * 1000:.1f} ms, so a warm query's whole work beyond "
            f"start-up is {figures['warm_total_cpu_beyond']:.1f} ms of CPU (cold: {cold['cpu_beyond'] * 1000:.1f} ms)"
        )
    print(
        f"cold / warm: {figures['ratio_wall_beyond']}x beyond start-up ({figures['ratio_wall']}x whole process); "
        f"warm under 50 ms beyond start-up: {'yes' if figures['warm_under_50ms_beyond_startup'] else 'no'}; "
        f"same results: {'yes' if same else 'NO'}"
        + ("" if same_full is None else f"; full model ranks the same: {'yes' if same_full else 'NO'}")
    )


if __name__ == "__main__":
    main()
