"""Writing scorers, the built-ins, and the deterministic sampler."""

from __future__ import annotations

import json
from typing import Any

import pytest

from registry.entities import SourceType, TraceRecord
from runtime.evaluation import Feedback, Scorer, Trace, scorer
from runtime.evaluation import builtin as b
from runtime.evaluation.catalog import ScorerCatalog, UnknownScorer, load_scorers_file
from runtime.evaluation.job import ScorerRef
from runtime.evaluation.json_schema import schema_errors
from runtime.evaluation.pii import luhn_valid
from runtime.evaluation.results import BadScore, assessment_id, to_feedbacks
from runtime.evaluation.sampling import Attachment, CallFilter, sampled
from runtime.protocol.call import Call, CallStatus, ModelInfo
from tests.evaluation.conftest import write_scorers


def trace(**kw: Any) -> Trace:
    return Trace(TraceRecord(trace_id="tr-" + "a" * 32, start_time_ns=1, **kw), [], stored=False)


def test_scorer_takes_only_what_it_names_and_stays_callable() -> None:
    @scorer
    def short(outputs: str) -> bool:
        return len(outputs) < 5

    assert isinstance(short, Scorer)
    assert short.params == {"outputs"}
    assert short(outputs="hi", inputs="ignored") is True
    assert short.version is not None and short.source_type is SourceType.CODE

    @scorer(name="judged", timeout=2.0, version="7")
    async def everything(**kwargs: Any) -> bool:
        return True

    assert everything.name == "judged" and everything.timeout == 2.0 and everything.version == "7"
    assert everything.params == {"inputs", "outputs", "expectations", "trace", "judge"}
    assert everything.is_async


def test_a_scorer_asking_for_an_unknown_parameter_fails_at_decoration() -> None:
    with pytest.raises(TypeError, match="may take only inputs, outputs"):

        @scorer
        def bad(response: str) -> bool:
            return True

    with pytest.raises(TypeError, match="passable by name"):

        @scorer
        def positional(outputs: str, /) -> bool:
            return True


def test_return_values_are_normalized_or_rejected() -> None:
    s = scorer(name="echo")(lambda outputs: outputs)
    assert to_feedbacks(True, s)[0].value is True
    assert to_feedbacks(3, s)[0].value == 3.0
    assert to_feedbacks("good", s)[0].value == "good"
    named = to_feedbacks([Feedback(1, "r", {"k": 1}, name="a"), 0.5], s)
    assert [(f.name, f.value) for f in named] == [("a", 1.0), ("echo.1", 0.5)]
    assert named[0].metadata == {"k": 1}
    for bad, message in [
        (None, "returned None"),
        ({"x": 1}, "returned dict"),
        (float("nan"), "finite number"),
        ([], "list of 0"),
        ([Feedback(1, name="x"), Feedback(2, name="x")], "same name"),
        (Feedback(), "without a value"),
        (Feedback(1, metadata={"o": object()}), "metadata must be JSON"),
    ]:
        with pytest.raises(BadScore, match=message):
            to_feedbacks(bad, s)


def test_assessment_ids_are_deterministic_per_trace_scorer_and_name() -> None:
    a = assessment_id("tr-" + "1" * 32, "pii", "pii")
    assert a == assessment_id("tr-" + "1" * 32, "pii", "pii")
    assert a != assessment_id("tr-" + "2" * 32, "pii", "pii")
    assert a.startswith("a-") and len(a) == 34


def test_slo_and_budget_scorers() -> None:
    t = trace(latency_ms=1500.0, ttft_ms=200.0, input_tokens=100, output_tokens=50, total_tokens=150)
    assert b.latency_slo(2000)(trace=t).value is True
    assert b.latency_slo(1000)(trace=t).value is False
    assert "1500 ms > 1000 ms" in (b.latency_slo(1000)(trace=t).rationale or "")
    assert b.ttft_slo(100)(trace=t).value is False
    assert b.token_budget(150)(trace=t).value is True
    assert b.token_budget(40, kind="output")(trace=t).value is False
    with pytest.raises(ValueError, match="no time to first token"):
        b.ttft_slo()(trace=trace())
    with pytest.raises(ValueError, match="kind must be"):
        b.token_budget(kind="cached")


def test_text_scorers() -> None:
    assert b.response_length(1, 5)(outputs="hello").value is True
    assert b.response_length(1, 4)(outputs="hello").value is False
    assert b.regex_match(r"\d{3}")(outputs="call 555").value is True
    assert b.regex_match(r"\d{3}", must_match=False)(outputs="call 555").value is False
    found = b.must_include(["Paris", "18C"])(outputs="It is 18c in paris")
    assert found.value is True
    missing = b.must_include(["Paris", "rain"], case_sensitive=True)(outputs="paris")
    assert missing.value is False and missing.metadata["missing"] == ["Paris", "rain"]
    assert b.no_refusal()(outputs="I'm sorry, but I can't help with that.").value is False
    assert b.no_refusal()(outputs="I can\u2019t assist with this request").value is False
    assert b.no_refusal()(outputs="Sure! Paris is the capital of France.").value is True


def test_json_schema_scorer_and_checker() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "minLength": 2}, "temp": {"type": "number", "maximum": 60}},
        "required": ["city", "temp"],
        "additionalProperties": False,
    }
    check = b.json_schema(schema)
    assert check(outputs='```json\n{"city": "Paris", "temp": 18}\n```').value is True
    bad = check(outputs=json.dumps({"city": "P", "temp": 99, "x": 1}))
    assert bad.value is False
    assert "$.city: shorter than 2" in (bad.rationale or "") and "$.temp: must be <= 60" in (
        bad.rationale or ""
    )
    assert "unexpected property 'x'" in (bad.rationale or "")
    assert check(outputs="not json").value is False
    assert b.json_schema()(outputs="[1, 2]").value is True
    assert schema_errors(True, {"type": "integer"}) == ["$: expected integer, got bool"]
    assert schema_errors(3.0, {"type": "integer"}) == []
    refs = {
        "$defs": {"P": {"type": "object", "required": ["n"]}},
        "type": "array",
        "items": {"$ref": "#/$defs/P"},
    }
    assert schema_errors([{"n": 1}, {}], refs) == ["$[1]: missing required property 'n'"]
    assert schema_errors("a", {"anyOf": [{"type": "integer"}, {"enum": ["b"]}]}) == [
        "$: matches none of anyOf"
    ]
    assert schema_errors(1, {"oneOf": [{"type": "integer"}, {"type": "number"}]}) == [
        "$: matches 2 of oneOf, expected exactly 1"
    ]


def test_pii_finds_emails_phones_and_luhn_valid_cards_and_masks_them() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    clean = b.no_pii()(inputs="", outputs="Order 20240115 shipped on 2024-01-15, version 1.2.3")
    assert clean.value is True
    text = "Mail jane.doe@example.com or call +1 (415) 555-0134; card 4111 1111 1111 1111."
    found = b.no_pii()(inputs="", outputs=text)
    assert found.value is False
    assert found.metadata["found"] == {"card": 1, "email": 1, "phone": 1}
    assert "4111 1111" not in (found.rationale or "") and "jane.doe" not in (found.rationale or "")
    assert "************1111" in (found.rationale or "")
    assert b.no_pii()(inputs="", outputs="card 4111 1111 1111 1112").value is True
    assert b.no_pii(check_inputs=True)(inputs="me@x.io", outputs="ok").value is False


def test_tool_errors_need_stored_spans() -> None:
    with pytest.raises(ValueError, match="spans were not stored"):
        b.no_tool_errors()(trace=trace())


def test_sampling_is_deterministic_per_trace_and_scorer_and_near_the_rate() -> None:
    ids = [f"{i:032x}" for i in range(4000)]
    chosen = [t for t in ids if sampled(t, "pii", 0.2)]
    assert 0.17 < len(chosen) / len(ids) < 0.23
    assert chosen == [t for t in ids if sampled("tr-" + t, "pii", 0.2)]  # prefix or not, same answer
    other = {t for t in ids if sampled(t, "relevance", 0.2)}
    assert 0.1 < len(other & set(chosen)) / len(chosen) < 0.35  # independent samples per scorer
    assert all(sampled(t, "x", 1.0) for t in ids[:10]) and not any(sampled(t, "x", 0.0) for t in ids[:10])


def test_filters_and_attachments() -> None:
    call = Call("r1", "/v1/responses", True, ModelInfo("bot", version="3"), trace_id="f" * 32)
    assert CallFilter.parse("status=ok, endpoint=/v1/responses,stream=TRUE").matches(call)
    assert not CallFilter.parse("model_version=2").matches(call)
    call.status = CallStatus.ERROR
    assert CallFilter.parse("status=ERROR").matches(call)
    with pytest.raises(ValueError, match="bad filter 'user=x'"):
        CallFilter.parse("user=x")
    with pytest.raises(ValueError, match="between 0 and 1"):
        Attachment("x", 1.5)
    assert Attachment("x", 1.0).wants(call) and not Attachment("x", 0.0).wants(call)


def test_catalog_resolves_builtins_with_arguments_and_file_scorers(tmp_path: Any) -> None:
    path = write_scorers(
        tmp_path / "s.py",
        "@scorer\ndef polite(outputs):\n    return 'please' in outputs\n\n"
        "from runtime.evaluation import builtin\nfast = builtin.latency_slo(max_ms=5, name='fast')\n",
    )
    assert set(load_scorers_file(path)) == {"polite", "fast"}
    catalog = ScorerCatalog.from_file(path)
    assert catalog.resolve(ScorerRef(name="polite")).name == "polite"
    built = catalog.resolve(ScorerRef(name="latency_slo", args={"max_ms": 5}))
    assert built is catalog.resolve(ScorerRef(name="latency_slo", args={"max_ms": 5}))  # cached
    with pytest.raises(UnknownScorer, match="no scorer named 'nope'"):
        catalog.resolve(ScorerRef(name="nope"))
    with pytest.raises(TypeError, match="takes no arguments"):
        catalog.resolve(ScorerRef(name="polite", args={"x": 1}))
    with pytest.raises(TypeError):
        catalog.resolve(ScorerRef(name="latency_slo", args={"bogus": 1}))
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no scorer"):
        load_scorers_file(empty)


def test_public_surface() -> None:
    from runtime import evaluation

    assert evaluation.__all__ == sorted(evaluation.__all__)
    assert all(hasattr(evaluation, name) for name in evaluation.__all__)
