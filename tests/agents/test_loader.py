"""Loading agent files and folders: the agent, or one clear error naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.agents.loader import load_agent, load_agent_file
from runtime.errors import AgentLoadError

GOOD = (
    "from runtime.agents import ResponsesAgent, set_agent\n"
    "class A(ResponsesAgent):\n    name = 'a'\n"
    "set_agent(A())\n"
)


def test_loads_the_agent_passed_to_set_agent(tmp_path: Path) -> None:
    path = tmp_path / "agent.py"
    path.write_text(GOOD)
    assert type(load_agent_file(path)).__name__ == "A"


def test_sibling_modules_import_during_load(tmp_path: Path) -> None:
    (tmp_path / "helper_mod_xyz.py").write_text("VALUE = 42\n")
    path = tmp_path / "agent.py"
    path.write_text("import helper_mod_xyz\n" + GOOD)
    load_agent_file(path)
    import sys

    assert str(tmp_path.resolve()) in sys.path  # kept, as MLflow keeps code paths (test_loader_imports.py)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("raise RuntimeError('nope')\n", r"raised on import \(line 1\): RuntimeError: nope"),
        ("def f(:\n", "syntax error at line 1"),
        ("x = 1\n", "never calls set_agent"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path: Path, source: str, match: str) -> None:
    path = tmp_path / "agent.py"
    path.write_text(source)
    with pytest.raises(AgentLoadError, match=match):
        load_agent_file(path)


def test_missing_and_non_python_files(tmp_path: Path) -> None:
    with pytest.raises(AgentLoadError, match="not found"):
        load_agent_file(tmp_path / "missing.py")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(AgentLoadError, match="not a Python file"):
        load_agent_file(tmp_path / "a.txt")


def test_folder_with_one_agent_file(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text(GOOD)
    assert type(load_agent(tmp_path)).__name__ == "A"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AgentLoadError, match="no agent code file"):
        load_agent(empty)
