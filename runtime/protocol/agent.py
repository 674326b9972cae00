"""MLflow-compatible ResponsesAgent request, response and stream events.

The JSON these models produce (``model_dump(exclude_none=True)``) is exactly what MLflow 3's
``mlflow.types.responses`` produces, so an MLflow client or agent sees no difference. Two deliberate
differences: ``input`` may also be a string (MLflow rejects it; OpenAI allows it) and ``model``,
``instructions`` and ``previous_response_id`` are kept instead of dropped.

Stream events are a discriminated union on ``type`` (:data:`StreamEvent`); an event type we do not model
validates as :class:`UnknownEvent` and passes through unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    Tag,
    TypeAdapter,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "AnnotationAddedEvent",
    "CompletedEvent",
    "ErrorEvent",
    "InputItem",
    "OutputItemAddedEvent",
    "OutputItemDoneEvent",
    "ResponsesAgentRequest",
    "ResponsesAgentResponse",
    "ResponsesAgentStreamEvent",
    "StreamEvent",
    "TextDeltaEvent",
    "UnknownEvent",
    "Usage",
    "output_item_problem",
    "output_item_text",
    "parse_stream_event",
]


class _Open(BaseModel):
    """Keeps fields it does not know: agents and clients send more than we model, and we pass it on."""

    model_config = ConfigDict(extra="allow")


class ChatContext(_Open):
    conversation_id: str | None = None
    user_id: str | None = None


class InputTokensDetails(_Open):
    model_config = ConfigDict(extra="allow", frozen=True)

    cached_tokens: int = 0


class OutputTokensDetails(_Open):
    model_config = ConfigDict(extra="allow", frozen=True)

    reasoning_tokens: int = 0


# Most agents report no token details: every Usage without them shares these (frozen, so sharing is safe).
# A default factory building a new model each time was most of the cost of an agent's response object.
_NO_INPUT_DETAILS = InputTokensDetails()
_NO_OUTPUT_DETAILS = OutputTokensDetails()


class Usage(_Open):
    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=lambda: _NO_INPUT_DETAILS)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = Field(default_factory=lambda: _NO_OUTPUT_DETAILS)
    total_tokens: int = 0

    @model_validator(mode="after")
    def _fill_total(self) -> Usage:
        if not self.total_tokens:
            self.total_tokens = self.input_tokens + self.output_tokens
        return self


class InputItem(dict[str, Any]):
    """One item of a request's ``input``: a plain dict (``item["content"]``) that also reads like MLflow's
    pydantic items (``item.role``, ``item.content``, ``item.type``, ``item.model_dump()``), so an agent
    written either way runs unchanged. JSON encoders see a dict."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            if name == "type" and "role" in self:
                return "message"  # MLflow's Message defaults it
            if name == "status":
                return None
            raise AttributeError(f"input item has no {name!r}") from None

    def model_dump(self, *, exclude_none: bool = False, **_ignored: Any) -> dict[str, Any]:
        """A plain dict copy, as MLflow's items give (a message names its type)."""
        dumped = dict(self)
        if "role" in dumped:
            dumped.setdefault("type", "message")
        return {k: v for k, v in dumped.items() if v is not None} if exclude_none else dumped

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_plain_validator_function(
            lambda value: value, serialization=core_schema.plain_serializer_function_ser_schema(dict)
        )  # as one item of a request's input, :func:`_input_items` made it


_ROLES = frozenset({"user", "assistant", "system", "developer"})
_TEXT_PARTS = frozenset({"input_text", "output_text"})
_CALL_FIELDS = ("call_id", "name", "arguments")


def _item_problem(item: dict[str, Any]) -> str | None:
    """What is wrong with one input item, as MLflow and OpenAI check it; None when nothing is. Item types
    the runtime does not read (reasoning, web searches, ...) pass as they are."""
    kind = item.get("type")
    if kind is None or kind == "message":
        return _message_problem(item)
    if not isinstance(kind, str):
        return "type must be a string"
    if "role" in item:  # only messages have a role: a typo in the type would pass unseen
        return f"an item with a role is a message: its type must be message, not {kind!r}"
    if kind == "function_call" and not all(isinstance(item.get(k), str) for k in _CALL_FIELDS):
        return "a function_call needs string call_id, name and arguments"
    if kind == "function_call_output" and (not isinstance(item.get("call_id"), str) or "output" not in item):
        return "a function_call_output needs a string call_id and an output"
    return None


def _message_problem(item: dict[str, Any]) -> str | None:
    role = item.get("role")
    if role not in _ROLES:
        return "role must be one of user, assistant, system, developer" if role else "role is required"
    content = item.get("content")
    if type(content) is str:
        return None
    if not isinstance(content, list):
        return "content must be a string or a list of content parts"
    return _parts_problem(content)


def _parts_problem(content: list[Any]) -> str | None:
    for part in content:
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            return "each content part must be an object with a type"
        if part["type"] in _TEXT_PARTS and not isinstance(part.get("text"), str):
            return f"{part['type']} parts need a string text"
    return None


def output_item_problem(item: Any) -> str | None:
    """What is wrong with an item an agent outputs (a message's content is a list of parts, as in MLflow's
    and OpenAI's output items); None when nothing is."""
    if not isinstance(item, dict):
        return "an output item must be an object"
    kind = item.get("type", "message")
    if kind != "message":
        return _item_problem(item)
    content = item.get("content")
    if not isinstance(content, list):
        return "a message's content must be a list of content parts"
    return _parts_problem(content)


def output_item_text(item: Any) -> str:
    """The text of an output item an agent returned (its message parts' text; "" for other items), once
    the item is checked as :func:`output_item_problem` does: ValueError saying what is wrong. One pass over
    the parts for the usual message, as the serving layer reads every answer's text anyway."""
    if type(item) is dict and item.get("type", "message") == "message":
        content = item.get("content")
        if type(content) is list:
            texts = []
            for part in content:
                if type(part) is not dict or type(part.get("type")) is not str:
                    break
                text = part.get("text")
                if type(text) is str:
                    texts.append(text)
                elif part["type"] in _TEXT_PARTS:
                    break
            else:
                return texts[0] if len(texts) == 1 else "".join(texts)
    problem = output_item_problem(item)
    if problem is not None:
        raise ValueError(problem)
    return ""


def _input_items(value: Any) -> list[InputItem]:
    """A request's ``input`` list, each item checked (:func:`_item_problem`) and made an :class:`InputItem`:
    one Python call per request, where a validator per item cost pydantic a call per item."""
    if type(value) is not list:
        raise PydanticCustomError("list_type", "Input should be a valid list")
    items = []
    for index, item in enumerate(value):
        if type(item) is not dict:
            raise PydanticCustomError("input_item", "item {index} must be an object", {"index": index})
        if type(item.get("content")) is not str or "type" in item or item.get("role") not in _ROLES:
            problem = _item_problem(item)  # not the usual text message: check it all
            if problem is not None:
                raise PydanticCustomError(
                    "input_item", "item {index}: {problem}", {"index": index, "problem": problem}
                )
        items.append(InputItem(item))
    return items


class ResponsesAgentRequest(_Open):
    """What ``predict`` receives; its ``input`` items are :class:`InputItem` (dicts that read like MLflow's
    items)."""

    input: Annotated[list[InputItem], PlainValidator(_input_items)]
    context: ChatContext | None = None
    custom_inputs: dict[str, Any] | None = None
    model: str | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    stream: StrictBool | None = None  # "yes" or 1 is a mistake to report, not a stream to start
    metadata: dict[str, str] | None = None
    user: str | None = None
    # OpenAI's types and ranges: a number sent as a string ("5") is a mistake to report, not to convert.
    temperature: StrictFloat | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1)
    max_output_tokens: StrictInt | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: StrictBool | None = None


class ResponsesAgentResponse(_Open):
    object: Literal["response"] = "response"
    output: list[dict[str, Any]]
    usage: Usage | None = None
    custom_outputs: dict[str, Any] | None = None
    id: str | None = None


class ResponsesAgentStreamEvent(_Open):
    """MLflow's constructor shape: ``ResponsesAgentStreamEvent(type=..., **fields)``.

    The runtime re-validates what an agent yields through :data:`StreamEvent`, so the typed classes
    below decide what a known event must carry.
    """

    type: str


class TextDeltaEvent(ResponsesAgentStreamEvent):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    item_id: str
    delta: str


class OutputItemAddedEvent(ResponsesAgentStreamEvent):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    item: dict[str, Any]


class OutputItemDoneEvent(ResponsesAgentStreamEvent):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    item: dict[str, Any]


class AnnotationAddedEvent(ResponsesAgentStreamEvent):
    type: Literal["response.output_text.annotation.added"] = "response.output_text.annotation.added"
    item_id: str
    annotation: dict[str, Any]
    annotation_index: int = 0


class ErrorEvent(ResponsesAgentStreamEvent):
    type: Literal["error"] = "error"
    message: str
    code: str | None = None
    param: str | None = None


class CompletedEvent(ResponsesAgentStreamEvent):
    type: Literal["response.completed"] = "response.completed"
    response: dict[str, Any]


class UnknownEvent(ResponsesAgentStreamEvent):
    """Any event type the runtime does not model; forwarded as it came."""


_KNOWN = {
    "response.output_text.delta",
    "response.output_item.added",
    "response.output_item.done",
    "response.output_text.annotation.added",
    "error",
    "response.completed",
}


def _event_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in _KNOWN else "unknown"


StreamEvent = Annotated[
    Annotated[TextDeltaEvent, Tag("response.output_text.delta")]
    | Annotated[OutputItemAddedEvent, Tag("response.output_item.added")]
    | Annotated[OutputItemDoneEvent, Tag("response.output_item.done")]
    | Annotated[AnnotationAddedEvent, Tag("response.output_text.annotation.added")]
    | Annotated[ErrorEvent, Tag("error")]
    | Annotated[CompletedEvent, Tag("response.completed")]
    | Annotated[UnknownEvent, Tag("unknown")],
    Discriminator(_event_tag),
]

_STREAM_EVENT: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)


def parse_stream_event(value: Any) -> StreamEvent:
    """Validate one yielded event (a dict or any ResponsesAgentStreamEvent) into its typed class."""
    if isinstance(value, ResponsesAgentStreamEvent) and type(value) is not ResponsesAgentStreamEvent:
        return value  # type: ignore[return-value]  # already one of the typed members
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    return _STREAM_EVENT.validate_python(value)
