"""Settings come from flags > environment > project .semsearch.toml > user config file > defaults, and say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semsearch.config import ConfigError, find_project_file, resolve

pytestmark = pytest.mark.default_cutoff  # the settings as a user has them: no SEMSEARCH_MIN_SCORE


@pytest.fixture
def levels(tmp_path, isolated_config, monkeypatch):
    """A user file and a project file that both set every scalar setting, and a folder inside the project."""
    monkeypatch.delenv("SEMSEARCH_HOME", raising=False)
    isolated_config.parent.mkdir(parents=True)
    isolated_config.write_text(
        'top_k = 3\nmode = "keyword"\nchunk_size = 100\nindex = "user-index"\nmodel = "user-model"\n'
    )
    project = tmp_path / "project"
    (project / "sub" / "deeper").mkdir(parents=True)
    (project / ".semsearch.toml").write_text(
        'top_k = 4\nmode = "semantic"\nchunk_size = 120\nindex = ".semsearch-index"\nmodel = "models/mini"\n'
    )
    return isolated_config, project


def test_defaults_when_nothing_is_set(tmp_path, monkeypatch):
    monkeypatch.delenv("SEMSEARCH_HOME", raising=False)
    settings = resolve(cwd=tmp_path)
    assert (settings.top_k, settings.mode, settings.chunk_size, settings.model, settings.exclude) == (
        10,
        "hybrid",
        None,
        "all-MiniLM-L6-v2",
        [],
    )
    assert settings.index.name == "index" and all(v.source == "default" for v in settings.values.values())


def test_user_file_beats_defaults(levels, tmp_path):
    user_file, _ = levels
    settings = resolve(cwd=tmp_path)  # outside the project
    assert (settings.top_k, settings.mode, settings.chunk_size) == (3, "keyword", 100)
    assert settings.source("top_k") == f"user file {user_file}"
    # relative paths in a file are relative to that file's folder
    assert settings.index == user_file.parent / "user-index"
    assert settings.model == str(user_file.parent / "user-model")


def test_project_file_found_upward_beats_user_file(levels):
    _, project = levels
    settings = resolve(cwd=project / "sub" / "deeper")
    assert find_project_file(project / "sub" / "deeper") == project / ".semsearch.toml"
    assert (settings.top_k, settings.mode, settings.chunk_size) == (4, "semantic", 120)
    assert settings.source("mode") == f"project file {project / '.semsearch.toml'}"
    assert settings.index == project / ".semsearch-index"
    assert settings.model == str(project / "models" / "mini")


def test_environment_beats_project_file(levels):
    _, project = levels
    env = {
        "SEMSEARCH_TOP_K": "5",
        "SEMSEARCH_MODE": "hybrid",
        "SEMSEARCH_CHUNK_SIZE": "140",
        "SEMSEARCH_HOME": str(project / "env-index"),
        "SEMSEARCH_CONFIG": str(levels[0]),
    }
    settings = resolve(cwd=project, env=env)
    assert (settings.top_k, settings.mode, settings.chunk_size) == (5, "hybrid", 140)
    assert settings.index == project / "env-index"
    assert settings.source("top_k") == "env SEMSEARCH_TOP_K" and settings.source("index") == "env SEMSEARCH_HOME"
    assert settings.source("model").startswith("project file")  # not set in the environment


def test_flags_beat_everything(levels):
    _, project = levels
    env = {"SEMSEARCH_TOP_K": "5", "SEMSEARCH_HOME": str(project / "env-index"), "SEMSEARCH_CONFIG": str(levels[0])}
    settings = resolve({"top_k": 7, "index": Path("flag-index")}, cwd=project, env=env)
    assert settings.top_k == 7 and settings.source("top_k") == "flag"
    assert settings.index == project / "flag-index" and settings.source("index") == "flag"


def test_exclude_globs_add_up_across_levels(levels, monkeypatch):
    user_file, project = levels
    user_file.write_text('exclude = ["*.log"]\n')
    (project / ".semsearch.toml").write_text('exclude = ["vendor/*"]\n')
    env = {"SEMSEARCH_EXCLUDE": "*.tmp, build.txt", "SEMSEARCH_CONFIG": str(user_file)}
    settings = resolve({"exclude": ["*.bak"]}, cwd=project, env=env)
    assert settings.exclude == ["*.log", "vendor/*", "*.tmp", "build.txt", "*.bak"]
    assert [p.source for p in settings.parts["exclude"]] == [
        f"user file {user_file}",
        f"project file {project / '.semsearch.toml'}",
        "env SEMSEARCH_EXCLUDE",
        "env SEMSEARCH_EXCLUDE",
        "flag",
    ]


@pytest.mark.parametrize(
    "text, words",
    [
        ("top_k = [", "not valid TOML"),
        ("colour = true", "Unknown setting 'colour'"),
        ('mode = "fuzzy"', "use one of: hybrid, semantic, keyword"),
        ("top_k = 0", "at least 1"),
        ("chunk_size = 8", "at least 32"),
        ("exclude = [1, 2]", "list of glob strings"),
    ],
)
def test_a_bad_config_file_is_one_sentence_and_exit_2(cli, tmp_path, monkeypatch, text, words):
    (tmp_path / ".semsearch.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=words.replace("[", r"\[")):
        resolve()
    result = cli("status")
    assert result.exit_code == 2
    assert result.stderr.startswith("semsearch: ") and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_command_prints_each_setting_with_its_source(cli, levels, monkeypatch):
    user_file, project = levels
    monkeypatch.chdir(project / "sub")
    monkeypatch.setenv("SEMSEARCH_TOP_K", "6")
    data = json.loads(cli("config", "--json").stdout)
    assert data["settings"]["top_k"] == {"value": 6, "source": "env SEMSEARCH_TOP_K"}
    assert data["settings"]["mode"]["source"] == f"project file {project / '.semsearch.toml'}"
    assert data["project_file"] == str(project / ".semsearch.toml") and data["user_file"] == str(user_file)
    text = cli("config").stdout
    assert "env SEMSEARCH_TOP_K" in text and "project file" in text and str(user_file) in text


def test_query_takes_top_k_and_index_from_the_project_file(cli, corpus, monkeypatch):
    monkeypatch.delenv("SEMSEARCH_HOME", raising=False)
    # min_score = 0: every hit, whatever its relevance (the query is about nothing in the corpus)
    (corpus / ".semsearch.toml").write_text('top_k = 2\nindex = ".index"\nexclude = ["music/*"]\nmin_score = 0\n')
    monkeypatch.chdir(corpus / "kitchen")
    assert cli("index", corpus).exit_code == 0
    assert (corpus / ".index" / "index.sqlite3").is_file()  # the project's index, not the user data folder
    hits = [json.loads(line) for line in cli("query", "anything at all", "--json").stdout.splitlines()]
    assert len(hits) == 2
    assert len(cli("query", "anything at all", "--json", "-k", "4").stdout.splitlines()) == 4  # the flag wins
    status = json.loads(cli("status", "--json").stdout)
    assert status["files"] == 5  # music/guitar.txt excluded by the project file


def test_chunk_size_bounds_chunks_and_a_new_size_rechunks_unchanged_files(cli, tmp_path, isolated_home):
    from semsearch.model.spec import load_tokenizer, resolve_model

    text = "\n\n".join(
        f"Paragraph {i}. The river carries silt to the delta, where farmers plant rice in the wet season "
        f"and the birds arrive in flocks of thousands every autumn {i}."
        for i in range(12)
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "river.txt").write_text(text)
    assert cli("index", docs, "--chunk-size", "64").exit_code == 0
    tokenizer = load_tokenizer(resolve_model(None))
    from semsearch.storage.layout import IndexPaths
    from semsearch.storage.store import Store

    def chunk_texts():
        store = Store.open(IndexPaths(isolated_home))
        try:
            return [r[0] for r in store.conn.execute("SELECT text FROM chunks")]
        finally:
            store.close()

    small = chunk_texts()
    assert len(small) > 3
    assert max(len(tokenizer.encode(t).ids) for t in small) <= 64
    result = cli("index")  # no chunk size now: the model's limit (256), so every file is chunked again
    assert "1 updated" in result.stdout
    assert len(chunk_texts()) < len(small)
    assert "Index is up to date" in cli("index").stdout
