"""``@scorer`` and ``Feedback``: how a user writes an evaluator.

A scorer is a plain function that names what it needs among ``inputs``, ``outputs``, ``expectations``,
``trace`` and ``judge`` (the configured LLM judge client); the engine passes only those, so a scorer stays an
ordinary function its author can call in a unit test. It may be sync (run in a thread, never on the event
loop) or async, and returns a bool, a number, a string, a :class:`Feedback` or a list of them.

Parameters are checked when the function is decorated, not when live traffic first reaches it: a typo in a
parameter name is an error at import, where its author sees it.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from pydantic import JsonValue

from registry.entities import SourceType, check_name

__all__ = ["PARAMETERS", "Feedback", "Scorer", "scorer"]

# What a scorer may ask for, in the order the documentation lists them.
PARAMETERS = ("inputs", "outputs", "expectations", "trace", "judge")

Value = bool | int | float | str | None


@dataclass(frozen=True, slots=True)
class Feedback:
    """One score with its reason. ``name`` is needed only when a scorer returns several."""

    value: Value = None
    rationale: str | None = None
    metadata: Mapping[str, JsonValue] = field(default_factory=dict)
    name: str | None = None
    error: str | None = None


def _parameters(fn: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    """The names the function takes and whether it takes ``**kwargs`` (then it gets all of them)."""
    names: set[str] = set()
    takes_all = False
    for param in inspect.signature(fn).parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            takes_all = True
        elif param.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL):
            raise TypeError(f"scorer {fn.__name__!r}: parameters must be passable by name")
        elif param.name not in PARAMETERS:
            if param.default is inspect.Parameter.empty:
                raise TypeError(
                    f"scorer {fn.__name__!r} takes {param.name!r}; a scorer may take only "
                    f"{', '.join(PARAMETERS)}"
                )
        else:
            names.add(param.name)
    return frozenset(PARAMETERS if takes_all else names), takes_all


def _source_version(fn: Callable[..., Any]) -> str | None:
    """A short hash of the function's source: a changed scorer gives assessments a new version."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class Scorer:
    """A named evaluator; call it like the function it wraps (with keyword arguments)."""

    name: str
    fn: Callable[..., Any]
    params: frozenset[str]
    source_type: SourceType = SourceType.CODE
    version: str | None = None
    timeout: float | None = None
    description: str | None = None
    takes_all: bool = False

    @property
    def needs_trace(self) -> bool:
        return "trace" in self.params and not self.takes_all

    @property
    def needs_expectations(self) -> bool:
        """A scorer that compares against expectations has nothing to say about live traffic without them."""
        return "expectations" in self.params and not self.takes_all

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def arguments(self, available: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in available.items() if k in self.params}

    def __call__(self, **kwargs: Any) -> Any:
        return self.fn(**self.arguments(kwargs))

    def __repr__(self) -> str:
        return f"Scorer({self.name!r}, {self.source_type.value})"


def make_scorer(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    version: str | None = None,
    timeout: float | None = None,
    source_type: SourceType = SourceType.CODE,
    description: str | None = None,
) -> Scorer:
    params, takes_all = _parameters(fn)
    chosen = check_name(name or fn.__name__, "scorer name")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"scorer {chosen!r}: timeout must be positive")
    return Scorer(
        name=chosen,
        fn=fn,
        params=params,
        source_type=source_type,
        version=version or _source_version(fn),
        timeout=timeout,
        description=description or inspect.getdoc(fn),
        takes_all=takes_all,
    )


@overload
def scorer(fn: Callable[..., Any], /) -> Scorer: ...


@overload
def scorer(
    *,
    name: str | None = None,
    version: str | None = None,
    timeout: float | None = None,
    source_type: SourceType = SourceType.CODE,
) -> Callable[[Callable[..., Any]], Scorer]: ...


def scorer(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    timeout: float | None = None,
    source_type: SourceType = SourceType.CODE,
) -> Scorer | Callable[[Callable[..., Any]], Scorer]:
    """Turn a function into a :class:`Scorer`: ``@scorer`` or ``@scorer(name=..., timeout=...)``."""

    def wrap(function: Callable[..., Any]) -> Scorer:
        return make_scorer(function, name=name, version=version, timeout=timeout, source_type=source_type)

    return wrap(fn) if fn is not None else wrap
