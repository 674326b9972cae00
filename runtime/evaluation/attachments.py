"""Which scorers watch which model: set at start (``--scorers``) or attached live through the registry.

``runtime evaluate attach URI --scorer NAME --rate R`` stores the attachment as a tag on the LoggedModel the
URI resolves to now: key ``runtime.scorer.<NAME>``, value JSON ``{"rate", "filter", "args"}``. Tags need no
schema change and travel with the model (``runtime models`` shows them); a model version is immutable, so
attaching to ``models:/bot@champion`` attaches to the version the alias names at that moment. Detaching
writes rate 0 (tags can be merged, not removed).

Servers pick attachments up with :class:`AttachmentWatcher`, which re-reads the tags of every model that
served a request here, every ``interval`` seconds, off the request path. The request path only reads an
in-memory dict. Its reads are background store calls (:data:`~runtime.store_calls.background_calls`): a
store that hangs neither holds the server at exit nor takes the API's budget of store calls.

An attachment named like a scorer of the server's ``--scorers`` file replaces that scorer for the model's
traffic (its rate, filter and, with arguments, the built-in it runs), as a registered scorer's update does
in MLflow: one name, one score series. The replacement is logged as a warning when it begins and when a
detach gives the file's scorer back, so it is never silent.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Mapping
from typing import Any

from registry.client import RegistryClient
from registry.entities import LoggedModel
from registry.errors import RegistryError
from registry.uris import ModelAliasURI, ModelIdURI, ModelLatestURI, ModelVersionURI, parse_model_uri
from runtime.evaluation.job import ScorerRef
from runtime.evaluation.sampling import Attachment, CallFilter
from runtime.protocol.call import Call, CallStatus
from runtime.store_calls import background_calls

__all__ = [
    "TAG_PREFIX",
    "AttachmentBoard",
    "AttachmentWatcher",
    "attach",
    "model_for_uri",
    "parse_attachments",
]

log = logging.getLogger("runtime.evaluation")

TAG_PREFIX = "runtime.scorer."


def _tag_value(attachment: Attachment) -> str:
    return json.dumps(
        {"rate": attachment.rate, "filter": str(attachment.filter), "args": attachment.args}, sort_keys=True
    )


def parse_attachments(tags: Mapping[str, str]) -> list[Attachment]:
    """Attachments from a model's tags; a malformed one is logged and left out, never fatal."""
    found: list[Attachment] = []
    for key, raw in sorted(tags.items()):
        if not key.startswith(TAG_PREFIX):
            continue
        name = key.removeprefix(TAG_PREFIX)
        try:
            data: dict[str, Any] = json.loads(raw)
            found.append(
                Attachment(
                    name=name,
                    rate=float(data.get("rate", 1.0)),
                    filter=CallFilter.parse(data.get("filter")),
                    args=dict(data.get("args") or {}),
                )
            )
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring attachment tag %s=%r: %s", key, raw, exc)
    return [a for a in found if a.rate > 0]


def model_for_uri(client: RegistryClient, uri: str) -> LoggedModel:
    """The LoggedModel a ``models:/`` URI names now, from the store alone (no artifact files needed)."""
    match parse_model_uri(uri):
        case ModelIdURI(model_id):
            return client.get_logged_model(model_id)
        case ModelVersionURI(name, number):
            version = client.store.get_model_version(name, number)
        case ModelAliasURI(name, alias):
            version = client.store.get_model_version_by_alias(name, alias)
        case ModelLatestURI(name):
            version = client.store.get_latest_model_version(name)
    return client.get_logged_model(version.model_id)


def attach(client: RegistryClient, uri: str, attachment: Attachment) -> LoggedModel:
    """Record ``attachment`` on the model ``uri`` resolves to; a rate of 0 detaches."""
    model = model_for_uri(client, uri)
    return client.store.update_logged_model(
        model.model_id, tags={TAG_PREFIX + attachment.name: _tag_value(attachment)}
    )


class AttachmentBoard:
    """The attachments in force: the static ones for every model, the registry's per model id."""

    def __init__(self, static: list[Attachment] | None = None) -> None:
        self.static = tuple(static or ())
        self.by_model: dict[str, tuple[Attachment, ...]] = {}
        self.wanted: set[str] = set()
        self._replacing: dict[str, dict[str, Attachment]] = {}  # model id -> file scorers replaced

    def for_call(self, call: Call) -> list[ScorerRef]:
        """The scorers that sample this call. Runs in the telemetry's ``end``: memory only, no I/O.

        Cancelled calls (the client went away) are never scored: their output is a fragment.
        """
        if call.status == CallStatus.CANCELLED or call.trace_id is None:
            return []
        attached: tuple[Attachment, ...] = ()
        model_id = call.model.model_id
        if model_id is not None:
            if model_id not in self.wanted:
                self.wanted.add(model_id)
            attached = self.by_model.get(model_id, ())
        chosen: dict[str, Attachment] = {}
        for attachment in (*self.static, *attached):  # a registry attachment overrides a static one
            chosen[attachment.name] = attachment
        return [a.ref() for a in chosen.values() if a.wants(call)]

    def update(self, model_id: str, attachments: list[Attachment]) -> None:
        self.by_model[model_id] = tuple(attachments)
        self._log_replacements(model_id, attachments)

    def _log_replacements(self, model_id: str, attachments: list[Attachment]) -> None:
        static = {a.name: a for a in self.static}
        now = {a.name: a for a in attachments if a.name in static}
        before = self._replacing.get(model_id, {})
        for name, attachment in now.items():
            if before.get(name) != attachment:
                log.warning(
                    "scorer %s attached to %s (rate %g%s%s) replaces the --scorers file's %s for that "
                    "model's traffic",
                    name,
                    model_id,
                    attachment.rate,
                    f", filter {attachment.filter}" if attachment.filter.conditions else "",
                    f", the built-in with {json.dumps(attachment.args, sort_keys=True)}"
                    if attachment.args
                    else "",
                    name,
                )
        for name in before.keys() - now.keys():
            log.warning(
                "scorer %s detached from %s: the --scorers file's %s scores it again", name, model_id, name
            )
        self._replacing[model_id] = now

    def names(self) -> set[str]:
        """Every scorer sampling here, static or attached to a model this server has served."""
        every = (*self.static, *(a for found in self.by_model.values() for a in found))
        return {a.name for a in every if a.rate > 0.0}


class AttachmentWatcher:
    def __init__(self, board: AttachmentBoard, client: RegistryClient, interval: float = 10.0) -> None:
        self.board = board
        self.client = client
        self.interval = interval
        self._failing = False

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)

    async def refresh(self) -> None:
        for model_id in list(self.board.wanted):
            try:
                model = await background_calls.call(functools.partial(self.client.get_logged_model, model_id))
            except RegistryError as exc:
                if not self._failing:
                    log.warning("cannot read the scorers attached to %s: %s", model_id, exc)
                self._failing = True
                continue
            self._failing = False
            self.board.update(model_id, parse_attachments(model.tags))
