"""A configured sampler decides for the root span as it would through the SDK, more cheaply when it can.

The SDK's samplers (always_on/off, traceidratio and their parentbased forms: everything
``OTEL_TRACES_SAMPLER`` names) decide by the trace id and the caller's flag: their rule is applied
directly, and must give the SDK's decision for every trace id and caller. Any other sampler is asked,
with the root's attributes, and can decide by them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from runtime.observability import attributes as a
from runtime.observability.metrics import RuntimeMetrics
from runtime.observability.sampling import root_decider
from runtime.observability.telemetry import _remote_parent
from runtime.observability.usage import RecordInsideRequests
from runtime.protocol.call import Call, CallStatus, ModelInfo
from tests.observability.test_root_metrics import Roots
from tests.observability.test_root_metrics import telemetry as root_telemetry


class NoInvocations(Sampler):
    """Drops the requests of one endpoint: it decides by the span's attributes."""

    def __init__(self) -> None:
        self.seen: list[Attributes] = []

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        self.seen.append(attributes)
        if (attributes or {}).get(a.ENDPOINT) == "/invocations":
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, {"sampled.by": "endpoint"})

    def get_description(self) -> str:
        return "NoInvocations"


class Ratio(TraceIdRatioBased):
    """A subclass of one of the SDK's samplers: it may decide otherwise, so it gets the attributes."""


SDK_SAMPLERS = [
    ALWAYS_ON,
    ALWAYS_OFF,
    TraceIdRatioBased(0.25),
    TraceIdRatioBased(0.0),
    ParentBased(ALWAYS_ON),
    ParentBased(TraceIdRatioBased(0.1)),
    ParentBasedTraceIdRatio(0.5),
    ParentBased(ALWAYS_OFF, remote_parent_sampled=ALWAYS_OFF, remote_parent_not_sampled=ALWAYS_ON),
    RecordInsideRequests(ParentBased(TraceIdRatioBased(0.3))),
    RecordInsideRequests(ALWAYS_OFF),
]


@pytest.mark.parametrize("sampler", SDK_SAMPLERS, ids=lambda s: s.get_description())
def test_the_sdks_samplers_decide_as_the_sdk_does_for_every_trace_and_caller(sampler: Sampler) -> None:
    decide = root_decider(sampler)
    assert decide is not None
    rng = random.Random(7)
    for trace_id in [1, 2**64 - 1, 2**64, 2**128 - 1, *(rng.getrandbits(128) or 1 for _ in range(300))]:
        for caller in (None, True, False):
            parent = _remote_parent(trace_id, 0xAB, caller, None) if caller is not None else None
            sdk = sampler.should_sample(parent, trace_id, "invoke_agent bot", SpanKind.SERVER, {})
            assert decide(trace_id, caller) is sdk.decision, (trace_id, caller)


@pytest.mark.parametrize(
    "sampler",
    [
        NoInvocations(),
        RecordInsideRequests(NoInvocations()),
        ParentBased(NoInvocations()),
        ParentBased(ALWAYS_ON, remote_parent_sampled=NoInvocations()),
        Ratio(0.5),
    ],
    ids=lambda s: s.get_description(),
)
def test_any_other_sampler_is_asked(sampler: Sampler) -> None:
    assert root_decider(sampler) is None


def serve(sampler: Sampler, endpoints: Sequence[str]) -> Roots:
    roots = Roots(counts=False)
    telemetry = root_telemetry(RuntimeMetrics(), roots, sampler)
    for endpoint in endpoints:
        call = Call("r", endpoint, False, ModelInfo("bot", version="2"), trace_id="ab" * 16)
        handle = telemetry.begin(call)
        call.status = CallStatus.OK
        call.input_tokens, call.output_tokens = 3, 5
        telemetry.end(call, handle)
    return roots


def test_a_sampler_of_its_own_decides_by_the_roots_attributes() -> None:
    sampler = NoInvocations()
    roots = serve(sampler, ["/invocations", "/v1/responses"])
    seen: list[Any] = sampler.seen
    assert [s[a.ENDPOINT] for s in seen] == ["/invocations", "/v1/responses"]
    assert seen[0][a.AGENT_NAME] == "bot"
    [record] = roots.records
    assert record[7][a.ENDPOINT] == "/v1/responses"  # the dropped one left no record
    assert record[9] == {"sampled.by": "endpoint"}  # what the sampler said comes along


def test_the_sdks_samplers_keep_every_attribute_without_being_handed_them() -> None:
    roots = serve(RecordInsideRequests(ParentBased(TraceIdRatioBased(1.0))), ["/invocations"])
    [record] = roots.records
    assert record[9] is None  # nothing came back from the sampler: it was given nothing to copy
    assert record[7][a.ENDPOINT] == "/invocations" and record[8][4] == CallStatus.OK
    assert serve(ParentBased(TraceIdRatioBased(0.0)), ["/invocations"]).records == []
