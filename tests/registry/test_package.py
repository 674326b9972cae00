from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import registry

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_registry_never_imports_runtime() -> None:
    """The registry is a leaf package; importing all of it must not pull in any ``runtime`` module."""
    modules = [
        path.relative_to(REPO_ROOT).with_suffix("").as_posix().replace("/", ".")
        for path in (REPO_ROOT / "registry").rglob("*.py")
        if "migrations" not in path.parts
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name.removesuffix('.__init__'))\n"
        "leaked = sorted(m for m in sys.modules if m == 'runtime' or m.startswith('runtime.'))\n"
        "print(leaked)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_public_names_are_exported() -> None:
    assert sorted(registry.__all__) == registry.__all__
    for name in registry.__all__:
        assert getattr(registry, name) is not None


def test_error_tree_codes_statuses_and_exit_codes() -> None:
    expected = {
        registry.InvalidArgument: ("invalid_argument", 400, 2),
        registry.NotFound: ("not_found", 404, 1),
        registry.Conflict: ("conflict", 409, 1),
        registry.AlreadyExists: ("already_exists", 409, 1),
        registry.StoreUnavailable: ("store_unavailable", 503, 1),
    }
    for cls, (code, status, exit_code) in expected.items():
        error = cls("boom")
        assert isinstance(error, registry.RegistryError)
        assert (error.code, error.status, error.exit_code, error.message) == (code, status, exit_code, "boom")
