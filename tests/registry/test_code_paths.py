"""Code paths follow MLflow: ``code_paths=["lib/helpers"]`` is copied to ``code/helpers`` and ``code/`` goes
on ``sys.path``, so ``import helpers`` works, at load and inside ``predict``. A plain folder of modules also
still gives its modules by their own names, and models logged before keep loading as they did."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import InvalidArgument, ModelStatus, RegistryClient
from registry.model_files import MANIFEST_FILE, read_manifest
from runtime.agents.factory import build_runner
from runtime.agents.loader import load_agent
from runtime.agents.mlflow_model import import_mlflow_model
from runtime.agents.validate import validate_agent_dir
from runtime.cli.main import main
from runtime.protocol.agent import ResponsesAgentRequest

EXAMPLE = {"input": [{"role": "user", "content": "hi"}]}

# ``{top}`` runs on import, ``{lazy}`` inside predict; ``shout`` must be bound by then.
AGENT = """\
from runtime.agents import ResponsesAgent, ResponsesAgentResponse, set_agent
from runtime.agents.chat import last_user_text
{top}

class Shouter(ResponsesAgent):
    def predict(self, request):
        {lazy}
        text = shout(last_user_text(request.input))
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")])

set_agent(Shouter())
"""
SHOUT = "def shout(text):\n    return text.upper() + '!'\n"


def agent(top: str = "", lazy: str = "pass") -> str:
    return AGENT.format(top=top, lazy=lazy)


def answer(folder: Path) -> str:
    """Load the model and answer the example as a request would: through the runner, in its thread pool."""
    runner = build_runner(load_agent(folder))
    response = asyncio.run(runner.predict(ResponsesAgentRequest.model_validate(EXAMPLE)))
    return str(response.output[0]["content"][0]["text"])


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts") as opened:
        yield opened


def log(client: RegistryClient, code: Path, *code_paths: Path) -> Path:
    model = client.log_model(
        code, "shouter", code_paths=code_paths, input_example=EXAMPLE, validate=validate_agent_dir
    )
    assert model.status is ModelStatus.READY
    return client.resolve(model.uri).local_path


def test_a_package_code_path_is_imported_by_its_name(client: RegistryClient, tmp_path: Path) -> None:
    package = tmp_path / "libdir" / "cp_helpers"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .loud import shout\n")
    (package / "loud.py").write_text(SHOUT)
    code = tmp_path / "app" / "agent.py"
    code.parent.mkdir()
    code.write_text(agent(top="import cp_helpers", lazy="from cp_helpers.loud import shout"))

    folder = log(client, code, package)

    manifest = read_manifest(folder)
    assert (manifest["code_paths"], manifest["sys_path"]) == (["code/cp_helpers"], ["code"])
    assert (folder / "code" / "cp_helpers" / "loud.py").is_file()
    assert answer(folder) == "HI!"
    assert str(folder / "code" / "cp_helpers") not in sys.path  # its modules are not top-level names


def test_a_plain_folder_of_modules_gives_them_by_name_and_under_its_own(
    client: RegistryClient, tmp_path: Path
) -> None:
    plain = tmp_path / "cp_plainlib"
    plain.mkdir()
    (plain / "cp_plainmod.py").write_text(SHOUT)
    code = tmp_path / "app" / "agent.py"
    code.parent.mkdir()
    code.write_text(agent(top="import cp_plainlib.cp_plainmod", lazy="from cp_plainmod import shout"))

    folder = log(client, code, plain)

    assert read_manifest(folder)["sys_path"] == ["code", "code/cp_plainlib"]
    assert answer(folder) == "HI!"


def test_a_file_code_path_is_copied_into_code(client: RegistryClient, tmp_path: Path) -> None:
    module = tmp_path / "lib" / "cp_single.py"
    module.parent.mkdir()
    module.write_text(SHOUT)
    code = tmp_path / "agent.py"
    code.write_text(agent(lazy="from cp_single import shout"))

    folder = log(client, code, module)

    assert read_manifest(folder)["code_paths"] == ["code/cp_single.py"]
    assert answer(folder) == "HI!"


def test_code_paths_need_distinct_names(client: RegistryClient, tmp_path: Path) -> None:
    for parent in ("a", "b"):
        (tmp_path / parent / "tools").mkdir(parents=True)
    code = tmp_path / "agent.py"
    code.write_text(agent())
    with pytest.raises(InvalidArgument, match="distinct names"):
        client.log_model(code, "shouter", code_paths=[tmp_path / "a" / "tools", tmp_path / "b" / "tools"])


def test_symbolic_links_out_of_a_code_path_are_refused_before_anything_is_written(
    client: RegistryClient, tmp_path: Path
) -> None:
    """A link to a file outside the folder would copy it (a secret) into the artifact store, a link to a
    folder (``/tmp``, the folder itself) all of it, maybe forever."""
    secret = tmp_path / "secret.env"
    secret.write_text("SECRET=topsecret")
    code = tmp_path / "agent.py"
    code.write_text(agent())
    for name, target in [("leak.env", secret), ("tmpdir", tmp_path), ("inner", None)]:
        lib = tmp_path / f"lib_{name.replace('.', '_')}"
        (lib / "sub").mkdir(parents=True)
        (lib / "sub" / "tools.py").write_text(SHOUT)
        (lib / name).symlink_to(target if target is not None else lib / "sub")
        with pytest.raises(InvalidArgument, match="is a symbolic link to"):
            client.log_model(code, "shouter", code_paths=[lib])
    assert client.search_logged_models() == []
    # A link to a file inside the folder is copied as that file.
    lib = tmp_path / "lib_ok"
    lib.mkdir()
    (lib / "cp_linked_real.py").write_text(SHOUT)
    (lib / "cp_linked.py").symlink_to(lib / "cp_linked_real.py")
    code.write_text(agent(lazy="from cp_linked import shout"))
    folder = log(client, code, lib)
    assert (folder / "code" / "lib_ok" / "cp_linked.py").read_text() == SHOUT


def test_a_model_logged_before_sys_path_loads_as_it_did(tmp_path: Path) -> None:
    """Such a manifest has no ``sys_path``: each code path went on sys.path itself, code/ did not."""
    folder = tmp_path / "m-old"
    (folder / "code" / "old_helpers").mkdir(parents=True)
    (folder / "code" / "old_helpers" / "cp_old_tools.py").write_text(SHOUT)
    (folder / "code" / "old_helpers" / "cp_old_lazy.py").write_text(SHOUT)
    (folder / "my_agent.py").write_text(
        agent(top="import cp_old_tools", lazy="from cp_old_lazy import shout")
    )
    manifest = {
        "format_version": 1,
        "model_id": "m-old",
        "name": "old",
        "prompts": [],
        "code": "my_agent.py",
        "code_paths": ["code/old_helpers"],
        "config": None,
        "requirements": None,
        "input_example": None,
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))

    assert answer(folder) == "HI!"
    assert str((folder / "code" / "old_helpers").resolve()) in sys.path
    assert str((folder / "code").resolve()) not in sys.path


def run_cli(cwd: Path, root: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.chdir(cwd)
    locations = ["--store-url", f"sqlite:///{root / 'cli.db'}", "--artifact-root", str(root / "artifacts")]
    return main(["models", *locations, "log", *args, "--input-example", "example.json"])


def test_cli_log_with_a_lazy_import_from_a_plain_code_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported case: ``runtime models log lazy_agent.py --code-path ../lazylib`` failed its example."""
    (tmp_path / "lazylib").mkdir()
    (tmp_path / "lazylib" / "cp_lazyhelper.py").write_text(SHOUT)
    app = tmp_path / "app"
    app.mkdir()
    (app / "lazy_agent.py").write_text(agent(lazy="from cp_lazyhelper import shout"))
    (app / "example.json").write_text(json.dumps(EXAMPLE))

    code = run_cli(
        app, tmp_path, "lazy_agent.py", "--name", "lazy", "--code-path", "../lazylib", monkeypatch=monkeypatch
    )

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.startswith("models:/m-")


def test_cli_log_with_a_package_code_path_like_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "libdir" / "cp_cli_helpers"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(SHOUT)
    (tmp_path / "agent.py").write_text(agent(top="from cp_cli_helpers import shout"))
    (tmp_path / "example.json").write_text(json.dumps(EXAMPLE))

    code = run_cli(
        tmp_path,
        tmp_path,
        "agent.py",
        "--name",
        "mlflow-style",
        "--code-path",
        "libdir/cp_cli_helpers",
        monkeypatch=monkeypatch,
    )

    assert (code, capsys.readouterr().err) == (0, "")


MLFLOW_AGENT = """\
import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse

from cp_ml_helpers import shout


class Shout(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        import cp_ml_single

        text = cp_ml_single.SUFFIX + shout(request.input[-1].content)
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")])


mlflow.models.set_model(Shout())
"""


@pytest.mark.mlflow
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning")
def test_an_mlflow_model_with_code_paths_serves_and_imports(
    client: RegistryClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's own ``save_model(code_paths=[...])`` copies a package folder and a file under code/."""
    import mlflow

    package = tmp_path / "libdir" / "cp_ml_helpers"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(SHOUT)
    single = tmp_path / "libdir" / "cp_ml_single.py"
    single.write_text("SUFFIX = '?'\n")
    code = tmp_path / "shout_agent.py"
    code.write_text(MLFLOW_AGENT)
    saved = tmp_path / "mlflow-model"
    with monkeypatch.context() as patched:  # saving imports the agent: let it find its helpers where they are
        patched.syspath_prepend(str(package.parent))
        mlflow.pyfunc.save_model(
            path=str(saved), python_model=str(code), code_paths=[str(package), str(single)]
        )
    for name in ("cp_ml_helpers", "cp_ml_single"):
        sys.modules.pop(name, None)  # imported from libdir while saving; the model must use its own copies
    assert sorted(p.name for p in (saved / "code").iterdir()) == ["cp_ml_helpers", "cp_ml_single.py"]

    assert answer(saved) == "?HI!"  # served straight from the MLflow folder
    assert sys.modules["cp_ml_helpers"].__file__ == str(saved / "code" / "cp_ml_helpers" / "__init__.py")

    logged = import_mlflow_model(client, saved, "from-mlflow", validate_agent_dir)
    folder = client.resolve(logged.uri).local_path
    manifest = read_manifest(folder)
    assert (manifest["code_paths"], manifest["sys_path"]) == (
        ["code/cp_ml_helpers", "code/cp_ml_single.py"],
        ["code"],
    )
    assert answer(folder) == "?HI!"
