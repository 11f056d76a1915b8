"""Function source archives: the function's folder plus the shared core, named by content.

An archive is ``functions/<name>/`` at its root plus ``functions/hookpress/`` as
the package ``hookpress/``, minus what never runs in the cloud
(``hookpress/local/``, ``hookpress/cli/``, ``hookpress/ops/``, byte code). Its object name is a
sha256 over the sorted (path, bytes) pairs, so a changed file gives a new
name (and a redeploy) while an unchanged tree keeps the name: nothing here
depends on the clock or on file modification times.

:func:`collect` is the one list of files; the program uploads it as a
:class:`pulumi.AssetArchive` and the tests unzip :func:`build_zip` of the
very same list.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import pulumi

__all__ = ["ArchiveError", "asset_archive", "build_zip", "collect", "content_hash", "object_name"]

CORE_PACKAGE = "hookpress"
# Sub-packages of the core that only the developer's or operator's machine uses: the
# local stack, the CLI and the operations it runs. Deployed code never imports them
# (ruff's TID251 in pyproject.toml, tests/unit/test_deployed_imports.py).
EXCLUDED_CORE_PACKAGES = frozenset({"local", "cli", "ops"})
_EXCLUDED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")
# A fixed timestamp for zip entries: zip has no "no time", and the clock must not matter.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ArchiveError(pulumi.RunError):
    """A function folder is missing or incomplete; the message names what is missing."""


def _wanted(relative: PurePosixPath) -> bool:
    if any(part in _EXCLUDED_DIRS or part.startswith(".") for part in relative.parts):
        return False
    return not relative.name.endswith(_EXCLUDED_SUFFIXES)


def _walk(root: Path) -> list[tuple[PurePosixPath, Path]]:
    found: list[tuple[PurePosixPath, Path]] = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise ArchiveError(
                f"{path} is a symbolic link: function sources must be plain files, "
                "the archive is assembled from the folders themselves."
            )
        if not path.is_file():
            continue
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if _wanted(relative):
            found.append((relative, path))
    return found


def collect(function_dir: Path, core_dir: Path) -> dict[str, Path]:
    """Map each archive path to the file it comes from, sorted by archive path."""
    for required in ("main.py", "requirements.txt"):
        if not (function_dir / required).is_file():
            raise ArchiveError(
                f"{function_dir / required} is missing: every function folder needs "
                "main.py and requirements.txt."
            )
    if not (core_dir / "__init__.py").is_file():
        raise ArchiveError(f"{core_dir} is not the hookpress package (no __init__.py).")
    files: dict[str, Path] = {}
    for relative, path in _walk(function_dir):
        if relative.parts[0] == CORE_PACKAGE:
            raise ArchiveError(
                f"{function_dir} has its own {CORE_PACKAGE}/ folder, which would shadow "
                "the shared core: remove it."
            )
        files[relative.as_posix()] = path
    for relative, path in _walk(core_dir):
        if len(relative.parts) > 1 and relative.parts[0] in EXCLUDED_CORE_PACKAGES:
            continue
        files[f"{CORE_PACKAGE}/{relative.as_posix()}"] = path
    return dict(sorted(files.items()))


def content_hash(files: Mapping[str, Path]) -> str:
    """sha256 over the sorted (archive path, bytes) pairs, each length-prefixed (no collisions)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name].read_bytes()
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def object_name(function: str, files: Mapping[str, Path]) -> str:
    """The storage object name of a function's archive: its name and its content hash."""
    return f"{function}/{content_hash(files)}.zip"


def build_zip(files: Mapping[str, Path]) -> bytes:
    """A byte-for-byte reproducible zip of the files (fixed timestamps and modes, sorted)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name].read_bytes())
    return buffer.getvalue()


def asset_archive(files: Mapping[str, Path]) -> pulumi.AssetArchive:
    """The archive Pulumi uploads: one FileAsset per collected file, nothing else."""
    return pulumi.AssetArchive({name: pulumi.FileAsset(str(path)) for name, path in files.items()})
