"""Load an agent from a code file or a model folder, with one clear error for each way it can fail.

A load never leaves half a module behind: the file is imported under a fresh module name, and its folder
(plus any extra code paths) is put on ``sys.path`` only for the duration of the import.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from registry.errors import RegistryError
from registry.model_files import MANIFEST_FILE, read_manifest
from runtime.agents.registration import capture_agent
from runtime.errors import AgentLoadError

__all__ = ["find_code_file", "load_agent", "load_agent_file"]

_counter = itertools.count()
# Files a model folder may name its agent code by, in order of preference.
_CODE_NAMES = ("agent.py", "model.py", "main.py")


def load_agent_file(path: str | Path, code_paths: Iterable[str | Path] = ()) -> Any:
    """Import ``path`` and return the object it passed to ``set_agent``."""
    file = Path(path)
    if not file.exists():
        raise AgentLoadError(f"agent file not found: {file}")
    if not file.is_file() or file.suffix != ".py":
        raise AgentLoadError(f"not a Python file: {file}")
    extra = [str(file.parent.resolve()), *(str(Path(p).resolve()) for p in code_paths)]
    module_name = f"_runtime_agent_{next(_counter)}_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise AgentLoadError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    sys.path[:0] = [p for p in extra if p not in sys.path]
    sys.modules[module_name] = module
    try:
        with capture_agent() as captured:
            try:
                spec.loader.exec_module(module)
            except SyntaxError as exc:
                raise AgentLoadError(f"{file} has a syntax error at line {exc.lineno}: {exc.msg}") from exc
            except Exception as exc:
                where = _last_frame_in(file, exc)
                raise AgentLoadError(f"{file} raised on import{where}: {type(exc).__name__}: {exc}") from exc
            agent = captured[-1] if captured else _mlflow_model()
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        sys.path[:] = saved_path
    if agent is None:
        raise AgentLoadError(f"{file} never calls set_agent(agent)")
    return agent


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
        return load_agent_file(find_code_file(path), code_paths=extra)
    return load_agent_file(path)


def _load_logged_model(folder: Path) -> Any:
    try:
        manifest = read_manifest(folder)
    except RegistryError as exc:
        raise AgentLoadError(exc.message) from exc
    code = manifest.get("code")
    if not isinstance(code, str) or not (folder / code).is_file():
        raise AgentLoadError(f"{folder / MANIFEST_FILE} names no agent code file that exists")
    extra = [folder / str(p) for p in manifest.get("code_paths") or []]
    return load_agent_file(folder / code, code_paths=extra)


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
