"""Symbolic links as ripgrep treats them: followed only when they stay inside the indexed folders, unless --follow
(or the follow setting) says to follow every one, as rg -L does. Through the installed command."""

from __future__ import annotations

import json

import pytest

SECRET = "ssh private key material: correct horse battery staple"


@pytest.fixture
def linked(tmp_path):
    """A folder with a link to a secret outside it, a link to a folder outside it, and a link that stays inside."""
    outside = tmp_path / "home" / ".ssh"
    outside.mkdir(parents=True)
    (outside / "id_ed25519.txt").write_text(SECRET + "\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.md").write_text(SECRET + "\n")
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "real.md").write_text("The harbour at dawn: gulls, nets and the smell of tar.\n")
    (root / "docs" / "key.md").symlink_to(outside / "id_ed25519.txt")
    (root / "docs" / "away").symlink_to(tmp_path / "elsewhere")
    (root / "docs" / "alias.md").symlink_to("real.md")
    return root


def indexed_files(semsearch_cmd, *args) -> set[str]:
    result = semsearch_cmd("query", "private key material horse battery", "--json", "-k", "20", *args)
    assert result.returncode in (0, 1), result.stderr
    return {json.loads(line)["abspath"] for line in result.stdout.splitlines()}


def test_links_out_of_the_folder_are_not_followed_and_dry_run_says_why(semsearch_cmd, linked):
    dry = semsearch_cmd("index", "--dry-run", linked)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    for name in ("key.md", "away"):
        (line,) = [
            x
            for x in lines
            if x.endswith(f"{name}  (symbolic link leading outside the indexed folders; --follow follows it)")
        ]
        assert line.startswith("skip ")
    assert any(x.startswith("index ") and x.endswith("alias.md") for x in lines)  # stays inside: followed
    result = semsearch_cmd("index", linked)
    assert result.returncode == 0, result.stderr
    found = indexed_files(semsearch_cmd)
    assert not any(SECRET in p or p.endswith(("key.md", "notes.md")) for p in found), found
    status = json.loads(semsearch_cmd("status", "--json").stdout)
    assert status["files"] == 2  # real.md and alias.md


def test_a_link_into_another_indexed_folder_is_followed(semsearch_cmd, linked, tmp_path):
    assert semsearch_cmd("index", tmp_path / "elsewhere").returncode == 0
    assert semsearch_cmd("index", linked).returncode == 0
    found = indexed_files(semsearch_cmd)
    assert str(linked / "docs" / "away" / "notes.md") in found
    assert not any(p.endswith("key.md") for p in found)


def test_follow_flag_and_setting_follow_every_link_as_rg_dash_L(semsearch_cmd, linked, tmp_path, isolated_config):
    assert semsearch_cmd("index", "--follow", linked).returncode == 0
    found = indexed_files(semsearch_cmd)
    assert str(linked / "docs" / "key.md") in found and str(linked / "docs" / "away" / "notes.md") in found

    other = tmp_path / "other-index"
    isolated_config.parent.mkdir(parents=True, exist_ok=True)
    isolated_config.write_text("follow = true\n")
    assert semsearch_cmd("index", linked, "--index", other).returncode == 0
    assert str(linked / "docs" / "key.md") in indexed_files(semsearch_cmd, "--index", other)
    isolated_config.write_text('follow = "sometimes"\n')
    bad = semsearch_cmd("index", linked, "--index", other)
    assert bad.returncode == 2 and "true or false" in bad.stderr and "Traceback" not in bad.stderr
