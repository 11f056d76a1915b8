"""Source archives: what goes in, and a name that changes exactly when the code does."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from infra_harness import REPO, write_function

from infra import archive


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """functions/{hookpress,ingress} with the core's local/ and cli/ and some byte code."""
    root = tmp_path / "functions"
    core = root / "hookpress"
    (core / "local").mkdir(parents=True)
    (core / "cli").mkdir()
    (core / "backends" / "__pycache__").mkdir(parents=True)
    (core / "__init__.py").write_text('"""core"""\n')
    (core / "settings.py").write_text("X = 1\n")
    (core / "backends" / "__init__.py").write_text("")
    (core / "backends" / "gcs.py").write_text("Y = 2\n")
    (core / "backends" / "__pycache__" / "gcs.cpython-311.pyc").write_bytes(b"\0junk")
    (core / "stray.pyc").write_bytes(b"\0junk")
    (core / "local" / "__init__.py").write_text("LOCAL = True\n")
    (core / "cli" / "__init__.py").write_text("CLI = True\n")
    write_function(root / "ingress", "ingress")
    return root


def _name(root: Path) -> str:
    return archive.object_name("ingress", archive.collect(root / "ingress", root / "hookpress"))


def test_archive_holds_the_function_and_the_core(tree: Path) -> None:
    files = archive.collect(tree / "ingress", tree / "hookpress")
    assert sorted(files) == [
        "hookpress/__init__.py",
        "hookpress/backends/__init__.py",
        "hookpress/backends/gcs.py",
        "hookpress/settings.py",
        "main.py",
        "requirements.txt",
    ]


def test_archive_leaves_out_local_cli_and_byte_code(tree: Path) -> None:
    names = set(archive.collect(tree / "ingress", tree / "hookpress"))
    assert not [
        n for n in names if n.startswith(("hookpress/local/", "hookpress/cli/", "hookpress/ops/"))
    ]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_name_is_stable_when_nothing_changed(tree: Path) -> None:
    assert _name(tree) == _name(tree)


def test_name_ignores_modification_times(tree: Path) -> None:
    before = _name(tree)
    for path in tree.rglob("*.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert _name(tree) == before


def test_name_ignores_where_the_tree_lives(tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere"
    shutil.copytree(tree, copy)
    assert _name(copy) == _name(tree)


def test_name_changes_when_the_function_changes(tree: Path) -> None:
    before = _name(tree)
    (tree / "ingress" / "main.py").write_text("# changed\n", encoding="utf-8")
    assert _name(tree) != before


def test_name_changes_when_the_core_changes(tree: Path) -> None:
    before = _name(tree)
    (tree / "hookpress" / "backends" / "gcs.py").write_text("Y = 3\n")
    assert _name(tree) != before


def test_name_changes_when_requirements_change(tree: Path) -> None:
    before = _name(tree)
    (tree / "ingress" / "requirements.txt").write_text("functions-framework==3.10.1\n")
    assert _name(tree) != before


def test_name_changes_when_a_file_is_added_or_renamed(tree: Path) -> None:
    before = _name(tree)
    (tree / "hookpress" / "extra.py").write_text("")
    added = _name(tree)
    assert added != before
    (tree / "hookpress" / "extra.py").rename(tree / "hookpress" / "other.py")
    assert _name(tree) not in {before, added}


def test_name_ignores_excluded_files(tree: Path) -> None:
    before = _name(tree)
    (tree / "hookpress" / "local" / "__init__.py").write_text("LOCAL = False\n")
    (tree / "hookpress" / "backends" / "__pycache__" / "gcs.cpython-311.pyc").write_bytes(b"x")
    assert _name(tree) == before


def test_zip_is_reproducible(tree: Path) -> None:
    files = archive.collect(tree / "ingress", tree / "hookpress")
    first = archive.build_zip(files)
    for path in tree.rglob("*.py"):
        os.utime(path, None)
    assert archive.build_zip(files) == first
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        assert z.namelist() == sorted(files)
        assert z.read("hookpress/settings.py") == b"X = 1\n"


def test_missing_entry_point_is_a_sentence(tree: Path) -> None:
    (tree / "ingress" / "main.py").unlink()
    with pytest.raises(archive.ArchiveError, match=r"main\.py is missing"):
        archive.collect(tree / "ingress", tree / "hookpress")


def test_a_function_cannot_shadow_the_core(tree: Path) -> None:
    (tree / "ingress" / "hookpress").mkdir()
    (tree / "ingress" / "hookpress" / "__init__.py").write_text("")
    with pytest.raises(archive.ArchiveError, match="shadow"):
        archive.collect(tree / "ingress", tree / "hookpress")


def test_symlinks_are_refused(tree: Path) -> None:
    (tree / "ingress" / "link.py").symlink_to(tree / "hookpress" / "settings.py")
    with pytest.raises(archive.ArchiveError, match="symbolic link"):
        archive.collect(tree / "ingress", tree / "hookpress")


def test_the_real_core_archive_leaves_out_local(tmp_path: Path) -> None:
    write_function(tmp_path / "fn", "fn")
    names = set(archive.collect(tmp_path / "fn", REPO / "functions" / "hookpress"))
    assert "hookpress/settings.py" in names
    assert not [
        n for n in names if n.startswith(("hookpress/local/", "hookpress/cli/", "hookpress/ops/"))
    ]
