"""The sampling decision for a request's root span, without the SDK's call chain when the sampler allows.

A configured sampler (``OTEL_TRACES_SAMPLER``) is asked about every request's root span. Through the SDK
that is a chain of calls building a parent context, looking the parent up in it, and a ``SamplingResult``
for each request, besides the attribute dict the sampler is handed: more, measured, than recording the
span, so a request the sampler drops cost the event loop more than one recorded with no sampler at all.

The samplers ``OTEL_TRACES_SAMPLER`` names (``always_on``, ``always_off``, ``traceidratio`` and their
``parentbased_*`` forms) decide by the trace id and the caller's sampled flag alone, by rules the
specification fixes. :func:`root_decider` turns such a sampler into that rule, a function of (trace id,
the caller's sampled flag or None for no caller); for any other sampler, a subclass of these included
(it may decide otherwise), it returns None and the sampler is asked as usual, with the attributes.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    StaticSampler,
    TraceIdRatioBased,
)

from runtime.observability.usage import RecordInsideRequests

__all__ = ["RootDecider", "root_decider"]

# (trace id, the caller's sampled flag, None when the request has no caller) -> the decision
RootDecider = Callable[[int, bool | None], Decision]
_SAMPLE = Decision.RECORD_AND_SAMPLE
_DROP = Decision.DROP


def root_decider(sampler: object) -> RootDecider | None:
    """What ``sampler`` decides for a root span, as a plain function; None if it may decide otherwise."""
    kind = type(sampler)  # exact types: a subclass may decide otherwise
    if kind is RecordInsideRequests:  # it changes decisions inside a request only, never on its root
        assert isinstance(sampler, RecordInsideRequests)
        return root_decider(sampler.inner)
    if kind is StaticSampler:
        decision = getattr(sampler, "_decision", None)  # the SDK keeps it private
        return _always(decision) if isinstance(decision, Decision) else None
    if kind is TraceIdRatioBased:
        assert isinstance(sampler, TraceIdRatioBased)
        return _ratio(sampler.TRACE_ID_LIMIT, sampler.bound)
    if kind in (ParentBased, ParentBasedTraceIdRatio):
        # A root span's caller, when there is one, is remote: the local-parent delegates never apply.
        root = root_decider(getattr(sampler, "_root", None))
        sampled = root_decider(getattr(sampler, "_remote_parent_sampled", None))
        unsampled = root_decider(getattr(sampler, "_remote_parent_not_sampled", None))
        if root is None or sampled is None or unsampled is None:
            return None
        return _parent_based(root, sampled, unsampled)
    return None


def _always(decision: Decision) -> RootDecider:
    def decide(trace_id: int, caller_sampled: bool | None) -> Decision:
        return decision

    return decide


def _ratio(limit: int, bound: int) -> RootDecider:
    def decide(trace_id: int, caller_sampled: bool | None) -> Decision:
        return _SAMPLE if trace_id & limit < bound else _DROP

    return decide


def _parent_based(root: RootDecider, sampled: RootDecider, unsampled: RootDecider) -> RootDecider:
    def decide(trace_id: int, caller_sampled: bool | None) -> Decision:
        if caller_sampled is None:
            return root(trace_id, None)
        return (sampled if caller_sampled else unsampled)(trace_id, caller_sampled)

    return decide
