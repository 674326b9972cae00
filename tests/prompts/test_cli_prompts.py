"""``runtime prompts ...``: the same shapes as ``runtime models``, with clear errors that write nothing."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.cli.main import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def store_args(tmp_path: Path) -> list[str]:
    return ["--store-url", f"sqlite:///{tmp_path / 'cli.db'}", "--artifact-root", str(tmp_path / "artifacts")]


@pytest.fixture
def run(store_args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("RUNTIME_REDIS_URL", raising=False)

    def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["prompts", *store_args, *args])
        out, err = capsys.readouterr()
        return code, out.strip(), err.strip()

    return invoke


def test_register_alias_show_search_tag_and_edit_workflow(run: Run, tmp_path: Path) -> None:
    chat = tmp_path / "chat.json"
    chat.write_text(
        json.dumps([{"role": "system", "content": "Be {{ tone }}"}, {"role": "user", "content": "{{q}}"}])
    )
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"answer": {"type": "string"}}}))
    settings = tmp_path / "model.json"
    settings.write_text(json.dumps({"temperature": 0.1}))

    assert run("register", "support", "--template", "-", "-m", "first", stdin="Hello {{ name }}") == (
        0,
        "prompts:/support/1",
        "",
    )
    code, out, err = run(
        "register",
        "support",
        "--template",
        str(chat),
        "--tag",
        "team=cx",
        "--response-format",
        str(schema),
        "--model-config",
        str(settings),
    )
    assert (code, out, err) == (0, "prompts:/support/2", "")
    assert run("alias", "support", "production", "1") == (0, "support@production -> 1", "")

    code, table, _ = run("list")
    assert code == 0 and table.splitlines()[1].split()[:3] == ["support", "2", "production=1"]

    code, text, _ = run("show", "prompts:/support@production")
    assert code == 0
    assert "uri        prompts:/support/1" in text and "variables  name" in text
    assert text.endswith("Hello {{ name }}")

    code, text, _ = run("show", "support", "--version", "2")
    assert "[system] Be {{ tone }}" in text and '"temperature": 0.1' in text

    code, raw, _ = run("show", "prompts:/support/2", "--json")
    shown = json.loads(raw)
    assert shown["model_config"] == {"temperature": 0.1} and shown["variables"] == ["tone", "q"]
    assert shown["tags"] == {"team": "cx"} and shown["response_format"]["type"] == "object"

    code, text, _ = run("show", "support")
    assert code == 0 and [line.split()[0] for line in text.splitlines()[-2:]] == ["2", "1"]

    code, raw, _ = run("search", "alias = 'production'", "--json")
    assert [p["name"] for p in json.loads(raw)] == ["support"]
    assert run("search", "name LIKE 'other%'") == (0, "no prompts", "")

    assert run("tag", "support", "1", "reviewed", "yes") == (0, "reviewed=yes", "")
    assert run("tag", "--delete", "support", "1", "reviewed") == (0, "", "")
    assert run("edit-message", "support", "1", "first, reworded") == (
        0,
        "prompts:/support/1: first, reworded",
        "",
    )
    code, raw, _ = run("show", "prompts:/support/1", "--json")
    assert (json.loads(raw)["commit_message"], json.loads(raw)["tags"]) == ("first, reworded", {})

    assert run("alias", "--delete", "support", "production") == (0, "", "")
    code, _, err = run("show", "prompts:/support@production")
    assert (code, err) == (1, "error: alias 'production' of prompt 'support' not found")


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["register", "bad name", "--template", "-"], "x", 2, "invalid prompt name 'bad name'"),
        (["register", "p", "--template", "-"], "Hi {{ name", 2, "unbalanced or invalid placeholder"),
        (["register", "p", "--template", "-"], "", 2, "template is empty"),
        (["register", "p", "--template", "-"], "[{'role': 'user'}]", 2, "not a JSON chat template"),
        (["register", "p", "--template", "-"], '[{"content": "x"}]', 2, "role"),
        (["register", "p", "--template", "missing.txt"], None, 2, "cannot read template 'missing.txt'"),
        (["register", "p", "--template", "-", "--tag", "novalue"], "x", 2, "--tag 'novalue' must look like"),
        (
            ["register", "p", "--template", "-", "--response-format", "fmt.json"],
            "x",
            2,
            "must be a JSON schema",
        ),
        (["register", "p", "--template", "-", "--model-config", "bad.json"], "x", 2, "is not valid JSON"),
        (["alias", "p", "production"], None, 2, "alias needs NAME ALIAS VERSION"),
        (["alias", "--delete", "p", "production", "1"], None, 2, "without a version"),
        (["alias", "p", "latest", "1"], None, 2, "reserved"),
        (["alias", "p", "production", "one"], None, 2, "invalid version 'one'"),
        (["alias", "ghost", "production", "1"], None, 1, "version 1 of prompt 'ghost' not found"),
        (["show", "prompts:/ghost/1"], None, 1, "version 1 of prompt 'ghost' not found"),
        (["show", "ghost"], None, 1, "prompt 'ghost' not found"),
        (["search", "owner = 'me'"], None, 2, "cannot parse filter clause"),
        (["tag", "ghost", "1", "k", "v"], None, 1, "not found"),
        (["tag", "ghost", "1", "k"], None, 2, "tag needs NAME VERSION KEY VALUE"),
    ],
)
def test_bad_usage_exits_2_failures_exit_1_and_nothing_is_written(
    run: Run, tmp_path: Path, args: list[str], stdin: str | None, code: int, message: str
) -> None:
    (tmp_path / "fmt.json").write_text(json.dumps({"answer": "string"}))
    (tmp_path / "bad.json").write_text("{temperature: 0}")
    got, out, err = run(*args, stdin=stdin)
    assert (got, out) == (code, "")
    assert err.startswith("error: ") and message in err, err
    assert run("list") == (0, "no prompts", "")
