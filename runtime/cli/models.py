"""``runtime models``: log, register, alias, list and show models in the registry.

Registry errors are printed here as one ``error: ...`` line with their own exit code (2 for bad usage, 1 for
failures): the registry is a leaf package, so its exceptions are not part of ``runtime.errors`` that
``runtime.cli.main`` catches.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from registry import InvalidArgument, RegistryClient, RegistryError
from registry.client import ResolvedModel
from runtime.cli import common
from runtime.cli.common import format_time, json_file, pairs, store_options, table
from runtime.config import Settings

__all__ = ["add_parser", "agent_validator"]

Command = Callable[[argparse.Namespace], int]


def agent_validator() -> Callable[[Path], object]:
    """The check ``log`` runs before a model is READY: it loads and answers its input example."""
    from runtime.agents.validate import validate_agent_dir

    return validate_agent_dir


def _client(args: argparse.Namespace) -> RegistryClient:
    """The registry of the options, else of RUNTIME_STORE_URL / RUNTIME_ARTIFACT_ROOT, else under
    RUNTIME_HOME: the one ``runtime serve`` opens with the same environment."""
    settings = Settings.from_env(
        store_url=getattr(args, "store_url", None), artifact_root=getattr(args, "artifact_root", None)
    )
    return RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root)


def _command(run: Callable[[argparse.Namespace, RegistryClient], int]) -> Command:
    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            with _client(args) as client:
                return run(args, client)
        except RegistryError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return exc.exit_code

    return wrapper


@_command
def _log(args: argparse.Namespace, client: RegistryClient) -> int:
    model = client.log_model(
        args.path,
        args.name,
        params=pairs(args.param, "--param"),
        tags=pairs(args.tag, "--tag"),
        requirements=args.requirements,
        code_paths=args.code_path or (),
        config=args.config,
        input_example=json_file(args.input_example, "input example"),
        prompts=args.prompt or (),
        validate=None if args.no_validate else agent_validator(),
    )
    print(model.uri)
    return 0


@_command
def _import_mlflow(args: argparse.Namespace, client: RegistryClient) -> int:
    from runtime.agents.mlflow_model import import_mlflow_model

    folder = Path(args.path)
    if not (folder / "MLmodel").is_file():
        raise InvalidArgument(f"{folder} is not an MLflow model folder (no MLmodel file)")
    model = import_mlflow_model(client, folder, args.name, None if args.no_validate else agent_validator())
    print(model.uri)
    return 0


@_command
def _register(args: argparse.Namespace, client: RegistryClient) -> int:
    print(client.register_model(args.uri, args.name).version)
    return 0


@_command
def _alias(args: argparse.Namespace, client: RegistryClient) -> int:
    return common.alias(args, client.set_alias, client.delete_alias)


@_command
def _list(args: argparse.Namespace, client: RegistryClient) -> int:
    models = client.list_registered_models()
    if args.json:
        print(json.dumps([m.model_dump(mode="json") for m in models], indent=2))
        return 0
    rows = [["NAME", "LATEST", "ALIASES", "UPDATED"]]
    for model in models:
        aliases = ", ".join(f"{a}={v}" for a, v in sorted(model.aliases.items())) or "-"
        latest = str(model.latest_version or "-")
        rows.append([model.name, latest, aliases, format_time(model.last_updated_time)])
    print(table(rows) if len(rows) > 1 else "no registered models")
    return 0


def _show_json(resolved: ResolvedModel) -> str:
    return json.dumps(
        {
            "model": resolved.model.model_dump(mode="json"),
            "version": resolved.version.model_dump(mode="json") if resolved.version else None,
            "local_path": str(resolved.local_path),
        },
        indent=2,
    )


def _show_text(resolved: ResolvedModel) -> str:
    model, version = resolved.model, resolved.version

    def joined(values: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"

    source = "-"
    if model.source is not None:
        source = model.source.commit + (" (dirty)" if model.source.dirty else "")
    rows = [
        ["uri", model.uri],
        ["name", model.name],
        ["status", model.status.value + (f" ({model.status_message})" if model.status_message else "")],
    ]
    if version is not None:
        aliases = f" (aliases: {', '.join(version.aliases)})" if version.aliases else ""
        rows.append(["version", f"{version.name}/{version.version}{aliases}"])
    rows += [
        ["params", joined(model.params)],
        ["tags", joined(model.tags)],
        ["metrics", joined(model.metrics)],
        ["source", source],
        ["prompts", ", ".join(model.prompts) or "-"],
        ["artifacts", str(resolved.local_path)],
        ["created", format_time(model.creation_time)],
    ]
    return table(rows)


@_command
def _show(args: argparse.Namespace, client: RegistryClient) -> int:
    resolved = client.resolve(args.uri)
    print(_show_json(resolved) if args.json else _show_text(resolved))
    return 0


def add_parser(subparsers: Any) -> None:
    group = subparsers.add_parser("models", help="log, register, alias and inspect models")
    store_options(group, None)
    # Sub-commands accept the same options after their own name; SUPPRESS keeps the group's value otherwise.
    common = argparse.ArgumentParser(add_help=False)
    store_options(common, argparse.SUPPRESS)
    commands = group.add_subparsers(dest="models_command", metavar="COMMAND")
    commands.required = True

    log = commands.add_parser("log", parents=[common], help="log an agent code file as a LoggedModel")
    log.add_argument("path", help="the agent's code file")
    log.add_argument("--name", required=True)
    log.add_argument("--param", action="append", metavar="K=V")
    log.add_argument("--tag", action="append", metavar="K=V")
    log.add_argument("--requirements", metavar="FILE")
    log.add_argument("--code-path", action="append", metavar="DIR")
    log.add_argument("--config", metavar="FILE")
    log.add_argument("--input-example", metavar="FILE", help="JSON request used to check the model answers")
    log.add_argument("--prompt", action="append", metavar="URI", help="prompts:/ URI the model uses")
    log.add_argument("--no-validate", action="store_true", help="skip loading the agent before READY")
    log.set_defaults(func=_log)

    imported = commands.add_parser(
        "import-mlflow", parents=[common], help="log a folder saved by MLflow 3 (models-from-code agent)"
    )
    imported.add_argument("path", help="the MLflow model folder (holding MLmodel)")
    imported.add_argument("--name", required=True)
    imported.add_argument("--no-validate", action="store_true", help="skip loading the agent before READY")
    imported.set_defaults(func=_import_mlflow)

    register = commands.add_parser("register", parents=[common], help="register a model URI as a new version")
    register.add_argument("uri")
    register.add_argument("--name", required=True)
    register.set_defaults(func=_register)

    alias = commands.add_parser("alias", parents=[common], help="point an alias at a version, or --delete it")
    alias.add_argument("--delete", action="store_true")
    alias.add_argument("name")
    alias.add_argument("alias")
    alias.add_argument("version", nargs="?")
    alias.set_defaults(func=_alias)

    listing = commands.add_parser("list", parents=[common], help="list registered models")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    show = commands.add_parser("show", parents=[common], help="show what a models:/ URI resolves to")
    show.add_argument("uri")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
