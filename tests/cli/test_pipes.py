"""A reader that goes away (``runtime traces list | head``) stops a command quietly, as with cat."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.servers import ROOT


def test_a_closed_pipe_ends_a_command_without_traceback(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli.main", "prompts", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "RUNTIME_HOME": str(tmp_path)},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the command has written anything: its write finds no reader
    errors = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 141  # 128 + SIGPIPE, what a shell reports for cat in that case
    assert errors == ""
