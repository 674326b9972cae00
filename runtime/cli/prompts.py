"""``runtime prompts``: register, list, show, search, alias, tag and re-word prompt versions, tag prompts.

The same shapes as ``runtime models`` (store options, ``--json``, one ``error: ...`` line with exit code 2 for
bad usage and 1 for failures). Writes go through ``PromptWriter``: with ``RUNTIME_REDIS_URL`` (or
``--redis-url``) set, every server serving an agent that loads the prompt sees an alias move within a second.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from registry import InvalidArgument, RegistryClient, RegistryError
from registry.entities import Prompt, PromptVersion
from runtime.cli import common
from runtime.cli.common import format_time, json_file, pairs, store_options, table
from runtime.config import Settings
from runtime.prompts.notify import AliasPublisher
from runtime.prompts.writer import PromptWriter

__all__ = ["add_parser"]

Command = Callable[[argparse.Namespace], int]


def _command(run: Callable[[argparse.Namespace, PromptWriter], int]) -> Command:
    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        settings = Settings.from_env(
            store_url=getattr(args, "store_url", None),
            artifact_root=getattr(args, "artifact_root", None),
            redis_url=getattr(args, "redis_url", None),
        )
        publisher = AliasPublisher(settings.redis_url) if settings.redis_url else None
        try:
            with RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root) as client:
                return run(args, PromptWriter(client, publisher))
        except RegistryError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return exc.exit_code
        finally:
            if publisher is not None:
                publisher.close()

    return wrapper


def _template(source: str) -> Any:
    """A template file (``-`` for stdin): a JSON list is a chat template, anything else is text."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise InvalidArgument(f"cannot read template {source!r}: {exc.strerror}") from exc
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InvalidArgument(
                f"template {source!r} starts with '[' but is not a JSON chat template: {exc}"
            ) from exc
    return text


@_command
def _register(args: argparse.Namespace, writer: PromptWriter) -> int:
    version = writer.register(
        args.name,
        _template(args.template),
        commit_message=args.commit_message,
        tags=pairs(args.tag, "--tag"),
        response_format=json_file(args.response_format, "response format"),
        model_config=json_file(args.model_config, "model config"),
    )
    print(version.uri)
    return 0


def _dump(value: Prompt | PromptVersion) -> Any:
    return value.model_dump(mode="json", by_alias=True)


def _joined(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"


def _print_prompts(prompts: Sequence[Prompt], as_json: bool) -> None:
    if as_json:
        print(json.dumps([_dump(p) for p in prompts], indent=2))
        return
    rows = [["NAME", "LATEST", "ALIASES", "TAGS", "UPDATED"]]
    for prompt in prompts:
        latest = str(prompt.latest_version or "-")
        rows.append(
            [
                prompt.name,
                latest,
                _joined(prompt.aliases),
                _joined(prompt.tags),
                format_time(prompt.last_updated_time),
            ]
        )
    print(table(rows) if len(rows) > 1 else "no prompts")


@_command
def _list(args: argparse.Namespace, writer: PromptWriter) -> int:
    _print_prompts(writer.client.search_prompts(), args.json)
    return 0


@_command
def _search(args: argparse.Namespace, writer: PromptWriter) -> int:
    _print_prompts(writer.client.search_prompts(args.filter), args.json)
    return 0


def _show_version(version: PromptVersion) -> str:
    rows = [
        ["uri", version.uri],
        ["aliases", ", ".join(version.aliases) or "-"],
        ["message", version.commit_message or "-"],
        ["tags", _joined(version.tags)],
        ["variables", ", ".join(version.variables) or "-"],
        ["created", format_time(version.creation_time)],
    ]
    if version.response_format is not None:
        rows.append(["response", json.dumps(version.response_format)])
    if version.model_settings is not None:
        rows.append(["model", json.dumps(version.model_settings)])
    if isinstance(version.template, str):
        body = version.template
    else:
        body = "\n".join(f"[{m.role}] {m.content}" for m in version.template)
    return f"{table(rows)}\n\n{body}"


def _show_prompt(prompt: Prompt, versions: list[PromptVersion]) -> str:
    head = table(
        [["name", prompt.name], ["aliases", _joined(prompt.aliases)], ["tags", _joined(prompt.tags)]]
    )
    rows = [["VERSION", "ALIASES", "MESSAGE", "CREATED"]]
    for v in versions:
        rows.append(
            [
                str(v.version),
                ", ".join(v.aliases) or "-",
                v.commit_message or "-",
                format_time(v.creation_time),
            ]
        )
    return f"{head}\n\n{table(rows)}"


@_command
def _show(args: argparse.Namespace, writer: PromptWriter) -> int:
    """A URI (or ``--version``) shows one version; a bare name shows the prompt and all its versions."""
    client = writer.client
    if args.target.startswith("prompts:/") or args.version is not None:
        version = client.load_prompt(args.target, args.version)
        print(json.dumps(_dump(version), indent=2) if args.json else _show_version(version))
        return 0
    prompt = client.get_prompt(args.target)
    versions = client.list_prompt_versions(args.target)
    if args.json:
        print(json.dumps({"prompt": _dump(prompt), "versions": [_dump(v) for v in versions]}, indent=2))
    else:
        print(_show_prompt(prompt, versions))
    return 0


@_command
def _alias(args: argparse.Namespace, writer: PromptWriter) -> int:
    return common.alias(args, writer.set_alias, writer.delete_alias)


@_command
def _tag(args: argparse.Namespace, writer: PromptWriter) -> int:
    if args.delete:
        if args.value is not None:
            raise InvalidArgument("tag --delete takes NAME VERSION KEY, without a value")
        writer.set_tag(args.name, args.version, args.key, None)
        return 0
    if args.value is None:
        raise InvalidArgument("tag needs NAME VERSION KEY VALUE (or --delete NAME VERSION KEY)")
    version = writer.set_tag(args.name, args.version, args.key, args.value)
    print(_joined(version.tags))
    return 0


@_command
def _prompt_tag(args: argparse.Namespace, writer: PromptWriter) -> int:
    """Tags of the prompt itself: the ones ``search "tags.<key> = '...'"`` filters."""
    client = writer.client
    if args.delete:
        if args.value is not None:
            raise InvalidArgument("prompt-tag --delete takes NAME KEY, without a value")
        client.delete_prompt_tag(args.name, args.key)
        return 0
    if args.value is None:
        raise InvalidArgument("prompt-tag needs NAME KEY VALUE (or --delete NAME KEY)")
    print(_joined(client.set_prompt_tag(args.name, args.key, args.value).tags))
    return 0


@_command
def _edit_message(args: argparse.Namespace, writer: PromptWriter) -> int:
    version = writer.edit_message(args.name, args.version, args.message or None)
    print(f"{version.uri}: {version.commit_message or '(no message)'}")
    return 0


def _options(parser: argparse.ArgumentParser, default: Any) -> None:
    store_options(parser, default)
    parser.add_argument(
        "--redis-url", default=default, help="announce changes to servers (env RUNTIME_REDIS_URL)"
    )


def add_parser(subparsers: Any) -> None:
    group = subparsers.add_parser("prompts", help="register, alias, search and inspect prompt versions")
    _options(group, None)
    common = argparse.ArgumentParser(add_help=False)
    _options(common, argparse.SUPPRESS)
    commands = group.add_subparsers(dest="prompts_command", metavar="COMMAND")
    commands.required = True

    register = commands.add_parser("register", parents=[common], help="register a new version of a prompt")
    register.add_argument("name")
    register.add_argument(
        "--template", required=True, metavar="FILE", help="text or JSON chat messages; - for stdin"
    )
    register.add_argument("--commit-message", "-m")
    register.add_argument(
        "--tag", action="append", metavar="K=V", help="a tag of the new version, also set on the prompt"
    )
    register.add_argument("--response-format", metavar="FILE", help="JSON schema of the expected answer")
    register.add_argument("--model-config", metavar="FILE", help="JSON model settings (temperature, ...)")
    register.set_defaults(func=_register)

    listing = commands.add_parser("list", parents=[common], help="list prompts")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    search = commands.add_parser("search", parents=[common], help="search prompts by name, tag or alias")
    search.add_argument(
        "filter", help="e.g. \"name LIKE 'support%%' AND tags.team = 'cx' AND alias = 'production'\""
    )
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=_search)

    show = commands.add_parser("show", parents=[common], help="show a prompt, or one version of it")
    show.add_argument("target", metavar="URI|NAME")
    show.add_argument("--version", help="with a NAME: show this version")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)

    alias = commands.add_parser("alias", parents=[common], help="point an alias at a version, or --delete it")
    alias.add_argument("--delete", action="store_true")
    alias.add_argument("name")
    alias.add_argument("alias")
    alias.add_argument("version", nargs="?")
    alias.set_defaults(func=_alias)

    prompt_tag = commands.add_parser(
        "prompt-tag", parents=[common], help="set (or --delete) a tag of the prompt, the tags search filters"
    )
    prompt_tag.add_argument("--delete", action="store_true")
    prompt_tag.add_argument("name")
    prompt_tag.add_argument("key")
    prompt_tag.add_argument("value", nargs="?")
    prompt_tag.set_defaults(func=_prompt_tag)

    tag = commands.add_parser("tag", parents=[common], help="set (or --delete) a tag of a version")
    tag.add_argument("--delete", action="store_true")
    tag.add_argument("name")
    tag.add_argument("version")
    tag.add_argument("key")
    tag.add_argument("value", nargs="?")
    tag.set_defaults(func=_tag)

    edit = commands.add_parser(
        "edit-message", parents=[common], help="re-word the commit message of a version"
    )
    edit.add_argument("name")
    edit.add_argument("version")
    edit.add_argument("message", help="the new message ('' clears it)")
    edit.set_defaults(func=_edit_message)
