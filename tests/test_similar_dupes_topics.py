"""More like this, near-duplicates and topics, from the stored vectors of a real index of planted documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_corpus
from typer.testing import CliRunner

# Three planted topics, three files each; one file has a near copy; one file has a section on each of two topics.
PLANTED = {
    "cooking/bread.md": "# White bread\n\nMix flour, water, yeast and salt into a dough. Knead it for ten minutes, let it "
    "rise until doubled, shape a loaf and bake the bread in a hot oven until the crust is brown.\n",
    "cooking/sourdough.md": "# Sourdough bread\n\nFeed the sourdough starter the night before. Mix it with flour, water "
    "and salt, fold the dough every half hour, shape a loaf and bake the bread in a covered pot.\n",
    "cooking/rye.md": "# Rye bread\n\nRye flour makes a sticky dough: mix rye flour, water, salt and a little yeast, let "
    "the dough rise in a tin, and bake the dense loaf of bread slowly in a moderate oven.\n",
    "network/tcp.md": "# TCP\n\nTCP opens a network connection with a three-way handshake of SYN, SYN-ACK and ACK "
    "packets, then retransmits lost packets and controls congestion on the network.\n",
    "network/udp.md": "# UDP\n\nUDP sends network packets without a connection or handshake: datagrams may be lost or "
    "arrive out of order, so protocols on top of UDP handle lost packets themselves.\n",
    "network/routing.md": "# IP routing\n\nRouters forward IP packets across the network hop by hop, each choosing the "
    "next router from its routing table by the destination address of the packet.\n",
    "space/telescope.md": "# Telescopes\n\nA reflecting telescope gathers starlight with a curved mirror. Point it at "
    "Jupiter on a clear night to see the planet's moons and the bands of cloud on the planet.\n",
    "space/saturn.md": "# Saturn\n\nSaturn is the ringed planet: through a small telescope its rings and its largest "
    "moon, Titan, are visible on a clear night, a little fainter than Jupiter.\n",
    "space/mars.md": "# Mars\n\nMars is the red planet. Through a telescope on a clear night at opposition you can see "
    "its polar ice caps and dark surface markings; its two moons are tiny.\n",
    "mixed/notes.md": "# Notes\n\n## Baking day\n\nThe sourdough starter was fed in the morning; by the evening the "
    "dough had risen well, and the two loaves came out of the oven with a crackling crust.\n\n"
    "## Star party\n\nAt midnight we set up the telescope in the field and watched Saturn's rings and the moons of "
    "Jupiter until clouds covered the sky.\n",
}
COPY = "cooking/bread-copy.md"
GROUPS = {
    "cooking": ["cooking/bread.md", "cooking/sourdough.md", "cooking/rye.md", COPY],
    "space": ["space/telescope.md", "space/saturn.md", "space/mars.md"],
    "network": ["network/tcp.md", "network/udp.md", "network/routing.md"],
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """An index of the planted corpus (built once for this module); returns (docs folder, index folder, run)."""
    from semsearch.cli.app import app

    root = tmp_path_factory.mktemp("planted")
    docs = write_corpus(root / "docs", PLANTED)
    (docs / COPY).write_text(PLANTED["cooking/bread.md"].replace("ten minutes", "ten full minutes"))
    index = root / "index"
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, [*map(str, args), "--index", str(index)], catch_exceptions=False)

    result = run("index", docs)
    assert result.exit_code == 0, result.output
    return docs, index, run


def rel(docs: Path, path: str) -> str:
    return str(Path(path).relative_to(docs))


def test_similar_excludes_the_file_and_ranks_its_near_copy_first(planted, monkeypatch):
    docs, _, run = planted
    monkeypatch.chdir(docs)
    result = run("similar", "cooking/bread.md", "--format", "json", "-k", "5")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    files = [f["path"] for f in data["files"]]
    passages = [p["path"] for p in data["passages"]]
    assert files[0] == COPY and passages[0] == COPY
    assert "cooking/bread.md" not in files + passages
    assert data["files"][0]["score"] > 0.95
    # the next files are the other breads (or the notes of a baking day), not planets or packets
    assert set(files[1:3]) <= {"cooking/sourdough.md", "cooking/rye.md", "mixed/notes.md"}


def test_similar_at_a_line_compares_the_passage_at_that_line(planted, monkeypatch):
    docs, _, run = planted
    monkeypatch.chdir(docs)
    lines = PLANTED["mixed/notes.md"].split("\n")
    star_line = lines.index("## Star party") + 3  # inside the astronomy section
    bake_line = lines.index("## Baking day") + 2
    stars = json.loads(run("similar", f"mixed/notes.md:{star_line}", "--json").stdout.splitlines()[-1])
    passages = [
        json.loads(line) for line in run("similar", f"mixed/notes.md:{star_line}", "--json").stdout.splitlines()
    ]
    passages = [p for p in passages if p["kind"] == "passage"]
    assert passages[0]["path"].startswith("space/") and stars["kind"] == "passage"
    baking = [
        json.loads(line)
        for line in run("similar", f"mixed/notes.md:{bake_line}", "--format", "jsonl").stdout.splitlines()
    ]
    first = next(p for p in baking if p["kind"] == "passage")
    assert first["path"].startswith("cooking/")
    assert all(p["path"] != "mixed/notes.md" for p in baking)
    # a location as query prints it works too (path:start-end)
    assert run("similar", f"mixed/notes.md:{bake_line}-{bake_line + 1}", "--format", "files").exit_code == 0


def test_similar_refuses_a_file_outside_the_index_and_a_line_past_its_end(planted, monkeypatch):
    docs, _, run = planted
    monkeypatch.chdir(docs)
    result = run("similar", "nowhere.md")
    assert result.exit_code == 2 and "is not in the index" in result.stderr
    result = run("similar", "cooking/rye.md:999")
    assert result.exit_code == 2 and "outside the indexed text" in result.stderr


def test_dupes_finds_the_planted_duplicate_and_nothing_else(planted):
    docs, _, run = planted
    result = run("dupes", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(rel(docs, f["a_abspath"]), rel(docs, f["b_abspath"])) for f in data["files"]] == [
        (COPY, "cooking/bread.md")
    ]
    pairs = {frozenset((rel(docs, p["a"]["abspath"]), rel(docs, p["b"]["abspath"]))) for p in data["passages"]}
    assert pairs == {frozenset((COPY, "cooking/bread.md"))}
    assert data["passages"][0]["score"] >= 0.95
    text = run("dupes").stdout
    assert "Near-duplicate files (1)" in text and "bread-copy.md" in text
    bad = run("dupes", "--threshold", "1.5")
    assert bad.exit_code == 2 and "cosine similarity" in bad.stderr


def test_dupes_reports_nothing_when_the_threshold_is_above_every_pair(planted):
    docs, _, run = planted
    result = run("dupes", "--threshold", "0.9999999", "--json")
    data = json.loads(result.stdout)
    assert data["passages"] == [] and data["files"] == []  # the copy has an edit, so it scores below 1
    assert result.exit_code == 1
    assert "No near-duplicates at or above" in run("dupes", "--threshold", "0.9999999").stdout


def test_topics_put_each_planted_group_in_one_topic_of_its_own(planted):
    docs, _, run = planted
    result = run("topics", "-n", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["topics"]) == 3 and sum(t["passages"] for t in data["topics"]) == data["passages"]
    topic_of: dict[str, set[int]] = {}
    for t in data["topics"]:
        for f in t["files"]:
            topic_of.setdefault(rel(docs, f["abspath"]), set()).add(t["topic"])
    group_topic = {}
    for group, files in GROUPS.items():
        seen = set().union(*(topic_of[f] for f in files))
        assert len(seen) == 1, f"{group} is split across topics {seen}"
        group_topic[group] = seen.pop()
    assert len(set(group_topic.values())) == 3
    # labels are characteristic words of the group, and the examples are files of it
    by_number = {t["topic"]: t for t in data["topics"]}
    space_words = {"telescope", "planet", "jupiter", "saturn", "mars", "moons", "moon", "night", "clear", "rings"}
    assert len(space_words & set(by_number[group_topic["space"]]["terms"])) >= 2
    assert (
        len(
            {"tcp", "udp", "packets", "network", "connection", "handshake", "routers", "router"}
            & set(by_number[group_topic["network"]]["terms"])
        )
        >= 2
    )
    for group, number in group_topic.items():
        examples = [
            rel(docs, str(docs / e)) if not Path(e).is_absolute() else rel(docs, e)
            for e in by_number[number]["examples"]
        ]
        assert set(examples) <= set(GROUPS[group]) | {"mixed/notes.md"}, (group, examples)
    # the same seed gives the same topics
    assert json.loads(run("topics", "-n", "3", "--json").stdout) == data
    text = run("topics", "-n", "3").stdout
    assert "passages in" in text


def test_topics_refuses_more_topics_than_passages(planted):
    _, _, run = planted
    result = run("topics", "-n", "500")
    assert result.exit_code == 2 and "between 2 and the" in result.stderr
