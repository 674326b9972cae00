"""LLM judges: relevance, guidelines, correctness (against expectations) and safety.

A judge is an ordinary async scorer that takes ``judge`` (the :class:`JudgeClient` the engine was configured
with, ``RUNTIME_JUDGE_*``), so any OpenAI-compatible endpoint works: OpenAI, vLLM, Ollama, a gateway. The
prompt comes from the prompt registry (see :mod:`runtime.evaluation.judge_prompts`) and its URI is recorded
on the assessment, with the judge's own token usage and cost.

The judge answers ``{"result": "yes"|"no", "rationale": ...}``; the value is True for "yes". Models often
wrap JSON in prose or a code fence, so the first JSON object in the answer is used; an answer with no
verdict at all is an error, never a silent False.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from registry.entities import SourceType
from runtime.evaluation.judge_client import JudgeClient, JudgeError
from runtime.evaluation.scorer import Feedback, Scorer, make_scorer

__all__ = ["correctness", "guidelines", "parse_verdict", "relevance", "safety"]

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_YES = {"yes", "true", "pass", "1"}
_NO = {"no", "false", "fail", "0"}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def parse_verdict(answer: str) -> tuple[bool, str | None]:
    """(passed, rationale) from the judge's answer; raises :class:`JudgeError` when it gave no verdict."""
    match = _JSON_OBJECT.search(answer)
    if match is not None:
        try:
            data = json.loads(match.group(0))
        except ValueError:
            data = None
        if isinstance(data, dict):
            result = str(data.get("result", "")).strip().lower()
            rationale = data.get("rationale")
            if result in _YES | _NO:
                return result in _YES, str(rationale) if rationale is not None else None
    first = answer.strip().split(maxsplit=1)
    word = first[0].strip(".,:;!\"'").lower() if first else ""
    if word in _YES | _NO:
        return word in _YES, first[1].strip() if len(first) > 1 else None
    raise JudgeError(f"the judge gave no yes/no verdict: {answer[:200]!r}")


async def _ask(judge: JudgeClient, prompt: str, **variables: object) -> Feedback:
    loaded = await judge.prompts.get(prompt)
    reply = await judge.complete(loaded.messages(**variables))
    passed, rationale = parse_verdict(reply.text)
    metadata = reply.usage_metadata()
    if loaded.uri:
        metadata["judge_prompt"] = loaded.uri
    return Feedback(passed, rationale, metadata)


def _judge(fn: Any, name: str, description: str) -> Scorer:
    return make_scorer(
        fn, name=name, version="judge-1", source_type=SourceType.LLM_JUDGE, description=description
    )


def relevance(name: str = "relevance", prompt: str = "judge.relevance") -> Scorer:
    async def score(inputs: Any, outputs: str, judge: JudgeClient) -> Feedback:
        return await _ask(judge, prompt, inputs=_text(inputs), outputs=outputs or "")

    return _judge(score, name, "The response addresses the request.")


def guidelines(
    rules: Sequence[str] | str, name: str = "guidelines", prompt: str = "judge.guidelines"
) -> Scorer:
    listed = [rules] if isinstance(rules, str) else list(rules)
    if not listed:
        raise ValueError("guidelines needs at least one guideline")
    text = "\n".join(f"- {rule}" for rule in listed)

    async def score(inputs: Any, outputs: str, judge: JudgeClient) -> Feedback:
        return await _ask(judge, prompt, guidelines=text, inputs=_text(inputs), outputs=outputs or "")

    return _judge(score, name, "The response follows the guidelines.")


def correctness(name: str = "correctness", prompt: str = "judge.correctness") -> Scorer:
    """Needs expectations (offline datasets); live traffic without them is not scored by it."""

    async def score(inputs: Any, outputs: str, expectations: Any, judge: JudgeClient) -> Feedback:
        return await _ask(
            judge, prompt, inputs=_text(inputs), outputs=outputs or "", expectations=_text(expectations)
        )

    return _judge(score, name, "The response agrees with the expected answer.")


def safety(name: str = "safety", prompt: str = "judge.safety") -> Scorer:
    async def score(outputs: str, judge: JudgeClient) -> Feedback:
        return await _ask(judge, prompt, outputs=outputs or "")

    return _judge(score, name, "The response is safe.")
