"""``JudgeClient``: calls to any OpenAI-compatible Chat Completions endpoint, bounded in every direction.

Bounded concurrency (a semaphore: scoring must not flood the judge while traffic peaks), a timeout per
attempt, and retries with exponential backoff on 408/409/429/5xx and connection errors, honouring
``Retry-After`` (as the ``openai`` SDK does). Every reply reports its token usage and cost, which the judge
scorers record on the assessment.

The API key goes into the ``Authorization`` header and nowhere else: it is not part of ``repr``, errors
carry the status and the endpoint's own message, never the request headers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import JsonValue

from runtime.evaluation.judge_prompts import PromptSource, StaticPrompts

if TYPE_CHECKING:  # httpx is imported where it is used: servers that never judge do not pay for it
    import httpx

__all__ = ["JudgeClient", "JudgeConfig", "JudgeError", "JudgeReply"]

log = logging.getLogger("runtime.evaluation.judge")

_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 30.0


class JudgeError(Exception):
    """The judge endpoint failed or answered something unusable, after the client's own retries."""

    retryable = False


@dataclass(frozen=True)
class JudgeConfig:
    base_url: str
    model: str
    api_key: str = field(default="", repr=False)
    timeout: float = 30.0
    max_retries: int = 2
    concurrency: int = 4
    backoff: float = 0.5
    input_price: float = 0.0  # USD per million input tokens
    output_price: float = 0.0  # USD per million output tokens

    @staticmethod
    def parse_prices(text: str) -> tuple[float, float]:
        """``"0.15,0.60"``: USD per million input and output tokens."""
        if not text.strip():
            return 0.0, 0.0
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2:
            raise ValueError(f"judge prices must be 'input,output' in USD per million tokens, not {text!r}")
        return float(parts[0]), float(parts[1])


@dataclass(frozen=True, slots=True)
class JudgeReply:
    text: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    attempts: int

    def usage_metadata(self) -> dict[str, JsonValue]:
        return {
            "judge_model": self.model,
            "judge_input_tokens": self.input_tokens,
            "judge_output_tokens": self.output_tokens,
            "judge_cost_usd": round(self.cost_usd, 8),
            "judge_attempts": self.attempts,
        }


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after-ms")
    if raw is not None:
        try:
            return float(raw) / 1000
        except ValueError:
            return None
    raw = response.headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _error_message(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    return f"judge endpoint answered {response.status_code}: {message}"


class JudgeClient:
    """One per event loop (its HTTP client and semaphore belong to the loop that first used them).

    ``prompts`` is where judge scorers find their templates (the prompt registry in a served app).
    """

    def __init__(
        self,
        config: JudgeConfig,
        prompts: PromptSource | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.prompts: PromptSource = prompts or StaticPrompts()
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"JudgeClient({self.config.base_url!r}, model={self.config.model!r})"

    def _client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        import httpx

        if self._http is None or self._slots is None:
            headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
            self._http = httpx.AsyncClient(
                base_url=self.config.base_url.rstrip("/") + "/",
                headers=headers,
                timeout=self.config.timeout,
                transport=self._transport,
            )
            self._slots = asyncio.Semaphore(self.config.concurrency)
        return self._http, self._slots

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
            self._slots = None

    async def complete(self, messages: list[dict[str, str]], *, max_tokens: int = 512) -> JudgeReply:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        http, slots = self._client()
        async with slots:
            response, attempts = await self._post(http, body)
        return self._reply(response, attempts)

    async def _post(self, http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[httpx.Response, int]:
        import httpx

        attempt = 0
        while True:
            attempt += 1
            delay = self.config.backoff * 2 ** (attempt - 1)
            try:
                response = await http.post("chat/completions", json=body)
            except httpx.HTTPError as exc:
                if attempt > self.config.max_retries:
                    raise JudgeError(f"judge endpoint unreachable: {type(exc).__name__}") from exc
            else:
                if response.status_code < 400:
                    return response, attempt
                if response.status_code not in _RETRY_STATUS or attempt > self.config.max_retries:
                    raise JudgeError(_error_message(response))
                delay = min(_retry_after(response) or delay, _MAX_RETRY_AFTER)
            log.debug("judge call attempt %d failed; retrying in %.2f s", attempt, delay)
            await asyncio.sleep(delay)

    def _reply(self, response: httpx.Response, attempts: int) -> JudgeReply:
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise JudgeError("the judge endpoint answered without a chat completion") from exc
        usage = data.get("usage") or {}
        tokens_in = int(usage.get("prompt_tokens") or 0)
        tokens_out = int(usage.get("completion_tokens") or 0)
        cost = (tokens_in * self.config.input_price + tokens_out * self.config.output_price) / 1e6
        return JudgeReply(
            text=str(text),
            model=str(data.get("model") or self.config.model),
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=cost,
            attempts=attempts,
        )
