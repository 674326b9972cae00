"""The on-disk layout of a logged model, and the checks made before anything is written.

::

    models/<model_id>/
        model.json           manifest: which file is the agent, where the rest is (read by the runtime loader)
        <code file>          the agent's code file, under its own name
        code/<name>          extra code paths (folders or files), each under its own name
        <config file>        optional agent config, under its own name
        requirements.txt     optional
        input_example.json   optional, used to check that the model answers before it is READY

The manifest is plain JSON rather than MLflow's ``MLmodel`` YAML: MLflow folders are imported, not imitated.
Its ``sys_path`` lists the folders the loader puts on ``sys.path``: ``code/`` itself, as MLflow does (so
``code_paths=["lib/helpers"]`` gives ``import helpers``), then each code path folder that is not a package (a
plain folder of modules, whose modules were imported by their own names before ``code/`` was added). Models
logged before ``sys_path`` existed had each code path put on ``sys.path`` itself, and still load that way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.entities import GitSource
from registry.errors import InvalidArgument, NotFound

__all__ = [
    "CODE_DIR",
    "INPUT_EXAMPLE_FILE",
    "MANIFEST_FILE",
    "REQUIREMENTS_FILE",
    "ModelFiles",
    "git_source",
    "read_manifest",
]

MANIFEST_FILE = "model.json"
CODE_DIR = "code"
REQUIREMENTS_FILE = "requirements.txt"
INPUT_EXAMPLE_FILE = "input_example.json"
_RESERVED = {MANIFEST_FILE, CODE_DIR, REQUIREMENTS_FILE, INPUT_EXAMPLE_FILE}
GIT_TIMEOUT_S = 5.0


def _existing(path: Path | str, what: str, *, directory: bool | None) -> Path:
    """``path`` made absolute, once it exists and is a directory (True), a file (False) or either (None)."""
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise NotFound(f"{what} {str(path)!r} does not exist")
    if directory and not resolved.is_dir():
        raise InvalidArgument(f"{what} {str(path)!r} is not a directory")
    if directory is False and not resolved.is_file():
        raise InvalidArgument(f"{what} {str(path)!r} is not a file")
    return Path(os.path.abspath(resolved))  # normalised, not resolved: a symlinked folder keeps its name


def _check_links(folder: Path) -> None:
    """Refuse a code folder holding a symbolic link to a folder, or to a file outside it: logging copies what
    links point to, and a link out of the folder would copy what it points to (a secret, ``/tmp`` whole, or
    the folder itself, forever) into the artifact store."""
    if not folder.is_dir():
        return
    root = folder.resolve()
    for parent, dirs, files in os.walk(folder):  # does not follow links to folders
        for name in dirs + files:
            path = Path(parent, name)
            if not path.is_symlink():
                continue
            target = path.resolve()
            if path.is_dir() or not target.is_relative_to(root):
                raise InvalidArgument(
                    f"code path {str(folder)!r}: {str(path)!r} is a symbolic link to {str(target)!r}; only "
                    "links to files inside the folder are copied: copy what it points to in, or remove it"
                )


@dataclass(frozen=True)
class ModelFiles:
    """Checked inputs of ``log_model``: building one validates all, so a bad argument writes nothing."""

    code: Path
    code_paths: list[Path] = field(default_factory=list)
    config: Path | None = None
    requirements: list[str] | None = None
    input_example: Any = None

    @classmethod
    def check(
        cls,
        code: Path | str,
        *,
        code_paths: Sequence[Path | str] = (),
        config: Path | str | None = None,
        requirements: Path | str | Sequence[str] | None = None,
        input_example: Any = None,
    ) -> ModelFiles:
        code_file = _existing(code, "code file", directory=False)
        if code_file.suffix != ".py":
            raise InvalidArgument(f"code file {str(code)!r} must be a .py file")
        sources = [_existing(p, "code path", directory=None) for p in code_paths]
        for source in sources:
            _check_links(source)
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"code paths must have distinct names, got {names}")
        config_file = _existing(config, "config file", directory=False) if config is not None else None
        if config_file is not None and config_file.name in _RESERVED | {code_file.name}:
            raise InvalidArgument(f"config file name {config_file.name!r} clashes with the model layout")
        if input_example is not None:
            try:
                json.dumps(input_example)
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(f"input_example is not JSON-serializable: {exc}") from exc
        return cls(code_file, sources, config_file, _requirements(requirements), input_example)

    def stage(self, destination: Path, manifest: Mapping[str, Any]) -> None:
        """Lay the model out in ``destination`` (a fresh directory) and write its manifest last."""
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.code, destination / self.code.name)
        entries: dict[str, Any] = {"code": self.code.name, "code_paths": [], "sys_path": [], "config": None}
        if self.code_paths:
            entries["sys_path"].append(CODE_DIR)
        for source in self.code_paths:
            target = destination / CODE_DIR / source.name
            entries["code_paths"].append(f"{CODE_DIR}/{source.name}")
            if source.is_file():
                target.parent.mkdir(exist_ok=True)
                shutil.copy2(source, target)
                continue
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            if not (source / "__init__.py").is_file():
                entries["sys_path"].append(f"{CODE_DIR}/{source.name}")
        if self.config is not None:
            shutil.copy2(self.config, destination / self.config.name)
            entries["config"] = self.config.name
        entries["requirements"] = self._write_requirements(destination)
        entries["input_example"] = None
        if self.input_example is not None:
            (destination / INPUT_EXAMPLE_FILE).write_text(json.dumps(self.input_example, indent=2))
            entries["input_example"] = INPUT_EXAMPLE_FILE
        body = {"format_version": 1, **manifest, **entries}
        (destination / MANIFEST_FILE).write_text(json.dumps(body, indent=2, sort_keys=True))

    def _write_requirements(self, destination: Path) -> str | None:
        if self.requirements is None:
            return None
        (destination / REQUIREMENTS_FILE).write_text("".join(f"{line}\n" for line in self.requirements))
        return REQUIREMENTS_FILE


def _requirements(value: Path | str | Sequence[str] | None) -> list[str] | None:
    """A path to a requirements file, or the requirement lines themselves."""
    if value is None:
        return None
    if isinstance(value, Path | str):
        text = _existing(value, "requirements file", directory=False).read_text()
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [str(line).strip() for line in value if str(line).strip()]


def read_manifest(model_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((model_dir / MANIFEST_FILE).read_text())
    except FileNotFoundError as exc:
        raise NotFound(f"{model_dir} has no {MANIFEST_FILE}") from exc
    except ValueError as exc:
        raise InvalidArgument(f"{model_dir / MANIFEST_FILE} is not valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidArgument(f"{model_dir / MANIFEST_FILE} is not a JSON object")
    return data


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_source(path: Path) -> GitSource | None:
    """The commit and dirty flag of the checkout holding ``path``; None outside git or without git."""
    folder = path if path.is_dir() else path.parent
    commit = _git(["rev-parse", "HEAD"], folder)
    if not commit:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], folder)
    return GitSource(commit=commit.strip(), dirty=bool(status and status.strip()))
