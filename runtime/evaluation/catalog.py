"""``ScorerCatalog``: scorer names -> scorers, the same in a server and in every ``runtime worker``.

Jobs name their scorers (a job must travel through Redis, a function cannot), so every process that scores
resolves names through a catalog: the built-ins (with arguments, ``latency_slo`` with ``{"max_ms": 500}``)
and the scorers of a user's file (``--scorers scorers.py``: every module-level :class:`Scorer`). A name in
the file shadows a built-in of the same name, on purpose: a team can redefine ``no_pii`` for its domain.
A reference *with arguments* always means the built-in (file scorers take none): the README's file sets
``latency_slo`` to 2000 ms, and an attachment ``latency_slo:{"max_ms": 500}`` runs the built-in at 500 ms.
Arguments are checked against the built-in's signature and types when the scorer is built, so ``attach``
refuses what a built-in does not take before anything is stored.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError, validate_call

from runtime.evaluation import builtin, judges
from runtime.evaluation.job import ScorerRef
from runtime.evaluation.scorer import Scorer

__all__ = ["BUILTINS", "ScorerCatalog", "UnknownScorer", "load_scorers_file"]

log = logging.getLogger("runtime.evaluation")

BUILTINS: dict[str, Callable[..., Scorer]] = {
    "latency_slo": builtin.latency_slo,
    "ttft_slo": builtin.ttft_slo,
    "token_budget": builtin.token_budget,
    "response_length": builtin.response_length,
    "regex_match": builtin.regex_match,
    "must_include": builtin.must_include,
    "json_schema": builtin.json_schema,
    "no_pii": builtin.no_pii,
    "no_refusal": builtin.no_refusal,
    "no_tool_errors": builtin.no_tool_errors,
    "relevance": judges.relevance,
    "guidelines": judges.guidelines,
    "correctness": judges.correctness,
    "safety": judges.safety,
}


class UnknownScorer(LookupError):
    pass


def load_scorers_file(path: str | Path) -> dict[str, Scorer]:
    """Import a Python file and collect its module-level scorers, by name. Raises on import errors."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"scorers file {str(file)!r} does not exist")
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]
    module_name = f"runtime_user_scorers_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import scorers from {str(file)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    found = {value.name: value for value in vars(module).values() if isinstance(value, Scorer)}
    if not found:
        raise ValueError(f"{str(file)!r} defines no scorer: decorate functions with @scorer")
    return found


class ScorerCatalog:
    def __init__(self, scorers: Mapping[str, Scorer] | None = None) -> None:
        self._named = dict(scorers or {})
        self._built: dict[tuple[str, str], Scorer] = {}

    @classmethod
    def from_file(cls, path: str | Path | None) -> ScorerCatalog:
        return cls(load_scorers_file(path) if path else None)

    def names(self) -> list[str]:
        return sorted(set(self._named) | set(BUILTINS))

    def user_scorers(self) -> list[Scorer]:
        return list(self._named.values())

    def knows(self, name: str) -> bool:
        return name in self._named or name in BUILTINS

    def in_file(self, name: str) -> bool:
        return name in self._named

    def resolve(self, ref: ScorerRef) -> Scorer:
        """The scorer a job asks for; raises :class:`UnknownScorer` or ``TypeError`` for bad arguments.

        Without arguments the file's scorer of that name wins over a built-in; with arguments only a
        built-in can be meant, so that is what runs.
        """
        named = self._named.get(ref.name)
        if named is not None and not ref.args:
            return named
        if ref.args and ref.name not in BUILTINS:
            where = "from the scorers file" if named is not None else "that is not a built-in"
            raise TypeError(f"scorer {ref.name!r} {where} takes no arguments: only built-ins do")
        return self.build(ref.name, ref.args)

    def build(self, name: str, args: Mapping[str, Any]) -> Scorer:
        factory = BUILTINS.get(name)
        if factory is None:
            raise UnknownScorer(f"no scorer named {name!r} here; known: {', '.join(self.names())}")
        key = (name, json.dumps(dict(args), sort_keys=True, default=str))
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = _call_checked(name, factory, args)
        return built


def _call_checked(name: str, factory: Callable[..., Scorer], args: Mapping[str, Any]) -> Scorer:
    """``factory(**args)`` with the arguments checked against its signature and annotations first.

    An attachment's arguments are JSON typed by a user (``{"max_ms": "fast"}``): without the check the
    scorer is built and then fails on every sampled request instead of once, when attached.
    """
    try:
        return validate_call(factory)(**args)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] == "unexpected_keyword_argument":
            params = ", ".join(inspect.signature(factory).parameters)
            raise TypeError(
                f"built-in scorer {name!r} takes no argument {where!r} (it takes: {params})"
            ) from None
        raise TypeError(f"argument {where!r} of built-in scorer {name!r}: {error['msg']}") from None
