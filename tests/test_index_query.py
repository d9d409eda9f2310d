"""The first path a user takes, in-process through the CLI: index, query, re-index, remove, status."""

from __future__ import annotations

import json
import re

from conftest import write_corpus


def embedded(output: str) -> int:
    return int(re.search(r"(\d+) chunks embedded", output).group(1))


def hits_json(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_finds_a_file_by_meaning_without_shared_words(cli, corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    assert cli("index", ".").exit_code == 0
    # none of these words appear in sourdough.txt
    result = cli("query", "baking a loaf of bread at home", "--json")
    assert result.exit_code == 0
    hits = hits_json(result)
    assert hits[0]["path"] == "kitchen/sourdough.txt"
    result = cli("query", "what should I pack for a trip abroad", "-l")
    assert result.stdout.splitlines()[0] == "travel/checklist.rst"


def test_second_run_embeds_nothing_and_says_so(cli, corpus):
    first = cli("index", corpus)
    assert embedded(first.stdout) > 0
    second = cli("index", corpus)
    assert second.exit_code == 0
    assert embedded(second.stdout) == 0
    assert "up to date" in second.stdout
    assert "6 unchanged" in second.stdout


def test_edited_file_embeds_only_its_new_chunks(cli, corpus):
    cli("index", corpus)
    garden = corpus / "garden/tomatoes.md"
    garden.write_text(
        garden.read_text() + "\n## Pests\n\nAphids on the roses again; ladybirds eat them if left alone.\n"
    )
    result = cli("index", corpus)
    assert "1 updated" in result.stdout
    assert embedded(result.stdout) == 1  # the unchanged tomato section keeps its vector
    hits = hits_json(cli("query", "insects eating my flowers", "--json", "-k", "1"))
    assert hits[0]["path"].endswith("garden/tomatoes.md") and "Aphids" in hits[0]["text"]


def test_touched_but_unchanged_file_is_not_reembedded(cli, corpus):
    cli("index", corpus)
    path = corpus / "music/guitar.txt"
    path.write_text(path.read_text())  # same bytes, new modification time
    result = cli("index", corpus)
    assert embedded(result.stdout) == 0
    assert "0 updated" in result.stdout


def test_deleted_file_disappears_from_results(cli, corpus):
    cli("index", corpus)
    query = ("query", "learning to play an instrument", "--json")
    assert any(h["path"].endswith("music/guitar.txt") for h in hits_json(cli(*query)))
    (corpus / "music/guitar.txt").unlink()
    result = cli("index", corpus)
    assert "1 removed" in result.stdout
    assert not any(h["path"].endswith("guitar.txt") for h in hits_json(cli(*query)))


def test_two_roots_and_removing_one(cli, tmp_path):
    a = write_corpus(tmp_path / "a", {"bread.txt": "Knead the dough, let it rise, bake it in a hot oven."})
    b = write_corpus(tmp_path / "b", {"boat.txt": "We sailed the small boat across the bay when the wind dropped."})
    cli("index", a)
    cli("index", b)
    status = json.loads(cli("status", "--json").stdout)
    assert set(status["roots"]) == {str(a), str(b)} and status["files"] == 2
    # re-indexing one root leaves the other alone
    (b / "boat.txt").unlink()
    assert "0 removed" in cli("index", a).stdout
    assert json.loads(cli("status", "--json").stdout)["files"] == 2
    result = cli("remove", a)
    assert result.exit_code == 0 and "1 files" in result.stdout
    status = json.loads(cli("status", "--json").stdout)
    assert status["roots"] == [str(b)] and status["files"] == 1
    assert cli("query", "baking bread", "-l").stdout.strip().endswith("boat.txt")


def test_index_without_paths_updates_every_root(cli, corpus):
    cli("index", corpus)
    (corpus / "new.txt").write_text("The cat sleeps on the warm windowsill all afternoon.")
    result = cli("index")
    assert result.exit_code == 0 and "1 added" in result.stdout


def test_json_files_only_path_filter_and_exit_status(cli, corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    cli("index", ".")
    hits = hits_json(cli("query", "network failures", "--json", "-k", "3"))
    assert len(hits) == 3
    top = hits[0]
    assert top["path"] == "code/retry.py"
    assert set(top) >= {"path", "start_line", "end_line", "score", "text"}
    assert 1 <= top["start_line"] <= top["end_line"]
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    files = cli("query", "anything at all", "-l", "-k", "50").stdout.splitlines()
    assert len(files) == len(set(files)) == 6
    only_md = hits_json(cli("query", "keys", "--json", "--path", "*.md"))
    assert only_md and all(h["path"].endswith(".md") for h in only_md)
    only_dir = hits_json(cli("query", "keys", "--json", "--path", "garden/*"))
    assert only_dir and all(h["path"].startswith("garden/") for h in only_dir)
    none = cli("query", "keys", "--min-score", "0.99")
    assert none.exit_code == 1 and none.stdout == ""
    assert cli("query", "keys", "--path", "*.nothing").exit_code == 1


def test_text_output_is_grep_like_with_highlighted_snippet(cli, corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    cli("index", ".")
    out = cli("query", "rotate the API keys", "-k", "1").stdout
    first = out.splitlines()[0]
    assert re.match(r"ops/credentials\.md:\d+(-\d+)?\s+[01]\.\d{2}\s+Credentials > Rotating API keys", first)
    assert "Rotating API keys" in out and "Service keys expire" in out


def test_query_words_are_highlighted_in_snippets():
    from semsearch.output.hits import highlight_pieces, query_terms

    line = "Rotating the API keys every quarter"
    pieces = highlight_pieces(line, query_terms("rotate the api keys"))
    assert "".join(text for text, _ in pieces) == line
    assert {text for text, style in pieces if style} == {"Rotating", "API", "keys"}


def test_query_before_any_index_is_a_clear_error(cli, isolated_home):
    result = cli("query", "anything")
    assert result.exit_code == 2
    assert "No index" in result.stderr and "semsearch index" in result.stderr
    assert "Traceback" not in result.stderr
    assert not isolated_home.exists()


def test_missing_path_is_a_clear_error_and_changes_nothing(cli, corpus, isolated_home):
    cli("index", corpus)
    before = json.loads(cli("status", "--json").stdout)
    result = cli("index", corpus / "nope")
    assert result.exit_code == 2 and "No such file or folder" in result.stderr
    after = json.loads(cli("status", "--json").stdout)
    assert after["roots"] == before["roots"] and after["generation"] == before["generation"]


def test_remove_unknown_path_is_an_error(cli, corpus):
    cli("index", corpus)
    result = cli("remove", corpus.parent / "elsewhere")
    assert result.exit_code == 2 and "Nothing in the index" in result.stderr


def test_status_reports_counts_and_model(cli, corpus, isolated_home):
    cli("index", corpus)
    status = json.loads(cli("status", "--json").stdout)
    assert status["index_dir"] == str(isolated_home)
    assert status["model"] == "all-MiniLM-L6-v2" and status["dim"] == 384
    assert status["files"] == 6 and status["chunks"] >= 6
    assert status["size_bytes"] > 0 and status["updated_at"] > 0 and status["vectors_current"]
    text = cli("status").stdout
    assert "all-MiniLM-L6-v2" in text and str(corpus) in text


def test_index_option_overrides_the_environment(cli, corpus, tmp_path, isolated_home):
    other = tmp_path / "elsewhere"
    assert cli("index", corpus, "--index", other).exit_code == 0
    assert (other / "index.sqlite3").exists() and not isolated_home.exists()
    assert cli("query", "bread", "--index", other).exit_code == 0
    assert cli("query", "bread").exit_code == 2  # the default index does not exist


def test_model_mismatch_is_refused_and_changes_nothing(cli, corpus, tmp_path):
    cli("index", corpus)
    import shutil

    from semsearch.model.spec import default_model_path

    other = tmp_path / "other-model"
    shutil.copytree(default_model_path(), other)
    cfg = other / "sentence_bert_config.json"
    cfg.write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    before = json.loads(cli("status", "--json").stdout)
    result = cli("index", corpus, "--model", other)
    assert result.exit_code == 2
    assert "built with the model 'all-MiniLM-L6-v2'" in result.stderr and "--change-model" in result.stderr
    assert json.loads(cli("status", "--json").stdout)["generation"] == before["generation"]
    # and the way out it names works
    result = cli("index", corpus, "--model", other, "--change-model")
    assert result.exit_code == 0 and embedded(result.stdout) > 0
    assert json.loads(cli("status", "--json").stdout)["model"] == "other-model"


def test_skips_binary_large_and_ignored_files(cli, tmp_path):
    root = write_corpus(
        tmp_path / "proj",
        {
            "notes.md": "# Notes\n\nThe quarterly report is due on Friday.",
            "secret.txt": "ignored by gitignore: the launch codes",
            "node_modules/lib/readme.md": "a dependency's readme about left padding",
            ".hidden/diary.txt": "hidden folder text about a picnic",
            "build/out.txt": "generated build output",
        },
    )
    (root / ".gitignore").write_text("secret.txt\n")
    (root / "blob.txt").write_bytes(b"abc\x00def" * 100)
    (root / "big.txt").write_text("large file " * 200_000)  # ~2.2 MB
    result = cli("index", root, "--max-size", "1", "-v")
    assert result.exit_code == 0
    assert "1 added" in result.stdout.replace("2 added", "") or "2 added" in result.stdout
    status = json.loads(cli("status", "--json").stdout)
    files = cli("query", "anything", "-l", "-k", "50").stdout
    assert "notes.md" in files
    for absent in ("secret.txt", "readme.md", "diary.txt", "out.txt", "big.txt", "blob.txt"):
        assert absent not in files
    assert "binary file" in result.stderr and "size cap" in result.stderr
    assert status["files_skipped"] == 1  # the binary one is recorded so it is not re-read


def test_dry_run_lists_without_indexing(cli, corpus, isolated_home):
    (corpus / "node_modules").mkdir()
    (corpus / "node_modules" / "x.js").write_text("x")
    result = cli("index", corpus, "--dry-run")
    assert result.exit_code == 0
    assert "index  " + str(corpus / "music/guitar.txt") in result.stdout
    assert "node_modules" in result.stdout and "dependency, cache or build folder" in result.stdout
    assert not isolated_home.exists()


def test_files_of_any_text_suffix_are_indexed_and_dry_run_says_why_others_are_not(cli, tmp_path, isolated_home):
    root = write_corpus(
        tmp_path / "proj",
        {
            "parser.zig": "pub fn parseFlags(args: []const u8) void {\n    // reads the command line switches\n}\n",
            "build.unknownsuffix": "The rocket engine burns liquid oxygen and kerosene.\n",
        },
    )
    (root / "blob.unknownsuffix2").write_bytes(b"abc\x00def" * 100)
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    dry = cli("index", root, "--dry-run")
    assert dry.exit_code == 0
    assert "index  " + str(root / "parser.zig") in dry.stdout
    assert "index  " + str(root / "build.unknownsuffix") in dry.stdout
    assert f"skip   {root / 'blob.unknownsuffix2'}  (binary file)" in dry.stdout
    assert f"skip   {root / 'photo.jpg'}  (binary file type (.jpg))" in dry.stdout
    assert "2 files would be indexed, 2 skipped" in dry.stdout
    assert not isolated_home.exists()
    assert cli("index", root).exit_code == 0
    hits = cli("query", "liquid oxygen kerosene", "-l", "-k", "1").stdout
    assert "build.unknownsuffix" in hits
    hits = cli("query", "parseFlags", "-l", "-k", "1", "--mode", "keyword").stdout
    assert "parser.zig" in hits


def test_unchanged_files_are_not_even_read(cli, corpus, monkeypatch):
    import os

    import semsearch.index.indexer as indexer_module

    cli("index", corpus)
    (corpus / "music/guitar.txt").write_text("Practising the piano instead: scales and arpeggios.")
    opened: list[str] = []
    real_os_open = os.open

    def counting_open(file, *args, **kwargs):
        if str(file).startswith(str(corpus)):
            opened.append(str(file))
        return real_os_open(file, *args, **kwargs)

    monkeypatch.setattr(indexer_module.os, "open", counting_open)  # the indexer opens files with os.open
    result = cli("index", corpus)
    assert "1 updated" in result.stdout and "5 unchanged" in result.stdout
    assert opened == [str(corpus / "music/guitar.txt")]
