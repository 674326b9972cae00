"""Entry point of the `runtime` command.

Each command group lives in its own module exposing ``add_parser(subparsers)``; the parser it adds sets
``func`` (a callable taking the parsed namespace and returning an exit code). Exit codes: 0 success,
1 failure, 2 usage error (argparse's own convention). A runtime or registry error that reaches this point
(a store that cannot be opened when ``runtime serve`` or ``runtime worker`` starts, say) is printed as the
one ``error: ...`` line every command prints, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from registry.errors import RegistryError
from runtime.errors import RuntimeErrorBase

__all__ = ["main"]

# Command-group modules, imported lazily so `runtime serve` does not pay for the others.
_GROUPS = (
    "runtime.cli.serve",
    "runtime.cli.models",
    "runtime.cli.traces",
    "runtime.cli.prompts",
    "runtime.cli.lineage",
    "runtime.cli.evaluate",
    "runtime.cli.worker",
    "runtime.cli.canary",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runtime", description="Serve and observe AI agents.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _GROUPS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # here, where a reader that went away is handled, not at the interpreter's exit
    except (RuntimeErrorBase, RegistryError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except (
        BrokenPipeError
    ):  # the reader went away (``runtime traces list | head``): stop quietly, as cat does
        _quiet_stdout()
        return 128 + signal.SIGPIPE
    return code


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's final flush would otherwise fail on the broken pipe and
    print a traceback of its own."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
