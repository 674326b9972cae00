"""Load an agent from a code file or a model folder, with one clear error for each way it can fail.

The file is imported under a fresh module name. Its folder and its code paths go to the front of ``sys.path``
and stay there, as MLflow keeps a model's code paths for the life of the process: a module the agent imports
late (inside ``predict``) is found as it was at load. A load that fails leaves ``sys.path`` and
``sys.modules`` as they were.

Agents loaded in one process (a canary's champion and challenger, the versions an alias moves through) share
one module namespace. Before each load, the modules its folders hold that an earlier load imported from the
folders the loader added are dropped from ``sys.modules``, so every agent imports its own ``helpers`` at load,
never another agent's cached one (MLflow would reuse the cached one). An import made later gets the copy of
the agent loaded last; when two agents' same-named modules differ, a warning says so as the second loads.
So does a module named like one of the standard library or an installed package.
"""

from __future__ import annotations

import filecmp
import hashlib
import importlib.machinery
import importlib.util
import itertools
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from registry.errors import RegistryError
from registry.model_files import CODE_DIR, MANIFEST_FILE, read_manifest
from runtime.agents.context import call_load_context, config_file_values, mlflow_model_config
from runtime.agents.registration import capture_agent
from runtime.errors import AgentLoadError

__all__ = ["find_code_file", "load_agent", "load_agent_file"]

log = logging.getLogger("runtime.agents")

_counter = itertools.count()
# Files a model folder may name its agent code by, in order of preference.
_CODE_NAMES = ("agent.py", "model.py", "main.py")
_MODULE_SUFFIXES = tuple(importlib.machinery.all_suffixes())


@dataclass
class _Folder:
    """A folder the loader put on ``sys.path``: the agent that first needed it, and its top-level modules."""

    agent: Path
    modules: dict[str, Path]  # module name -> its file or package folder
    imported_before: frozenset[str]  # modules already imported from here before the loader added it


_lock = threading.Lock()  # one load at a time changes sys.path, sys.modules and the records below
_folders: dict[Path, _Folder] = {}
_compared: set[tuple[Path, Path]] = set()  # same-named modules of two folders, compared once


def load_agent_file(path: str | Path, code_paths: Iterable[str | Path] = ()) -> Any:
    """Import ``path`` and return the object it passed to ``set_agent``."""
    file = Path(path)
    if not file.exists():
        raise AgentLoadError(f"agent file not found: {file}")
    if not file.is_file() or file.suffix != ".py":
        raise AgentLoadError(f"not a Python file: {file}")
    folders = list(dict.fromkeys([file.parent.resolve(), *(Path(p).resolve() for p in code_paths)]))
    module_name = f"_runtime_agent_{next(_counter)}_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise AgentLoadError(f"cannot import {file}")
    with _lock:
        saved_path = sys.path
        managed, added = _claim(folders, file)
        names = {name for folder in managed for name in _folders[folder].modules}
        dropped = _drop_agent_modules(names)
        sys.path = [*(str(f) for f in managed), *(p for p in sys.path if p not in {str(f) for f in managed})]
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            with capture_agent() as captured:
                try:
                    spec.loader.exec_module(module)
                except SyntaxError as exc:
                    raise AgentLoadError(
                        f"{file} has a syntax error at line {exc.lineno}: {exc.msg}"
                    ) from exc
                except Exception as exc:
                    where = _last_frame_in(file, exc)
                    raise AgentLoadError(
                        f"{file} raised on import{where}: {type(exc).__name__}: {exc}"
                    ) from exc
                agent = captured[-1] if captured else _mlflow_model()
                captured.clear()
            if agent is None:
                raise AgentLoadError(f"{file} never calls set_agent(agent)")
        except BaseException:
            sys.modules.pop(module_name, None)
            _drop_agent_modules(names)  # what this load imported before it failed
            for folder in added:
                del _folders[folder]
            for key, earlier in dropped.items():
                sys.modules.setdefault(key, earlier)
            sys.path = saved_path
            raise
        _warn_of_shadowing(file, managed)
    return agent


def _claim(folders: list[Path], file: Path) -> tuple[list[Path], list[Path]]:
    """Record what the folders the loader manages hold: those it added before, and those not yet on
    ``sys.path`` (one already there for another reason, such as the working directory, is left alone).
    Returns the managed folders and the ones new among them."""
    managed = [f for f in folders if f in _folders or str(f) not in sys.path]
    added = [f for f in managed if f not in _folders]
    for folder in managed:
        modules = _modules_in(folder, skip={file.stem, CODE_DIR} if folder == folders[0] else set())
        known = _folders.get(folder)
        if known is None:
            before = frozenset(name for name, path in modules.items() if _imported_from(name, path))
            _folders[folder] = _Folder(file, modules, before)
            _warn_of_hiding(folder, modules)
        else:
            known.modules = modules
    return managed, added


def find_code_file(folder: Path) -> Path:
    for name in _CODE_NAMES:
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(folder.glob("*.py"))
    if len(candidates) == 1:
        return candidates[0]
    expected = ", ".join(_CODE_NAMES)
    raise AgentLoadError(f"no agent code file in {folder} (expected one of {expected})")


def load_agent(target: str | Path) -> Any:
    """A ``.py`` file, or a folder: a logged model (``model.json``), an MLflow model (``MLmodel``), or a
    folder holding one agent file."""
    path = Path(target)
    if path.is_dir():
        if (path / MANIFEST_FILE).is_file():
            return _load_logged_model(path)
        if (path / "MLmodel").is_file():
            from runtime.agents.mlflow_model import load_mlflow_model

            return load_mlflow_model(path)
        code_dir = path / "code"
        extra = [code_dir] if code_dir.is_dir() else []
        agent = load_agent_file(find_code_file(path), code_paths=extra)
    else:
        agent = load_agent_file(path)
    call_load_context(agent, {}, {})  # a file or folder logged nowhere: no config, no artifacts
    return agent


def _load_logged_model(folder: Path) -> Any:
    try:
        manifest = read_manifest(folder)
    except RegistryError as exc:
        raise AgentLoadError(exc.message) from exc
    code = manifest.get("code")
    if not isinstance(code, str) or not (folder / code).is_file():
        raise AgentLoadError(f"{folder / MANIFEST_FILE} names no agent code file that exists")
    sys_path = manifest.get("sys_path")
    if isinstance(sys_path, list):  # code/ (MLflow's convention), then code path folders that are no package
        extra = [folder / str(p) for p in sys_path]
    else:  # logged before sys_path was written: each code path went on sys.path itself
        extra = [folder / str(p) for p in manifest.get("code_paths") or []]
    config = manifest.get("config")
    values = config_file_values(folder / config) if isinstance(config, str) and config else {}
    with mlflow_model_config(values):  # an MLflow agent's ModelConfig reads it, as under MLflow
        agent = load_agent_file(folder / code, code_paths=extra)
    call_load_context(agent, {}, values)
    return agent


def _modules_in(folder: Path, skip: set[str]) -> dict[str, Path]:
    """The top-level modules in ``folder``: ``.py`` (and compiled) files, and folders with Python in them."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return {}
    found: dict[str, Path] = {}
    for entry in entries:
        path = Path(folder, entry.name)
        if entry.is_dir():
            name = entry.name
            if name == "__pycache__" or not _has_python(path):
                continue
        elif entry.name.endswith(_MODULE_SUFFIXES):
            name = entry.name.partition(".")[0]
        else:
            continue
        if name.isidentifier() and name not in skip:
            found.setdefault(name, path)
    return found


def _has_python(folder: Path) -> bool:
    try:
        return any(p.suffix == ".py" for p in folder.iterdir())
    except OSError:
        return False


def _origins(module: ModuleType) -> list[Path]:
    """Where a module was imported from: its file, or the folders of a namespace package."""
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return [Path(file)]
    return [Path(p) for p in getattr(module, "__path__", None) or () if isinstance(p, str)]


def _imported_from(name: str, path: Path) -> bool:
    module = sys.modules.get(name)
    return module is not None and any(o == path or path in o.parents for o in _origins(module))


def _drop_agent_modules(names: set[str]) -> dict[str, ModuleType]:
    """Remove from ``sys.modules`` the modules (and submodules) called ``names`` imported from a folder the
    loader added; a module imported from elsewhere (the standard library, site-packages) is never touched."""
    doomed = {
        name
        for name in names
        if any(
            name in record.modules
            and name not in record.imported_before
            and _imported_from(name, record.modules[name])
            for record in _folders.values()
        )
    }
    if not doomed:
        return {}
    return {key: sys.modules.pop(key) for key in list(sys.modules) if key.partition(".")[0] in doomed}


def _warn_of_hiding(folder: Path, modules: dict[str, Path]) -> None:
    """Warn of a module in an agent's folder named like one of the standard library or an installed package
    (``json.py``, ``openai.py``): the folder goes first on ``sys.path``, so an import of that name made
    later gets the folder's file, and one made earlier keeps the other; either way one code imports what
    it did not mean to. Runs before the folder is on ``sys.path``, so the other is found where it is."""
    for name, path in modules.items():
        if name in sys.stdlib_module_names:
            other = "the standard library's module"
        else:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                continue
            origin = getattr(spec, "origin", None) if spec is not None else None
            if spec is None or (origin and _in_agent_folder(Path(origin).resolve())):
                continue  # another agent's: see _warn_of_shadowing
            other = f"the installed module (from {origin or 'a namespace package'})"
        log.warning(
            "%s has %s, named like %s %r: imports of %r may get either one. Rename it.",
            folder,
            path.name,
            other,
            name,
            name,
        )


def _in_agent_folder(path: Path) -> bool:
    return any(path.is_relative_to(folder) for folder in _folders)


def _warn_of_shadowing(file: Path, folders: list[Path]) -> None:
    for folder in folders:
        for name, path in _folders[folder].modules.items():
            for other_folder, other in _folders.items():
                theirs = other.modules.get(name)
                if other_folder in folders or theirs is None or name in other.imported_before:
                    continue
                if (path, theirs) in _compared:
                    continue
                _compared.add((path, theirs))
                if _same_code(path, theirs):
                    continue
                log.warning(
                    "%s and %s, loaded earlier, both have a module %r and they differ (%s, %s); "
                    "imports of it from now on, such as one inside predict, get %s. Give the modules "
                    "distinct names if both agents serve in this process.",
                    file,
                    other.agent,
                    name,
                    path,
                    theirs,
                    path,
                )


def _same_code(first: Path, second: Path) -> bool:
    try:
        if first.is_file() and second.is_file():
            return filecmp.cmp(first, second, shallow=False)
        return first.is_dir() and second.is_dir() and _digest(first) == _digest(second)
    except OSError:
        return False


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(f"{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _mlflow_model() -> Any:
    """MLflow models-from-code files call ``mlflow.models.set_model``; pick that up when mlflow is there."""
    module = sys.modules.get("mlflow.models.model")
    if module is None:
        return None
    agent = getattr(module, "__mlflow_model__", None)
    if agent is not None:
        module.__mlflow_model__ = None  # type: ignore[attr-defined]  # mlflow's own module global
    return agent


def _last_frame_in(file: Path, exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
    return f" (line {frames[-1].lineno})" if frames else ""
