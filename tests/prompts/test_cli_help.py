"""``--help`` of every ``runtime`` command: argparse %-formats help strings, so one stray ``%`` crashes it."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from runtime.cli.main import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of the parser tree, from ``()`` (``runtime`` itself) down to the leaves."""
    yield path
    for action in parser._actions:  # argparse exposes no public walk of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = sorted(_commands(build_parser()))


def test_the_walk_finds_the_subcommands() -> None:
    assert ("prompts", "search") in COMMANDS and ("evaluate", "attach") in COMMANDS
    assert len(COMMANDS) > 30


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "runtime")
def test_help_of_every_command_exits_0(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: runtime" in capsys.readouterr().out
