"""Artifact storage behind a small interface, with a local folder as the default implementation.

Every path is relative to the repository root and checked before use: no absolute paths, no ``..``, and after
resolving symlinks the target must still be inside the root. An object store only has to implement
``ArtifactRepository``; ``local_path`` is how a server gets files it can import, downloading if it must.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, runtime_checkable

from registry.errors import InvalidArgument, NotFound

__all__ = ["ArtifactRepository", "LocalArtifactRepository", "check_relative_path"]


def check_relative_path(path: str) -> PurePosixPath:
    """Syntactic check shared by every implementation: relative, forward slashes, no ``..`` segments."""
    if not path or "\\" in path or "\x00" in path:
        raise InvalidArgument(f"invalid artifact path {path!r}")
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("~"):
        raise InvalidArgument(f"artifact path {path!r} must be relative to the artifact root")
    if ".." in pure.parts:
        raise InvalidArgument(f"artifact path {path!r} must not contain '..'")
    return pure


@runtime_checkable
class ArtifactRepository(Protocol):
    def put(self, source: Path, path: str) -> str:
        """Copy a local file or directory to ``path``; returns the stored location."""
        ...

    def open(self, path: str) -> BinaryIO: ...

    def download(self, path: str, destination: Path) -> Path: ...

    def list(self, path: str = "") -> list[str]: ...

    def local_path(self, path: str) -> Path:
        """A local filesystem path holding the artifact (the file itself for local storage)."""
        ...

    def delete(self, path: str) -> None: ...


class LocalArtifactRepository:
    """Artifacts in a folder; ``path`` arguments are relative to it, written with forward slashes."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().absolute()

    def _resolve(self, path: str, *, allow_root: bool = False) -> Path:
        if allow_root and path in ("", "."):
            return self.root.resolve()
        pure = check_relative_path(path)
        root = self.root.resolve()
        target = (self.root / pure).resolve()
        if target != root and root not in target.parents:
            raise InvalidArgument(f"artifact path {path!r} escapes the artifact root")
        return target

    def put(self, source: Path, path: str) -> str:
        """Copy into place via a temporary sibling so a crash never leaves a half-copied artifact."""
        source = Path(source)
        if not source.exists():
            raise NotFound(f"no such file or directory: {source}")
        self.root.mkdir(parents=True, exist_ok=True)
        target = self._resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target = self._resolve(path)
        staging = target.with_name(f".{target.name}.partial")
        _remove(staging)
        if source.is_dir():
            shutil.copytree(source, staging, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, staging)
        _remove(target)
        staging.rename(target)
        return path

    def open(self, path: str) -> BinaryIO:
        target = self._resolve(path)
        if not target.is_file():
            raise NotFound(f"artifact {path!r} not found")
        return target.open("rb")

    def download(self, path: str, destination: Path) -> Path:
        target = self._resolve(path)
        if not target.exists():
            raise NotFound(f"artifact {path!r} not found")
        destination = Path(destination)
        if target.is_dir():
            shutil.copytree(target, destination, dirs_exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(target, destination)
        return destination

    def list(self, path: str = "") -> list[str]:
        """Files under ``path`` (recursively), as root-relative POSIX paths, sorted."""
        target = self._resolve(path, allow_root=True)
        if not target.exists():
            raise NotFound(f"artifact {path!r} not found")
        root = self.root.resolve()
        if target.is_file():
            return [target.relative_to(root).as_posix()]
        return sorted(p.relative_to(root).as_posix() for p in target.rglob("*") if p.is_file())

    def local_path(self, path: str) -> Path:
        target = self._resolve(path)
        if not target.exists():
            raise NotFound(f"artifact {path!r} not found")
        return target

    def delete(self, path: str) -> None:
        _remove(self._resolve(path))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
