"""The README stays true: its quick start is what CI runs, and every setting is documented."""

from __future__ import annotations

import re

from runtime.config import Settings
from tests.servers import ROOT

README = (ROOT / "README.md").read_text()


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the quick start has no fenced bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    serve, test = quick_start_commands()
    assert "serve" in serve
    assert test in (ROOT / ".ci" / "run").read_text()


def test_every_runtime_variable_is_documented() -> None:
    missing = [name for name, _, _ in Settings.documented() if f"| `{name}` |" not in README]
    assert not missing, f"add these to the README configuration table: {missing}"
