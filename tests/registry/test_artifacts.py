from __future__ import annotations

from pathlib import Path

import pytest

from registry.artifacts import ArtifactRepository, LocalArtifactRepository
from registry.errors import InvalidArgument, NotFound


@pytest.fixture
def repo(tmp_path: Path) -> LocalArtifactRepository:
    return LocalArtifactRepository(tmp_path / "root")


def test_put_file_and_directory_then_list_open_and_download(
    repo: LocalArtifactRepository, tmp_path: Path
) -> None:
    assert isinstance(repo, ArtifactRepository)
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "mod.py").write_text("x = 1\n")
    (source / "pkg" / "__pycache__").mkdir()
    (source / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    single = tmp_path / "notes.txt"
    single.write_text("hello")

    repo.put(source, "models/m1")
    repo.put(single, "models/m1/notes.txt")

    assert repo.list("models") == ["models/m1/notes.txt", "models/m1/pkg/mod.py"]
    with repo.open("models/m1/notes.txt") as handle:
        assert handle.read() == b"hello"
    copied = repo.download("models/m1", tmp_path / "copy")
    assert (copied / "pkg" / "mod.py").read_text() == "x = 1\n"
    assert repo.local_path("models/m1") == (tmp_path / "root" / "models" / "m1").resolve()


def test_put_replaces_an_existing_artifact_whole(repo: LocalArtifactRepository, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "old.txt").write_text("old")
    (second / "new.txt").write_text("new")
    repo.put(first, "x")
    repo.put(second, "x")
    assert repo.list("x") == ["x/new.txt"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../outside", "must not contain '..'"),
        ("models/../../outside", "must not contain '..'"),
        ("/etc/passwd", "must be relative"),
        ("~/secrets", "must be relative"),
        ("models\\m1", "invalid artifact path"),
        ("", "invalid artifact path"),
    ],
)
def test_paths_escaping_the_root_are_rejected(
    repo: LocalArtifactRepository, tmp_path: Path, path: str, message: str
) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    with pytest.raises(InvalidArgument, match=message):
        repo.put(source, path)
    with pytest.raises(InvalidArgument, match=message):
        repo.local_path(path)
    assert not (tmp_path / "outside").exists()


def test_symlinks_pointing_outside_the_root_are_rejected(
    repo: LocalArtifactRepository, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    repo.root.mkdir(parents=True)
    (repo.root / "link").symlink_to(outside, target_is_directory=True)
    source = tmp_path / "f.txt"
    source.write_text("x")

    for action in (
        lambda: repo.open("link/secret.txt"),
        lambda: repo.list("link"),
        lambda: repo.put(source, "link/planted.txt"),
        lambda: repo.download("link", tmp_path / "dl"),
    ):
        with pytest.raises(InvalidArgument, match="escapes the artifact root"):
            action()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_symlinks_inside_the_root_are_followed(repo: LocalArtifactRepository, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    repo.put(source, "real/f.txt")
    (repo.root / "alias").symlink_to(repo.root / "real", target_is_directory=True)
    with repo.open("alias/f.txt") as handle:
        assert handle.read() == b"x"


def test_missing_artifacts_and_sources_are_not_found(repo: LocalArtifactRepository, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="artifact 'nope' not found"):
        repo.local_path("nope")
    with pytest.raises(NotFound, match="no such file or directory"):
        repo.put(tmp_path / "missing", "x")
