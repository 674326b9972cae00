"""What an agent imports stays importable after its load (MLflow keeps a model's code paths on ``sys.path``):
an import inside ``predict`` finds the agent's folder and code paths, agents loaded one after another each
import their own same-named modules, and a failed load changes nothing."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from runtime.agents.loader import load_agent, load_agent_file
from runtime.errors import AgentLoadError

LAZY = """\
from runtime.agents import set_agent

class Agent:
    def predict(self, text):
        from {module} import shout  # imported at request time, not at load

        return shout(text)

set_agent(Agent())
"""

AT_LOAD = """\
from runtime.agents import set_agent
import {module}

class Agent:
    value = {module}.VALUE

    def lazy_value(self):
        import {module} as again

        return again.VALUE

set_agent(Agent())
"""


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_a_lazy_import_finds_the_agents_own_folder(tmp_path: Path) -> None:
    _write(tmp_path, {"agent.py": LAZY.format(module="lazy_sibling"), "lazy_sibling.py": SHOUT})
    agent = load_agent_file(tmp_path / "agent.py")
    assert agent.predict("hi") == "HI!"


def test_a_lazy_import_finds_a_code_path(tmp_path: Path) -> None:
    _write(tmp_path / "app", {"agent.py": LAZY.format(module="lazy_in_lib")})
    _write(tmp_path / "lib", {"lazy_in_lib.py": SHOUT})
    agent = load_agent_file(tmp_path / "app" / "agent.py", code_paths=[tmp_path / "lib"])
    assert agent.predict("hi") == "HI!"


def test_a_lazy_import_finds_the_code_folder_of_a_plain_model_folder(tmp_path: Path) -> None:
    _write(tmp_path, {"agent.py": LAZY.format(module="lazy_pkg.tools"), "code/lazy_pkg/tools.py": SHOUT})
    assert load_agent(tmp_path).predict("hi") == "HI!"


def test_a_new_version_imports_its_own_modules_and_later_imports_get_the_newest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    v1 = _write(
        tmp_path / "v1", {"agent.py": AT_LOAD.format(module="versioned"), "versioned.py": "VALUE = 1\n"}
    )
    v2 = _write(
        tmp_path / "v2", {"agent.py": AT_LOAD.format(module="versioned"), "versioned.py": "VALUE = 2\n"}
    )
    first = load_agent(v1)
    with caplog.at_level(logging.WARNING, logger="runtime.agents"):
        second = load_agent(v2)
    assert (first.value, second.value) == (1, 2)  # not v1's module, cached under the same name
    assert first.lazy_value() == second.lazy_value() == 2  # one namespace: the agent loaded last wins
    [warning] = [r.getMessage() for r in caplog.records if r.name == "runtime.agents"]
    assert "both have a module 'versioned' and they differ" in warning
    assert str(v2 / "versioned.py") in warning


def test_same_named_modules_with_the_same_code_are_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = {"agent.py": AT_LOAD.format(module="unchanged"), "unchanged.py": "VALUE = 7\n"}
    first = load_agent(_write(tmp_path / "v1", files))
    with caplog.at_level(logging.WARNING, logger="runtime.agents"):
        second = load_agent(_write(tmp_path / "v2", files))
    assert (first.value, second.value) == (7, 7)
    assert [r for r in caplog.records if r.name == "runtime.agents"] == []


def test_reloading_the_same_folder_warns_of_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _write(
        tmp_path, {"agent.py": AT_LOAD.format(module="same_folder"), "same_folder.py": "VALUE = 3\n"}
    )
    with caplog.at_level(logging.WARNING, logger="runtime.agents"):
        assert load_agent(folder).value == load_agent(folder).value == 3
    assert [r for r in caplog.records if r.name == "runtime.agents"] == []
    assert sys.path.count(str(folder.resolve())) == 1


def test_a_failed_load_leaves_sys_path_and_sys_modules_as_they_were(tmp_path: Path) -> None:
    good = _write(
        tmp_path / "good", {"agent.py": AT_LOAD.format(module="shared_mod"), "shared_mod.py": "VALUE = 1\n"}
    )
    assert load_agent(good).value == 1
    kept = sys.modules["shared_mod"]
    broken = _write(
        tmp_path / "broken",
        {
            "agent.py": "import shared_mod, broken_helper\nraise RuntimeError('no')\n",
            "shared_mod.py": "VALUE = 2\n",
        },
    )
    (broken / "broken_helper.py").write_text("X = 1\n")
    path_before = list(sys.path)
    with pytest.raises(AgentLoadError, match="RuntimeError: no"):
        load_agent(broken)
    assert sys.path == path_before
    assert sys.modules["shared_mod"] is kept
    assert "broken_helper" not in sys.modules


def test_modules_imported_from_elsewhere_are_never_dropped(tmp_path: Path) -> None:
    source = "from runtime.agents import set_agent\nimport json\nset_agent(json)\n"
    _write(tmp_path, {"agent.py": source, "json.py": "SHADOW = True\n"})
    assert load_agent(tmp_path) is json  # the standard library's, already imported, stays
    assert sys.modules["json"] is json


SHOUT = "def shout(text):\n    return text.upper() + '!'\n"


def test_a_module_named_like_the_standard_librarys_or_an_installed_one_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The folder goes first on ``sys.path``: its ``json.py`` or ``openai.py`` takes the place of the real
    one for imports made after the load, and a user sees only a baffling AttributeError. (``this`` and
    ``pluggy`` here: nothing in this test process imports the first, pytest imported the second already.)"""
    folder = _write(
        tmp_path / "clash",
        {
            "agent.py": AT_LOAD.format(module="helpers"),
            "helpers.py": "VALUE = 3\n",
            "this.py": "",
            "pluggy.py": "",
        },
    )
    with caplog.at_level(logging.WARNING, logger="runtime.agents"):
        agent = load_agent(folder)
    assert agent.value == 3
    warnings = sorted(r.getMessage() for r in caplog.records if r.name == "runtime.agents")
    assert len(warnings) == 2
    installed, stdlib = warnings
    assert "pluggy.py, named like the installed module (from " in installed and "site-packages" in installed
    assert "this.py, named like the standard library's module 'this'" in stdlib
    assert all(w.startswith(str(folder.resolve())) and w.endswith("Rename it.") for w in warnings)
