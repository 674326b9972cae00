"""A served file records the git commit of the checkout it is served from (it goes on every trace)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from runtime.config import Settings
from runtime.loading import load_target

AGENT = """
from runtime.agents import ResponsesAgent, ResponsesAgentResponse, set_agent

class Echo(ResponsesAgent):
    def predict(self, request):
        return ResponsesAgentResponse(output=[self.create_text_output_item("hi", "m1")])

set_agent(Echo())
"""


def test_a_file_in_a_checkout_is_served_with_its_commit(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "agent.py").write_text(AGENT)

    def git(*args: str) -> str:
        command = ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args]
        return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("add", "agent.py")
    git("commit", "-q", "-m", "init")
    assert load_target(str(repo / "agent.py"), settings).info.source_commit == git("rev-parse", "HEAD")
    loose = tmp_path / "loose.py"
    loose.write_text(AGENT)
    assert load_target(str(loose), settings).info.source_commit is None
