"""The crawler finds what a user wants searched and skips, with a reason, what they do not."""

from __future__ import annotations

import os
from pathlib import Path

from semsearch.index.crawl import CrawlOptions, FoundFile, Skipped, crawl


def make(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def found(roots, **kw) -> set[str]:
    return {
        os.path.relpath(item.path, roots[0]) for item in crawl(roots, CrawlOptions(**kw)) if isinstance(item, FoundFile)
    }


def test_nested_gitignore_and_semsearchignore(tmp_path):
    make(
        tmp_path,
        {
            ".gitignore": "*.log\nsecret/\n",
            "a.md": "a",
            "debug.log": "x",
            "secret/key.txt": "k",
            "sub/.gitignore": "drafts/\n!keep.log\n",
            "sub/keep.log": "kept by negation",
            "sub/drafts/d.md": "d",
            "sub/b.md": "b",
            "sub/.semsearchignore": "private.md\n",
            "sub/private.md": "p",
        },
    )
    assert found([tmp_path]) == {"a.md", "sub/b.md", "sub/keep.log"}


def test_default_excludes(tmp_path):
    make(
        tmp_path,
        {
            "node_modules/x/readme.md": "x",
            "venvdir/pyvenv.cfg": "home = /usr",
            "venvdir/lib/site.py": "x",
            "dist/app.js": "x",
            "__pycache__/m.py": "x",
            "cache/CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55",
            "cache/data.txt": "x",
            ".hidden/notes.md": "x",
            "package-lock.json": "{}",
            "app.min.js": "x",
            "poetry.lock": "x",
            "src/app.js": "real code",
            "README": "readme without suffix",
            "photo.jpg": "not text",
        },
    )
    assert found([tmp_path]) == {"src/app.js", "README"}


def test_include_exclude_and_size_cap(tmp_path):
    make(tmp_path, {"a.md": "a", "b.txt": "b", "logs/c.md": "c", "big.md": "x" * 5000})
    assert found([tmp_path], include=["*.md"], max_bytes=1000) == {"a.md", "logs/c.md"}
    assert found([tmp_path], exclude=["logs"], max_bytes=1000) == {"a.md", "b.txt"}
    skipped = [i for i in crawl([tmp_path], CrawlOptions(max_bytes=1000)) if isinstance(i, Skipped)]
    assert [(s.path.name, "size cap" in s.reason) for s in skipped] == [("big.md", True)]


def test_symlink_loops_are_followed_once(tmp_path):
    make(tmp_path, {"docs/a.md": "a"})
    (tmp_path / "docs" / "loop").symlink_to(tmp_path / "docs")
    (tmp_path / "docs" / "up").symlink_to(tmp_path)
    (tmp_path / "docs" / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    items = list(crawl([tmp_path]))
    files = [i for i in items if isinstance(i, FoundFile)]
    assert [f.path.name for f in files] == ["a.md"]
    assert any(isinstance(i, Skipped) and "broken symbolic link" in i.reason for i in items)


def test_unreadable_folder_is_a_warning(tmp_path):
    make(tmp_path, {"ok.md": "fine", "locked/x.md": "x"})
    (tmp_path / "locked").chmod(0)
    try:
        items = list(crawl([tmp_path]))
    finally:
        (tmp_path / "locked").chmod(0o755)
    if os.geteuid() == 0:  # root reads anything: nothing to report, still no error
        assert {i.path.name for i in items if isinstance(i, FoundFile)} == {"ok.md", "x.md"}
    else:
        assert any(isinstance(i, Skipped) and i.reason == "permission denied" for i in items)


def test_a_file_root_is_indexed_even_when_it_would_be_ignored(tmp_path):
    make(tmp_path, {".gitignore": "*.md\n", "a.md": "a"})
    assert [i.path.name for i in crawl([tmp_path / "a.md"])] == ["a.md"]


def test_any_text_file_is_found_whatever_its_suffix_but_known_binary_types_are_not(tmp_path):
    make(
        tmp_path,
        {
            "src/main.zig": "pub fn main() void {}",
            "flake.nix": "{ outputs = { self }: {}; }",
            "Token.sol": "contract Token {}",
            "notes.weird-suffix": "plain words in a file nobody registered",
            "Jenkinsfile": "pipeline { agent any }",
            "draft.md~": "an editor's backup",
            "scratch.tmp": "a temporary file",
        },
    )
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (tmp_path / "archive.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    assert found([tmp_path]) == {"src/main.zig", "flake.nix", "Token.sol", "notes.weird-suffix", "Jenkinsfile"}
    reasons = {
        os.path.relpath(item.path, tmp_path): item.reason
        for item in crawl([tmp_path], CrawlOptions(report_skipped=True))
        if isinstance(item, Skipped)
    }
    assert reasons["logo.png"] == "binary file type (.png)"
    assert reasons["archive.zip"] == "binary file type (.zip)"
    assert reasons["draft.md~"].startswith("generated or scratch file")
    assert reasons["scratch.tmp"].startswith("generated or scratch file")
