"""Group the index into K topics: spherical k-means (FAISS) over the stored vectors, each topic labelled by
its characteristic words (class-based TF-IDF: frequent in the topic, rare in the others) and example files."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semsearch.analysis.corpus import load_corpus, require_chunks
from semsearch.errors import UsageError
from semsearch.storage.access import open_store

SEED = 1234
ITERATIONS = 25
RESTARTS = 10  # k-means runs from different starts; the tightest clustering wins (one run often lands badly)
TERMS = 6
EXAMPLES = 3

_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
# Function words of English and the words every program has; they say nothing about a topic.
STOPWORDS = frozenset(
    """
    about above after again against all also although among and another any are aren around because been before
    being below between both but can cannot could did didn does doesn doing don down during each either else even
    ever every few for from further get gets got had has hasn have having her here hers herself him himself his how
    however into its itself just least less let like made make many may might more most much must need neither never
    next nor not now off often once one only onto other others our ours ourselves out over own per quite rather
    really same several shall she should since some still such than that the their theirs them themselves then there
    these they this those though through thus too toward under until upon use used uses using very via was wasn way
    were weren what whatever when whenever where whether which while who whom whose why will with within without
    would yet you your yours yourself yourselves def self return import true false none null class function var let
    const new elif else end http https www com org
    """.split()
)


@dataclass
class Topic:
    number: int  # 1..K, largest topic first
    size: int  # passages
    terms: list[str]
    files: list[tuple[Path, int]]  # every file with passages in the topic, most passages first
    chunk_ids: list[int] = field(default_factory=list)

    @property
    def examples(self) -> list[Path]:
        return [path for path, _ in self.files[:EXAMPLES]]


@dataclass
class TopicsReport:
    k: int
    passages: int
    topics: list[Topic]


def words(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in STOPWORDS]


def characteristic_terms(counts: list[Counter], n: int = TERMS) -> list[list[str]]:
    """For each group's word counts, the ``n`` words with the highest class-based TF-IDF:
    tf(word, group) / words in group * log(1 + mean words per group / count of the word in all groups)."""
    overall: Counter = Counter()
    for c in counts:
        overall.update(c)
    mean_words = sum(overall.values()) / max(1, len(counts))
    out = []
    for c in counts:
        total = sum(c.values()) or 1
        scored = sorted(
            ((count / total * math.log(1 + mean_words / overall[w]), w) for w, count in c.items()),
            key=lambda sw: (-sw[0], sw[1]),
        )
        out.append([w for _, w in scored[:n]])
    return out


def cluster(vectors: np.ndarray, k: int, seed: int = SEED) -> np.ndarray:
    """The topic (0..k-1) of each vector: spherical k-means, deterministic for a given seed and input order."""
    import faiss

    kmeans = faiss.Kmeans(
        vectors.shape[1],
        k,
        niter=ITERATIONS,
        nredo=RESTARTS,
        spherical=True,
        seed=seed,
        verbose=False,
        min_points_per_centroid=1,  # small indexes are fine; no warning on stderr
    )
    # One thread: k-means trains on at most 256 points per topic, and its many short parallel loops cost
    # more than they give (measured on the shared 2-core machine, 10,000 passages, K=20, ten restarts:
    # 0.7 s on one thread, 7.8 s on two).
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        kmeans.train(np.ascontiguousarray(vectors, dtype=np.float32))
    finally:
        faiss.omp_set_num_threads(threads)
    _, assigned = kmeans.index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
    return assigned[:, 0].astype(np.int64)


def find_topics(index_dir: Path, k: int, seed: int = SEED) -> TopicsReport:
    store = open_store(index_dir)
    try:
        corpus = load_corpus(store)
        require_chunks(corpus, index_dir)
        if not 2 <= k <= corpus.size:
            raise UsageError(f"-n must be between 2 and the {corpus.size} passages in the index, not {k}.")
        with store.snapshot():
            rows = store.chunk_rows([int(i) for i in corpus.ids])
    finally:
        store.close()
    assigned = cluster(corpus.vectors, k, seed)
    groups = [np.flatnonzero(assigned == c) for c in range(k)]
    groups = [g for g in groups if len(g)]  # k-means may leave a centroid without points
    groups.sort(key=lambda g: (-len(g), int(corpus.ids[g[0]])))
    counts = []
    for g in groups:
        c: Counter = Counter()
        for r in g:
            row = rows.get(int(corpus.ids[r]))
            if row is not None:
                c.update(words(f"{row.heading}\n{row.text}"))
        counts.append(c)
    labels = characteristic_terms(counts)
    topics = []
    for number, (g, terms) in enumerate(zip(groups, labels), 1):
        per_file = Counter(int(corpus.file_of[r]) for r in g)
        files = sorted(per_file.items(), key=lambda fc: (-fc[1], str(corpus.files[fc[0]])))
        topics.append(
            Topic(
                number,
                len(g),
                terms,
                [(corpus.files[f], n) for f, n in files],
                sorted(int(corpus.ids[r]) for r in g),
            )
        )
    return TopicsReport(k, corpus.size, topics)
