from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from registry import (
    AlreadyExists,
    InvalidArgument,
    LineageKind,
    ModelStatus,
    NotFound,
    RegistryClient,
)
from registry.client import ARTIFACT_ROOT_ENV, STORE_URL_ENV
from registry.model_files import MANIFEST_FILE, read_manifest

AGENT = "class Agent:\n    def predict(self, request):\n        return request\n"


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(store_url, tmp_path / "artifacts") as opened:
        yield opened


@pytest.fixture
def agent_file(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "my_agent.py"
    path.parent.mkdir()
    path.write_text(AGENT)
    return path


def test_log_model_copies_everything_and_validates_before_ready(
    client: RegistryClient, agent_file: Path, tmp_path: Path
) -> None:
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "tools.py").write_text("X = 1\n")
    config = tmp_path / "agent.yaml"
    config.write_text("temperature: 0.1\n")
    requirements = tmp_path / "reqs.txt"
    requirements.write_text("httpx>=0.28\n\n")
    client.register_prompt("greet", "Hello {{ name }}")
    seen: list[Path] = []

    model = client.log_model(
        agent_file,
        "echo",
        params={"temperature": 0.1},
        tags={"team": "cx"},
        requirements=requirements,
        code_paths=[helpers],
        config=config,
        input_example={"input": [{"role": "user", "content": "hi"}]},
        prompts=["prompts:/greet@latest"],
        validate=seen.append,
    )

    assert model.status is ModelStatus.READY
    assert model.params == {"temperature": "0.1"}
    assert model.prompts == ["prompts:/greet/1"]
    folder = client.resolve(model.uri).local_path
    assert seen == [folder]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "agent.yaml",
        "code/helpers/tools.py",
        "input_example.json",
        MANIFEST_FILE,
        "my_agent.py",
        "requirements.txt",
    ]
    manifest = read_manifest(folder)
    assert manifest["code"] == "my_agent.py"
    assert manifest["code_paths"] == ["code/helpers"]
    assert manifest["model_id"] == model.model_id
    assert (folder / "requirements.txt").read_text() == "httpx>=0.28\n"
    edges = client.get_lineage(LineageKind.MODEL, model.model_id, "upstream")
    assert [e.src_id for e in edges] == ["prompts:/greet/1"]


def test_failing_validator_marks_the_model_failed_and_reraises(
    client: RegistryClient, agent_file: Path
) -> None:
    class Broken(Exception):
        pass

    def validate(folder: Path) -> None:
        raise Broken(f"agent in {folder.name} does not load")

    with pytest.raises(Broken, match="does not load"):
        client.log_model(agent_file, "echo", validate=validate)
    [failed] = client.search_logged_models(name="echo")
    assert failed.status is ModelStatus.FAILED
    assert failed.status_message is not None and "Broken: agent in" in failed.status_message
    with pytest.raises(AlreadyExists.__mro__[1], match="is FAILED; only READY"):
        client.register_model(failed.uri, "echo")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "bad name"}, InvalidArgument, "invalid model name"),
        ({"code_paths": ["/does/not/exist"]}, NotFound, "code path '/does/not/exist' does not exist"),
        ({"requirements": "/nope.txt"}, NotFound, "requirements file"),
        ({"prompts": ["prompts:/missing/1"]}, NotFound, "version 1 of prompt 'missing' not found"),
        ({"prompts": ["prompts:/"]}, InvalidArgument, "malformed prompt URI"),
        ({"input_example": {"bad": object()}}, InvalidArgument, "not JSON-serializable"),
        ({"params": {"": "x"}}, InvalidArgument, "param keys must be non-empty"),
    ],
)
def test_bad_log_arguments_write_nothing(
    client: RegistryClient, agent_file: Path, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    arguments: dict[str, object] = {"name": "echo", **kwargs}
    with pytest.raises(error, match=message):
        client.log_model(agent_file, **arguments)  # type: ignore[arg-type]
    assert client.search_logged_models() == []
    assert not (client.artifacts.root / "models").exists()  # type: ignore[attr-defined]


def test_code_file_must_exist_and_be_python(client: RegistryClient, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="code file"):
        client.log_model(tmp_path / "missing.py", "echo")
    text = tmp_path / "agent.txt"
    text.write_text("x")
    with pytest.raises(InvalidArgument, match=r"must be a \.py file"):
        client.log_model(text, "echo")


def test_resolve_handles_every_uri_form(client: RegistryClient, agent_file: Path) -> None:
    first = client.log_model(agent_file, "echo")
    second = client.log_model(agent_file, "echo")
    assert client.register_model(first.uri, "bot").version == 1
    assert client.register_model(second.uri, "bot").version == 2
    client.set_alias("bot", "champion", "1")

    by_id = client.resolve(first.uri)
    assert (by_id.model.model_id, by_id.version) == (first.model_id, None)
    expectations = {
        "models:/bot/1": (first, 1),
        "models:/bot@champion": (first, 1),
        "models:/bot/latest": (second, 2),
        "models:/bot@latest": (second, 2),
    }
    for uri, (model, number) in expectations.items():
        resolved = client.resolve(uri)
        assert resolved.model.model_id == model.model_id, uri
        assert resolved.version is not None and resolved.version.version == number
        assert (resolved.local_path / "my_agent.py").read_text() == AGENT
    assert client.register_model("models:/bot@champion", "copy").model_id == first.model_id

    client.set_alias("bot", "champion", 2)
    assert client.resolve("models:/bot@champion").model.model_id == second.model_id
    client.delete_alias("bot", "champion")
    for uri, message in [
        ("models:/bot@champion", "alias 'champion' of model 'bot' not found"),
        ("models:/bot/9", "version 9 of model 'bot' not found"),
        ("models:/nobody/latest", "'nobody' has no versions"),
        ("models:/m-" + "0" * 32, "logged model 'm-0+' not found"),
    ]:
        with pytest.raises(NotFound, match=message):
            client.resolve(uri)
    with pytest.raises(InvalidArgument, match="invalid version 'x'"):
        client.set_alias("bot", "champion", "x")


def test_git_source_is_recorded_for_code_in_a_checkout(client: RegistryClient, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    code = repo / "agent.py"
    code.write_text(AGENT)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
            cwd=repo,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    git("add", "agent.py")
    git("commit", "-q", "-m", "init")
    clean = client.log_model(code, "echo")
    assert clean.source is not None
    assert (clean.source.commit, clean.source.dirty) == (git("rev-parse", "HEAD"), False)
    code.write_text(AGENT + "# edited\n")
    assert client.log_model(code, "echo").source.dirty is True  # type: ignore[union-attr]
    outside = tmp_path / "loose.py"
    outside.write_text(AGENT)
    assert client.log_model(outside, "echo").source is None


def test_environment_is_read_only_when_arguments_are_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(STORE_URL_ENV, f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv(ARTIFACT_ROOT_ENV, str(tmp_path / "env-artifacts"))
    with RegistryClient() as from_env:
        assert from_env.store_url.endswith("env.db")
        assert from_env.artifacts.root == tmp_path / "env-artifacts"  # type: ignore[attr-defined]
    explicit = f"sqlite:///{tmp_path / 'explicit.db'}"
    with RegistryClient(explicit, tmp_path / "explicit") as given:
        assert given.store_url == explicit


def test_prompt_versions_aliases_and_loading(client: RegistryClient) -> None:
    v1 = client.register_prompt(
        "support", "Answer {{ question }}", commit_message="first", tags={"team": "cx"}
    )
    v2 = client.register_prompt(
        "support",
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ question }}"}],
        model_config={"temperature": 0.2},
    )
    assert (v1.version, v2.version) == (1, 2)
    assert client.load_prompt("prompts:/support/1") == v1
    assert client.load_prompt("prompts:/support@latest").version == 2
    assert client.load_prompt("support").version == 2
    assert client.load_prompt("support", version=1).template == "Answer {{ question }}"
    assert client.load_prompt("prompts:/support/2").model_settings == {"temperature": 0.2}

    client.set_prompt_alias("support", "production", 1)
    assert client.load_prompt("prompts:/support@production").version == 1
    client.set_prompt_alias("support", "production", 2)
    assert client.load_prompt("prompts:/support@production").aliases == ["production"]
    client.delete_prompt_alias("support", "production")
    with pytest.raises(NotFound, match="alias 'production' of prompt 'support' not found"):
        client.load_prompt("prompts:/support@production")
    with pytest.raises(NotFound, match="version 3 of prompt 'support' not found"):
        client.load_prompt("prompts:/support/3")
    with pytest.raises(NotFound, match="prompt 'ghost' not found"):
        client.load_prompt("prompts:/ghost@latest")
    with pytest.raises(InvalidArgument, match="reserved"):
        client.set_prompt_alias("support", "latest", 1)


def test_prompt_templates_are_immutable_but_tags_and_messages_are_editable(client: RegistryClient) -> None:
    original = client.register_prompt("support", "Answer {{ q }}", commit_message="tpyo", tags={"a": "1"})
    fixed = client.update_prompt_commit_message("support", 1, "typo fixed")
    tagged = client.set_prompt_version_tag("support", 1, "b", "2")
    untagged = client.set_prompt_version_tag("support", 1, "a", None)
    assert (fixed.commit_message, tagged.tags, untagged.tags) == (
        "typo fixed",
        {"a": "1", "b": "2"},
        {"b": "2"},
    )
    assert untagged.template == original.template
    assert not hasattr(client, "update_prompt_template")


@pytest.mark.parametrize(
    ("name", "template", "extra", "message"),
    [
        ("bad name", "x", {}, "invalid prompt name"),
        ("p", "Hello {{ name", {}, "unbalanced or invalid placeholder"),
        ("p", "x", {"response_format": {"answer": "str"}}, "must be a JSON schema"),
        ("p", [{"content": "no role"}], {}, "role"),
    ],
)
def test_bad_prompts_write_nothing(
    client: RegistryClient, name: str, template: object, extra: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        client.register_prompt(name, template, **extra)  # type: ignore[arg-type]
    assert client.search_prompts() == []


def test_response_format_accepts_a_pydantic_model(client: RegistryClient) -> None:
    class Answer(BaseModel):
        text: str

    version = client.register_prompt("p", "x", response_format=Answer)
    assert (
        version.response_format is not None
        and version.response_format["properties"]["text"]["type"] == "string"
    )


def test_search_prompts_by_name_pattern_tag_and_alias(client: RegistryClient) -> None:
    for name in ("support-en", "support-fr", "Sales"):
        client.register_prompt(name, "x")
    client.store.set_prompt_tag("support-en", "lang", "en")
    client.set_prompt_alias("support-fr", "production", 1)

    def names(*args: str, **kwargs: object) -> list[str]:
        return [p.name for p in client.search_prompts(*args, **kwargs)]  # type: ignore[arg-type]

    assert names() == ["Sales", "support-en", "support-fr"]
    assert names("name LIKE 'support-%'") == ["support-en", "support-fr"]
    assert names("name LIKE 'sales'") == []
    assert names("name ILIKE 'sales'") == ["Sales"]
    assert names("name = 'support-en'") == ["support-en"]
    assert names("tags.lang = 'en'") == ["support-en"]
    assert names("alias = 'production'") == ["support-fr"]
    assert names("name LIKE 'support%' AND tags.`lang` = 'en'") == ["support-en"]
    assert names(name_like="S%", alias="production") == []
    assert names(tags={"lang": "en"}) == ["support-en"]
    assert client.search_prompts("name = 'support-fr'")[0].aliases == {"production": 1}
    for bad in ("name > 'a'", "owner = 'x'", "tags.lang LIKE 'e%'"):
        with pytest.raises(InvalidArgument, match="filter clause"):
            client.search_prompts(bad)


def test_manifest_is_json(client: RegistryClient, agent_file: Path) -> None:
    model = client.log_model(agent_file, "echo")
    raw = (client.resolve(model.uri).local_path / MANIFEST_FILE).read_text()
    assert json.loads(raw)["format_version"] == 1


@pytest.mark.parametrize("name", ["x\n", "bot\n", "a b", ""])
def test_names_and_aliases_are_refused_with_a_trailing_newline_or_space(
    client: RegistryClient, name: str
) -> None:
    """``re.match`` with ``$`` let ``'x\n'`` pass: a stored alias then split ``models list`` rows in two."""
    with pytest.raises(InvalidArgument):
        client.create_registered_model(name)
    with pytest.raises(InvalidArgument):
        client.set_prompt_alias("support", name, 1)
