"""Kill a real `semsearch index` at seeded random moments, then check the index and compare it with a clean build.

Shared by tests/test_crash.py (a few trials in every run) and benchmarks/crash_trials.py (many trials).

A *sequence* runs ``trials`` kills on one index. Before trial ``i`` the corpus is brought to version ``i``
of a fixed plan (files added, edited, touched, renamed and deleted), so every trial has real work to
interrupt: embedding, committing batches, removing files, saving the vector file, dropping unused
vectors. After each kill the index must open, pass ``semsearch check``, and answer a query. After the
last kill the corpus goes to its final version, one uninterrupted ``index`` finishes, and the index must
hold the same content as a clean build of that version.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from polling import eventually

REPO = Path(__file__).resolve().parent.parent
CORPUS_SEED = 20240611  # the corpus plan is the same for every sequence: one clean build serves them all
DEFAULT_TRIALS = 10  # kills per sequence; the corpus plan has this many versions before the final one
WAIT = 240.0  # bound on waiting for a subprocess to reach a kill point (a loaded 2-core machine is slow)

TOPICS = {
    "sourdough": "starter flour water dough loaf crust oven proofing levain knead bake rye crumb",
    "sailing": "boat sail wind harbour mooring tack jib mainsail bay tide anchor keel rudder",
    "tomatoes": "seedling greenhouse soil mulch compost watering vine blossom ripe fruit stake prune",
    "guitar": "chord fret string pick scale metronome capo strum tuning finger riff amplifier",
    "credentials": "token key secret rotate vault expiry scope revoke password admin console credential",
    "retries": "retry backoff jitter timeout request failure attempt exponential circuit breaker network",
    "taxes": "invoice receipt deduction income return deadline accountant refund expense ledger form",
    "astronomy": "telescope planet orbit nebula galaxy eclipse comet star moon lens observatory",
    "cycling": "bicycle chain gear saddle tyre pedal helmet climb descent puncture route brake",
    "beekeeping": "hive queen honey comb frame smoker swarm nectar pollen colony wax apiary",
    "databases": "index query transaction table schema replica vacuum lock journal commit rollback",
    "running": "marathon pace stride shoes interval tempo recovery hydration training race mileage",
    "chess": "opening gambit endgame pawn bishop knight rook castle checkmate tactic fork pin",
    "coffee": "espresso grinder roast bean crema brew filter pour barista aroma acidity kettle",
    "birding": "binoculars warbler migration feather nest call plumage heron field guide sighting",
    "plumbing": "pipe leak valve faucet drain washer solder wrench pressure seal trap boiler",
    "knitting": "yarn needle stitch purl cable wool pattern gauge sweater scarf skein cast",
    "volcanoes": "magma lava eruption crater ash caldera vent seismic plume pyroclastic basalt cone",
    "photography": "aperture shutter exposure lens tripod focus portrait bokeh sensor flash frame",
    "fermentation": "kimchi brine crock lactobacillus cabbage sauerkraut jar salt culture sour pickle",
}
FILLER = "the a with and then before after every while because under over into about for from".split()


def _paragraph(rng: random.Random, topic: str, sentences: int) -> str:
    words = TOPICS[topic].split()
    out = []
    for _ in range(sentences):
        n = rng.randint(8, 16)
        sentence = [rng.choice(words) if rng.random() < 0.6 else rng.choice(FILLER) for _ in range(n)]
        sentence += [f"{topic}{rng.randint(0, 999)}"]  # a rare token: no two chunks embed the same text
        out.append(" ".join(sentence).capitalize() + ".")
    return " ".join(out)


def _document(rng: random.Random, topic: str, suffix: str) -> str:
    paragraphs = [_paragraph(rng, topic, rng.randint(3, 7)) for _ in range(rng.randint(2, 5))]
    if suffix == ".md":
        parts = [f"# Notes on {topic}"]
        for i, p in enumerate(paragraphs):
            parts += [f"## Part {i + 1}", p]
        return "\n\n".join(parts) + "\n"
    if suffix == ".py":
        body = "\n".join(f"    # {line}" for p in paragraphs for line in _wrap(p))
        return f'"""Helpers for {topic}."""\n\n\ndef {topic}_step(x):\n{body}\n    return x\n'
    return "\n\n".join("\n".join(_wrap(p)) for p in paragraphs) + "\n"


def _wrap(text: str, width: int = 78) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + ([line] if line else [])


@dataclass
class Version:
    files: dict[str, str]  # relative path -> text
    touched: set[str] = field(default_factory=set)  # rewritten with the same bytes (new mtime only)


def corpus_plan(versions: int = DEFAULT_TRIALS, seed: int = CORPUS_SEED, start_files: int = 36) -> list[Version]:
    """Versions 0..``versions`` of a corpus: each adds, edits, touches, renames and deletes a few files."""
    rng = random.Random(seed)
    suffixes = [".txt", ".md", ".py", ".txt", ".md"]
    serial = 0

    def new_file() -> tuple[str, str]:
        nonlocal serial
        serial += 1
        topic = rng.choice(sorted(TOPICS))
        suffix = rng.choice(suffixes)
        return f"{topic}/{topic}-{serial:03d}{suffix}", _document(rng, topic, suffix)

    files = dict(new_file() for _ in range(start_files))
    plan = [Version(dict(files))]
    for _ in range(versions):
        files = dict(files)
        names = sorted(files)
        rng.shuffle(names)
        deleted, renamed, edited, touched = names[:1], names[1:2], names[2:5], set(names[5:7])
        for name in deleted:
            del files[name]
        for name in renamed:  # same text under a new name: its chunks' vectors are reused
            text = files.pop(name)
            files[name.replace("/", "/moved-", 1)] = text
        for name in edited:
            topic = name.split("/")[0]
            files[name] = files[name] + "\n" + _paragraph(rng, topic, rng.randint(3, 6)) + "\n"
        for _ in range(3):
            rel, text = new_file()
            files[rel] = text
        plan.append(Version(files, touched & set(files)))
    return plan


def write_version(root: Path, version: Version) -> None:
    """Bring the folder ``root`` to ``version``: write new and changed files, touch some, delete the rest."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in version.files.items():
        path = root / rel
        data = text.encode("utf-8")
        if path.exists() and path.read_bytes() == data and rel not in version.touched:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for path in sorted(root.rglob("*"), reverse=True):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in version.files:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


# -- the content of an index, compared across folders ----------------------------------------------


def index_content(index_dir: Path, corpus_root: Path) -> dict[tuple, np.ndarray]:
    """{(path relative to the corpus, start line, end line, heading, chunk text): vector} read from SQLite."""
    conn = sqlite3.connect(f"file:{index_dir / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        dim = int(conn.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()[0])
        rows = conn.execute(
            "SELECT f.path, c.start_line, c.end_line, c.heading, c.text, e.vector FROM chunks c"
            " JOIN files f ON f.id = c.file_id LEFT JOIN embeddings e ON e.text_hash = c.text_hash"
        ).fetchall()
    finally:
        conn.close()
    prefix = os.fsencode(corpus_root) + b"/"
    out: dict[tuple, np.ndarray] = {}
    for path, start, end, heading, text, vector in rows:
        assert path.startswith(prefix), path
        key = (os.fsdecode(path[len(prefix) :]), start, end, heading, text)
        assert key not in out, f"chunk stored twice: {key[:3]}"
        out[key] = np.frombuffer(vector, dtype=np.float32) if vector is not None else np.zeros(dim, np.float32)
    return out


def content_differences(got: dict, want: dict, atol: float = 1e-4) -> list[str]:
    """What differs between two index contents, in sentences (empty when they hold the same)."""
    problems = []
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing:
        problems.append(f"{len(missing)} chunks of the clean build are missing, e.g. {missing[0][:3]}")
    if extra:
        problems.append(f"{len(extra)} chunks are not in the clean build, e.g. {extra[0][:3]}")
    differing = [k for k in set(got) & set(want) if not np.allclose(got[k], want[k], atol=atol)]
    if differing:
        problems.append(f"{len(differing)} chunks have other vectors than in the clean build, e.g. {differing[0][:3]}")
    return problems


# -- running and killing ---------------------------------------------------------------------------


def semsearch_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    return env


def semsearch_command() -> list[str]:
    exe = Path(sys.executable).parent / "semsearch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "semsearch"]


class Watched:
    """A `semsearch` subprocess whose output is collected line by line by two threads."""

    def __init__(self, args: list[str], env: dict | None = None, prefix: list[str] | None = None):
        self.proc = subprocess.Popen(
            (prefix or []) + semsearch_command() + args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env or semsearch_env(),
            text=True,
            errors="replace",
        )
        self.stderr: list[str] = []
        self._stdout: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stdout, self._stdout), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    @property
    def stdout(self) -> str:
        return "".join(self._stdout)

    def saw(self, text: str) -> bool:
        return any(text in line for line in list(self.stderr))

    def kill(self) -> bool:
        """SIGKILL; True when the process was still running."""
        alive = self.proc.poll() is None
        if alive:
            self.proc.send_signal(signal.SIGKILL)
        self.wait()
        return alive

    def wait(self, timeout: float = WAIT) -> int:
        """The exit status, once the process has ended and all its output is read."""
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=30)
        return self.proc.returncode


def _db_counts(db: Path) -> tuple[int, int] | None:
    """(generation, stored embeddings) as a reader sees them now; None while there is no database."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            gen = int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            return gen, int(conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def _wait_until(condition, proc: Watched, what: str, timeout: float = WAIT) -> bool:
    """Poll ``condition`` until true (True) or the process ended (False); fail after ``timeout`` seconds."""
    try:
        return bool(
            eventually(
                condition, f"semsearch index reaching {what}", timeout, give_up=lambda: proc.proc.poll() is not None
            )
        )
    except AssertionError as e:
        proc.kill()
        raise AssertionError(f"{e}; stderr: {''.join(proc.stderr)}") from None


@dataclass
class Trial:
    number: int
    trigger: str  # the event the random delay was counted from
    delay: float
    killed: bool  # False when the run finished before the kill
    phase: str  # where the index was found afterwards
    problems: list[str]
    seconds: float

    def line(self) -> str:
        what = "killed" if self.killed else "finished"
        verdict = "consistent" if not self.problems else "INCONSISTENT: " + " ".join(self.problems)
        return (
            f"trial {self.number:3d}: {what} {self.delay:.2f}s after {self.trigger:<9} "
            f"-> {self.phase:<28} {verdict} ({self.seconds:.1f}s)"
        )


def run_trial(number: int, rng: random.Random, corpus: Path, index_dir: Path, after_kill) -> Trial:
    """Start `semsearch index CORPUS`, SIGKILL it at a random moment, then call ``after_kill()`` for problems."""
    started = time.monotonic()
    db = index_dir / "index.sqlite3"
    before = _db_counts(db)
    proc = Watched(
        [
            "index",
            str(corpus),
            "--index",
            str(index_dir),
        ]
    )
    # Count the random delay from an event of the real work, not from the start of the process (which
    # spends seconds loading the model): the database appearing (a new index), the crawl done, or the
    # first vectors of this run committed.
    if before is None:
        trigger, reached = "creation", _wait_until(lambda: db.exists(), proc, "creating the index")
        delay = rng.uniform(0, 1.5)
    elif rng.random() < 0.25:
        trigger, reached = "crawl", _wait_until(lambda: proc.saw("indexing"), proc, "the crawl's end")
        delay = rng.uniform(0, 1.0)
    else:

        def embedded() -> bool:
            now = _db_counts(db)
            return now is not None and (now[1] != before[1] or now[0] > before[0] + 1)

        trigger, reached = "embedding", _wait_until(embedded, proc, "its first commit")
        delay = rng.uniform(0, 2.5)
    if reached:
        time.sleep(delay)
    killed = proc.kill()
    if not killed and proc.proc.returncode != 0:
        raise AssertionError(f"semsearch index failed on its own: {''.join(proc.stderr)}")
    problems, phase = after_kill()
    return Trial(number, trigger, delay, killed, phase, problems, time.monotonic() - started)


def phase_of(index_dir: Path, check_report) -> str:
    """Where the kill left the index, from ``semsearch check``'s report."""
    if check_report.generation == 0:
        return "created, nothing committed"
    if check_report.saved_generation is None:
        return "no vector file yet"
    if check_report.saved_generation < check_report.generation:
        return "vector file behind database"
    return "vector file current"


# -- a sequence of trials on one index ------------------------------------------------------------

QUERIES = [
    "feeding the starter before baking bread",
    "tacking the boat against the wind",
    "rotating secret tokens in the vault",
    "exponential backoff when requests fail",
    "watching a comet through the telescope",
    "pulling an espresso shot with good crema",
]


def hit_keys(index_dir: Path, corpus_root: Path, query: str, k: int = 3) -> list[tuple[tuple, float]]:
    from semsearch.search.engine import search
    from semsearch.search.hits import QueryOptions

    hits = search(index_dir, QueryOptions(text=query, k=k, show_all=True))
    return [((h.path.relative_to(corpus_root).as_posix(), h.start_line, h.end_line), h.score) for h in hits]


def hits_differences(got: list, want: list, tie: float = 1e-3) -> list[str]:
    """Rank by rank, the same hits (two hits scoring within ``tie`` of each other may swap places)."""
    if len(got) != len(want):
        return [f"{len(got)} hits instead of {len(want)}"]
    for rank, ((loc, score), (want_loc, want_score)) in enumerate(zip(got, want, strict=True)):
        if loc == want_loc and abs(score - want_score) < tie:
            continue
        near = {w for w, s in want if abs(s - score) < tie}
        if loc not in near:
            return [f"hit {rank + 1} is {loc} ({score:.4f}), the clean build has {want_loc} ({want_score:.4f})"]
    return []


@dataclass
class CleanBuild:
    content: dict
    hits: dict[str, list]


def clean_build(workdir: Path, trials: int = DEFAULT_TRIALS) -> CleanBuild:
    """Index the final corpus version in one uninterrupted run (in this process)."""
    from semsearch.index.indexer import Indexer, IndexOptions

    corpus, index_dir = workdir / "corpus", workdir / "index"
    write_version(corpus, corpus_plan(trials)[trials])
    Indexer(index_dir).run(IndexOptions(paths=[corpus]))
    return CleanBuild(index_content(index_dir, corpus), {q: hit_keys(index_dir, corpus, q) for q in QUERIES})


def inspect_after_kill(index_dir: Path) -> tuple[list[str], str]:
    """Problems found in a killed index: it must open, pass check, describe itself and answer a query."""
    from semsearch.analysis.status import index_status
    from semsearch.errors import NoIndex, SemsearchError
    from semsearch.search.engine import search
    from semsearch.search.hits import QueryOptions
    from semsearch.storage.check import check_index

    if not (index_dir / "index.sqlite3").exists():
        try:
            check_index(index_dir)
        except NoIndex:
            return [], "killed before the database"
        except SemsearchError as e:
            return [f"the index does not open: {e}"], "damaged"
    try:
        report = check_index(index_dir)
        status = index_status(index_dir)
        hits = search(index_dir, QueryOptions(text=QUERIES[0], k=3, show_all=True))
    except SemsearchError as e:
        return [f"the index does not open: {e}"], "damaged"
    problems = list(report.problems)
    if status.chunks != report.chunks or status.files != report.files:
        problems.append(f"status counts ({status.files} files, {status.chunks} chunks) differ from check's")
    if report.chunks and not hits:
        problems.append(f"a query found nothing in {report.chunks} chunks")
    return problems, phase_of(index_dir, report)


@dataclass
class SequenceResult:
    trials: list[Trial]
    final_problems: list[str]

    @property
    def inconsistent(self) -> int:
        return sum(1 for t in self.trials if t.problems)


def run_sequence(seed: int, workdir: Path, clean: CleanBuild, trials: int = DEFAULT_TRIALS, log=None) -> SequenceResult:
    """``trials`` kills on one fresh index, then an uninterrupted run compared with ``clean``."""
    from semsearch.index.indexer import Indexer, IndexOptions
    from semsearch.storage.check import check_index

    rng = random.Random(seed)
    plan = corpus_plan(trials)
    corpus, index_dir = workdir / "corpus", workdir / "index"
    done: list[Trial] = []
    for i in range(trials):
        write_version(corpus, plan[i])
        trial = run_trial(i + 1, rng, corpus, index_dir, lambda: inspect_after_kill(index_dir))
        done.append(trial)
        if log:
            log(trial.line())
    write_version(corpus, plan[trials])
    Indexer(index_dir).run(IndexOptions(paths=[corpus]))
    final = list(check_index(index_dir).problems)
    final += content_differences(index_content(index_dir, corpus), clean.content)
    for query, want in clean.hits.items():
        final += [f"query {query!r}: {d}" for d in hits_differences(hit_keys(index_dir, corpus, query), want)]
    leftovers = [p.name for p in index_dir.iterdir() if p.name.endswith(".tmp") or p.name.endswith(".new")]
    if leftovers:
        final.append(f"files left behind by killed runs: {', '.join(sorted(leftovers))}")
    return SequenceResult(done, final)
