"""Auto-tracing of the official ``openai`` SDK: ``chat.completions.create`` / ``.parse`` and
``responses.create`` / ``.parse`` (the SDK's ``stream()`` helpers and ``with_raw_response`` go through
``create``; a raw response's usage is not read, as the SDK parses it only when the agent asks).

The composition root calls :func:`instrument_openai` at app start (and :func:`uninstrument_openai` at
shutdown); both are idempotent and reference-counted, so two apps in one process share one patch and the
original methods come back when the last app goes. Patching never imports the SDK: importing ``openai``
takes longer than the rest of a server's start, and most agents never use it. The modules already imported
are patched at once; for the others an import hook (a ``sys.meta_path`` finder) patches each right after
the agent's code imports it, before anything can call it. The patched methods cost one context lookup
outside a served request and change nothing there: only calls made by an agent while it serves a request
get a span (on that app's tracer, under the request's trace), which is what "on by default in served
agents" means.

Streams keep their type (agents may ``isinstance``-check them or use them as context managers): the wrapper
swaps the stream's internal iterator for one that watches the chunks, and wraps ``close``, so the span ends
when the stream is exhausted, fails or is closed early. If a future SDK drops that internal iterator the
span ends at once, marked incomplete, rather than breaking the agent.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from runtime.observability.autotrace.llm_call import LLMCall
from runtime.observability.context import current_request

__all__ = ["instrument_openai", "is_instrumented", "uninstrument_openai"]

log = logging.getLogger("runtime.observability.autotrace")

# (module, class, API kind, async)
_TARGETS = (
    ("openai.resources.chat.completions", "Completions", "chat", False),
    ("openai.resources.chat.completions", "AsyncCompletions", "chat", True),
    ("openai.resources.responses", "Responses", "responses", False),
    ("openai.resources.responses", "AsyncResponses", "responses", True),
)
_METHODS = ("create", "parse")  # parse: structured outputs, the same call with a response format
_MARK = "__runtime_autotrace_original__"

_lock = threading.Lock()
_users = 0
_patched: list[tuple[Any, str, Any]] = []


def _start(api: str, kwargs: dict[str, Any]) -> LLMCall | None:
    request = current_request()
    if request is None:
        return None
    try:
        return LLMCall(request, api, kwargs)
    except Exception:
        log.debug("could not start an LLM span", exc_info=True)
        return None


def _sync_create(original: Callable[..., Any], api: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = _start(api, kwargs)
        if call is None:
            return original(self, *args, **kwargs)
        kwargs["extra_headers"] = call.headers(kwargs.get("extra_headers"))
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        return _observe(result, call, is_async=False)

    setattr(create, _MARK, original)
    return create


def _async_create(original: Callable[..., Any], api: str) -> Callable[..., Any]:
    @functools.wraps(original)
    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = _start(api, kwargs)
        if call is None:
            return await original(self, *args, **kwargs)
        kwargs["extra_headers"] = call.headers(kwargs.get("extra_headers"))
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        return _observe(result, call, is_async=True)

    setattr(create, _MARK, original)
    return create


def _observe(result: Any, call: LLMCall, *, is_async: bool) -> Any:
    iterator = getattr(result, "_iterator", None)
    if iterator is None or not hasattr(result, "response"):  # a complete response, not a stream
        call.response(result)
        return result
    try:
        if is_async:
            result._iterator = _watch_async(iterator, call)
            result.close = _closing_async(result.close, call)
        else:
            result._iterator = _watch(iterator, call)
            result.close = _closing(result.close, call)
    except Exception:
        log.debug("could not watch an openai stream", exc_info=True)
        call.end(completed=False)
    return result


def _watch(iterator: Iterator[Any], call: LLMCall) -> Iterator[Any]:
    try:
        for chunk in iterator:
            call.chunk(chunk)
            yield chunk
    except GeneratorExit:  # closed or collected before its end (``for chunk in stream: break``)
        call.end(completed=False)
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    call.end(completed=True)


async def _watch_async(iterator: AsyncIterator[Any], call: LLMCall) -> AsyncIterator[Any]:
    try:
        async for chunk in iterator:
            call.chunk(chunk)
            yield chunk
    except GeneratorExit:
        call.end(completed=False)
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    call.end(completed=True)


def _closing(close: Callable[[], None], call: LLMCall) -> Callable[[], None]:
    def wrapped() -> None:
        try:
            close()
        finally:
            call.end(completed=False)

    return wrapped


def _closing_async(close: Callable[[], Any], call: LLMCall) -> Callable[[], Any]:
    async def wrapped() -> None:
        try:
            await close()
        finally:
            call.end(completed=False)

    return wrapped


def _patch(module: ModuleType) -> None:
    """Patch the targets of ``module`` (the caller holds ``_lock`` and has a user)."""
    for module_name, class_name, api, is_async in _TARGETS:
        if module_name != module.__name__:
            continue
        cls = getattr(module, class_name, None)
        for method in _METHODS:
            current = getattr(cls, method, None)
            if cls is None or current is None:
                log.debug("openai %s.%s.%s not found: not traced", module_name, class_name, method)
                continue
            if hasattr(current, _MARK):  # patched already (another copy of this module)
                continue
            _patched.append((cls, method, current))
            setattr(cls, method, (_async_create if is_async else _sync_create)(current, api))


def _patch_imported(module: ModuleType) -> None:
    with _lock:
        if _users > 0:
            _patch(module)


class _PatchingLoader(importlib.abc.Loader):
    """The module's own loader, patching the module once it has run; everything else is the loader's."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader  # nothing of the hook stays on the module
        module.__loader__ = self._loader
        _patch_imported(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds the target modules through the other finders and wraps their loaders."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _MODULES:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


_MODULES = frozenset(module for module, *_ in _TARGETS)
_HOOK = _PatchOnImport()


def instrument_openai() -> bool:
    """Patch the SDK now or when it is imported (counted); False when ``openai`` is not installed."""
    global _users
    with _lock:
        if _users == 0:
            if "openai" not in sys.modules and importlib.util.find_spec("openai") is None:
                return False
            for name in _MODULES:
                module = sys.modules.get(name)
                if module is not None:
                    _patch(module)
            if any(name not in sys.modules for name in _MODULES) and _HOOK not in sys.meta_path:
                sys.meta_path.insert(0, _HOOK)
        _users += 1
        return True


def uninstrument_openai() -> None:
    """Drop one user of the patch; the last one restores the SDK's own methods."""
    global _users
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users == 0:
            if _HOOK in sys.meta_path:
                sys.meta_path.remove(_HOOK)
            while _patched:
                cls, method, original = _patched.pop()
                setattr(cls, method, original)


def is_instrumented() -> bool:
    return _users > 0
