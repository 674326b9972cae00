"""Built-in code scorers. Each factory returns a :class:`Scorer`; its value is True for the good outcome.

One polarity for all of them (an SLO met, no PII found, no refusal) makes every pass rate read the same way
in a summary: higher is better. Rationales describe findings without repeating sensitive content.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import JsonValue

from runtime.evaluation.json_schema import schema_errors
from runtime.evaluation.pii import find_pii
from runtime.evaluation.scorer import Feedback, Scorer, make_scorer
from runtime.evaluation.trace_view import Trace

__all__ = [
    "json_schema",
    "latency_slo",
    "must_include",
    "no_pii",
    "no_refusal",
    "no_tool_errors",
    "regex_match",
    "response_length",
    "token_budget",
    "ttft_slo",
]

_BUILTIN = "builtin-1"  # scorer_version of the built-ins; bump when a rule changes meaning


def _fmt(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def latency_slo(max_ms: float = 2000.0, name: str = "latency_slo") -> Scorer:
    def score(trace: Trace) -> Feedback:
        latency = trace.info.latency_ms
        if latency is None:
            raise ValueError("the trace has no latency")
        ok = latency <= max_ms
        return Feedback(
            ok, f"latency {_fmt(latency)} {'<=' if ok else '>'} {_fmt(max_ms)}", {"latency_ms": latency}
        )

    return make_scorer(
        score, name=name, version=_BUILTIN, description=f"Request latency at most {max_ms} ms."
    )


def ttft_slo(max_ms: float = 1000.0, name: str = "ttft_slo") -> Scorer:
    def score(trace: Trace) -> Feedback:
        ttft = trace.info.ttft_ms
        if ttft is None:
            raise ValueError("the trace has no time to first token (the agent produced no output)")
        ok = ttft <= max_ms
        return Feedback(
            ok, f"first token after {_fmt(ttft)} {'<=' if ok else '>'} {_fmt(max_ms)}", {"ttft_ms": ttft}
        )

    return make_scorer(
        score, name=name, version=_BUILTIN, description=f"Time to first token at most {max_ms} ms."
    )


def token_budget(max_tokens: int = 4000, kind: str = "total", name: str = "token_budget") -> Scorer:
    if kind not in ("total", "input", "output"):
        raise ValueError(f"token_budget kind must be total, input or output, not {kind!r}")

    def score(trace: Trace) -> Feedback:
        info = trace.info
        counts = {"input": info.input_tokens, "output": info.output_tokens, "total": info.total_tokens}
        used = counts[kind]
        if used is None:
            raise ValueError("the trace has no token counts")
        ok = used <= max_tokens
        note = " (estimated)" if info.tokens_estimated else ""
        return Feedback(ok, f"{used} {kind} tokens{note}, budget {max_tokens}", {f"{kind}_tokens": used})

    return make_scorer(score, name=name, version=_BUILTIN, description=f"At most {max_tokens} {kind} tokens.")


def response_length(min_chars: int = 1, max_chars: int = 4000, name: str = "response_length") -> Scorer:
    def score(outputs: str) -> Feedback:
        size = len(outputs or "")
        ok = min_chars <= size <= max_chars
        return Feedback(ok, f"{size} characters, expected {min_chars}..{max_chars}", {"chars": size})

    return make_scorer(score, name=name, version=_BUILTIN, description="Response length within bounds.")


def regex_match(pattern: str, name: str = "regex_match", must_match: bool = True) -> Scorer:
    compiled = re.compile(pattern)

    def score(outputs: str) -> Feedback:
        found = compiled.search(outputs or "") is not None
        verb = "matches" if found else "does not match"
        return Feedback(found == must_match, f"the response {verb} /{pattern}/")

    return make_scorer(score, name=name, version=_BUILTIN, description=f"The response matches /{pattern}/.")


def must_include(terms: Sequence[str], case_sensitive: bool = False, name: str = "must_include") -> Scorer:
    if isinstance(terms, str) or not terms:
        raise ValueError("must_include needs a non-empty list of terms")
    wanted = list(terms)

    def score(outputs: str) -> Feedback:
        text = outputs or ""
        haystack = text if case_sensitive else text.lower()
        missing = [t for t in wanted if (t if case_sensitive else t.lower()) not in haystack]
        if missing:
            return Feedback(
                False,
                f"missing: {', '.join(repr(t) for t in missing)}",
                {"missing": list[JsonValue](missing)},
            )
        return Feedback(True, f"includes all {len(wanted)} required terms")

    return make_scorer(score, name=name, version=_BUILTIN, description="The response includes every term.")


_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


def json_schema(schema: Mapping[str, Any] | None = None, name: str = "json_schema") -> Scorer:
    """The response is JSON (a fenced ```json block is accepted) and, with ``schema``, valid against it."""

    def score(outputs: str) -> Feedback:
        text = outputs or ""
        fenced = _FENCE.match(text)
        try:
            value = json.loads(fenced.group(1) if fenced else text)
        except ValueError as exc:
            return Feedback(False, f"not JSON: {exc}")
        errors = schema_errors(value, schema) if schema is not None else []
        if errors:
            return Feedback(False, "; ".join(errors), {"errors": list[JsonValue](errors)})
        return Feedback(True, "valid JSON" + (" matching the schema" if schema is not None else ""))

    return make_scorer(score, name=name, version=_BUILTIN, description="The response is valid JSON.")


def no_pii(name: str = "no_pii", check_inputs: bool = False) -> Scorer:
    """No e-mail address, phone number or (Luhn-valid) card number in the response (and inputs if asked)."""

    def score(inputs: Any, outputs: str) -> Feedback:
        texts = [outputs or ""]
        if check_inputs:
            texts.append(inputs if isinstance(inputs, str) else json.dumps(inputs))
        findings = [f for text in texts for f in find_pii(text)]
        if not findings:
            return Feedback(True, "no personal data found")
        kinds = Counter(f.kind for f in findings)
        masked = [f.masked for f in findings[:5]]
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        return Feedback(False, f"found {summary}: {', '.join(masked)}", {"found": dict(kinds)})

    return make_scorer(score, name=name, version=_BUILTIN, description="No personal data in the response.")


_REFUSALS = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid),? but I (?:can(?:'t|not)|won't|am unable)"
    r"|I (?:can(?:'t|not)|won't|am unable to|am not able to) (?:help|assist|comply|provide|do that|answer)"
    r"|I must (?:decline|refuse)"
    r"|as an AI(?: language model)?,? I (?:can(?:'t|not)|don't|am not))",
    re.IGNORECASE,
)


def no_refusal(name: str = "no_refusal") -> Scorer:
    """The agent answered rather than refused ("I'm sorry, but I can't help with that")."""

    def score(outputs: str) -> Feedback:
        text = (outputs or "").replace("\u2019", "'")
        match = _REFUSALS.search(text)
        if match is None:
            return Feedback(True, "no refusal phrasing found")
        return Feedback(False, f"refusal phrasing: {match.group(0)!r}")

    return make_scorer(score, name=name, version=_BUILTIN, description="The response is not a refusal.")


def no_tool_errors(name: str = "no_tool_errors") -> Scorer:
    """No tool call in the trace ended in error (spans of type TOOL, or ``execute_tool`` spans)."""

    def score(trace: Trace) -> Feedback:
        if not trace.stored:
            raise ValueError("the trace's spans were not stored; tool calls cannot be checked")
        tools = [s for s in trace.spans if s.span_type == "TOOL" or s.name.startswith("execute_tool")]
        failed = [s for s in tools if s.status_code == "ERROR"]
        if not failed:
            return Feedback(True, f"{len(tools)} tool calls, none failed", {"tool_calls": len(tools)})
        detail = "; ".join(f"{s.name}: {s.status_message or 'error'}" for s in failed[:5])
        return Feedback(
            False, f"{len(failed)} of {len(tools)} tool calls failed: {detail}", {"failed": len(failed)}
        )

    return make_scorer(score, name=name, version=_BUILTIN, description="No tool call failed.")
