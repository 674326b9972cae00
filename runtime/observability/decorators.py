"""``@trace``: one span per call of a function, coroutine function, generator or async generator.

The arguments become the span's inputs (``self``/``cls`` left out) and the return value, or the list of
yielded items, its outputs. Serialising them is skipped entirely when the span is not recorded or content
capture is off, so a decorated function outside any trace costs a context lookup and a no-op span.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import Any, TypeVar, cast, overload

from opentelemetry import context as otel_context
from opentelemetry.trace import set_span_in_context

from runtime.observability.attributes import SpanType
from runtime.observability.spans import LiveSpan, finish, span, start_attributes, tracer_and_capture

__all__ = ["trace"]

F = TypeVar("F", bound=Callable[..., Any])
_MAX_ITEMS = 1000  # yielded items kept as a generator's outputs


class _Spec:
    __slots__ = ("attributes", "capture_inputs", "capture_outputs", "name", "signature", "span_type")

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None,
        span_type: SpanType | str,
        attributes: Mapping[str, Any] | None,
        capture_inputs: bool,
        capture_outputs: bool,
    ) -> None:
        self.name: str = name or str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "function"))
        self.span_type = span_type
        self.attributes = attributes
        self.capture_inputs = capture_inputs
        self.capture_outputs = capture_outputs
        try:
            self.signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            self.signature = None

    def inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.signature is None:
            return {"args": list(args), "kwargs": kwargs}
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError:
            return {"args": list(args), "kwargs": kwargs}
        return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}

    def record_inputs(self, live: LiveSpan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.capture_inputs and live.span.is_recording():
            live.set_inputs(self.inputs(args, kwargs))

    def record_outputs(self, live: LiveSpan, value: Any) -> None:
        if self.capture_outputs and live.span.is_recording():
            live.set_outputs(value)


def _function(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with span(spec.name, spec.span_type, attributes=spec.attributes) as live:
            spec.record_inputs(live, args, kwargs)
            result = fn(*args, **kwargs)
            spec.record_outputs(live, result)
            return result

    return wrapper


def _coroutine(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        with span(spec.name, spec.span_type, attributes=spec.attributes) as live:
            spec.record_inputs(live, args, kwargs)
            result = await fn(*args, **kwargs)
            spec.record_outputs(live, result)
            return result

    return wrapper


def _start(
    spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[LiveSpan, otel_context.Context]:
    tracer, capture = tracer_and_capture()
    current = tracer.start_span(
        spec.name, attributes=start_attributes(spec.name, spec.span_type, spec.attributes)
    )
    live = LiveSpan(current, capture)
    spec.record_inputs(live, args, kwargs)
    return live, set_span_in_context(current)


def _generator(fn: Callable[..., Generator[Any]], spec: _Spec) -> Callable[..., Iterator[Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        live, ctx = _start(spec, args, kwargs)
        items: list[Any] = []
        error: BaseException | None = None
        inner = fn(*args, **kwargs)
        try:
            while True:
                token = otel_context.attach(ctx)
                try:
                    item = next(inner)
                except StopIteration:
                    break
                finally:
                    otel_context.detach(token)
                if len(items) < _MAX_ITEMS:
                    items.append(item)
                yield item
        except BaseException as exc:
            error = exc
            raise
        finally:
            token = otel_context.attach(ctx)
            try:
                inner.close()
            finally:
                otel_context.detach(token)
            spec.record_outputs(live, items)
            finish(live, error)
            live.span.end()

    return wrapper


def _async_generator(fn: Callable[..., AsyncIterator[Any]], spec: _Spec) -> Callable[..., AsyncIterator[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        live, ctx = _start(spec, args, kwargs)
        items: list[Any] = []
        error: BaseException | None = None
        inner = fn(*args, **kwargs)
        try:
            while True:
                token = otel_context.attach(ctx)
                try:
                    item = await anext(inner)
                except StopAsyncIteration:
                    break
                finally:
                    otel_context.detach(token)
                if len(items) < _MAX_ITEMS:
                    items.append(item)
                yield item
        except BaseException as exc:
            error = exc
            raise
        finally:
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                token = otel_context.attach(ctx)
                try:
                    await aclose()
                finally:
                    otel_context.detach(token)
            spec.record_outputs(live, items)
            finish(live, error)
            live.span.end()

    return wrapper


def _decorate(fn: F, spec: _Spec) -> F:
    if inspect.isasyncgenfunction(fn):
        return cast(F, _async_generator(fn, spec))
    if inspect.isgeneratorfunction(fn):
        return cast(F, _generator(fn, spec))
    if inspect.iscoroutinefunction(fn):
        return cast(F, _coroutine(fn, spec))
    return cast(F, _function(fn, spec))


@overload
def trace(fn: F, /) -> F: ...


@overload
def trace(
    *,
    name: str | None = None,
    span_type: SpanType | str = SpanType.UNKNOWN,
    attributes: Mapping[str, Any] | None = None,
    capture_inputs: bool = True,
    capture_outputs: bool = True,
) -> Callable[[F], F]: ...


def trace(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    span_type: SpanType | str = SpanType.UNKNOWN,
    attributes: Mapping[str, Any] | None = None,
    capture_inputs: bool = True,
    capture_outputs: bool = True,
) -> F | Callable[[F], F]:
    """Decorate a function with a span: ``@trace`` or ``@trace(span_type=SpanType.TOOL, name="search")``."""

    def decorate(target: F) -> F:
        return _decorate(target, _Spec(target, name, span_type, attributes, capture_inputs, capture_outputs))

    return decorate(fn) if fn is not None else decorate
