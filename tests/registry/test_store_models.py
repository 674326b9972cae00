from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from registry.entities import GitSource, LoggedModel, ModelStatus, new_model_id
from registry.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from registry.store import SqlStore, migrate
from tests.registry.helpers import ready_model


def test_logged_model_round_trips_every_field(store: SqlStore) -> None:
    model = LoggedModel(
        model_id=new_model_id(),
        name="echo",
        params={"temperature": "0.2"},
        tags={"team": "cx"},
        metrics={"accuracy": 0.91},
        source=GitSource(commit="a" * 40, dirty=True),
        artifact_location="models/x",
        prompts=["prompts:/greet/1"],
    )
    store.create_logged_model(model)
    assert store.get_logged_model(model.model_id) == model
    done = store.finish_logged_model(model.model_id, ModelStatus.READY)
    assert done.status is ModelStatus.READY
    assert done.last_updated_time >= model.last_updated_time


def test_finished_models_never_change_status_again(store: SqlStore) -> None:
    model = ready_model(store)
    with pytest.raises(Conflict, match="already READY"):
        store.finish_logged_model(model.model_id, ModelStatus.FAILED, "late failure")
    assert store.get_logged_model(model.model_id).status is ModelStatus.READY


def test_duplicate_model_id_is_already_exists(store: SqlStore) -> None:
    model = ready_model(store)
    with pytest.raises(AlreadyExists, match="already exists"):
        store.create_logged_model(model)


def test_search_logged_models_filters_by_name_status_and_tags(store: SqlStore) -> None:
    a = ready_model(store, "a", tags={"env": "prod"})
    ready_model(store, "a", tags={"env": "dev"})
    ready_model(store, "b")
    assert [m.model_id for m in store.search_logged_models(name="a", tags={"env": "prod"})] == [a.model_id]
    assert len(store.search_logged_models(status="READY")) == 3
    assert store.search_logged_models(status=ModelStatus.FAILED) == []


def test_update_logged_model_merges_tags_and_metrics(store: SqlStore) -> None:
    model = ready_model(store, tags={"a": "1"}, metrics={"m": 1.0})
    updated = store.update_logged_model(model.model_id, tags={"b": "2"}, metrics={"m": 2.0})
    assert updated.tags == {"a": "1", "b": "2"}
    assert store.get_logged_model(model.model_id).metrics == {"m": 2.0}


def test_versions_count_from_one_and_are_never_reused(store: SqlStore) -> None:
    first, second = ready_model(store), ready_model(store)
    v1 = store.create_model_version("bot", first.model_id)
    v2 = store.create_model_version("bot", second.model_id)
    v3 = store.create_model_version("bot", first.model_id)
    assert [v1.version, v2.version, v3.version] == [1, 2, 3]
    assert store.get_model_version("bot", 1).model_id == first.model_id
    assert store.get_latest_model_version("bot").version == 3
    assert store.get_registered_model("bot").latest_version == 3
    assert [v.version for v in store.search_model_versions(model_id=first.model_id)] == [3, 1]


def test_versions_are_immutable_once_registered(store: SqlStore) -> None:
    """Registering again makes a new version; nothing rewrites an existing one (no call exists)."""
    first, second = ready_model(store), ready_model(store)
    v1 = store.create_model_version("bot", first.model_id)
    store.create_model_version("bot", second.model_id)
    store.set_model_alias("bot", "champion", 2)
    again = store.get_model_version("bot", 1)
    assert (again.model_id, again.artifact_location, again.creation_time) == (
        v1.model_id,
        v1.artifact_location,
        v1.creation_time,
    )
    assert not any(name.startswith(("update_model_version", "delete_model_version")) for name in dir(store))


def test_only_ready_models_can_be_registered(store: SqlStore) -> None:
    pending = LoggedModel(model_id=new_model_id(), name="p", artifact_location="models/p")
    store.create_logged_model(pending)
    with pytest.raises(Conflict, match="is PENDING; only READY"):
        store.create_model_version("bot", pending.model_id)
    with pytest.raises(NotFound, match="registered model 'bot' not found"):
        store.get_registered_model("bot")


def test_unknown_model_version_and_alias_are_not_found(store: SqlStore) -> None:
    model = ready_model(store)
    store.create_model_version("bot", model.model_id)
    with pytest.raises(NotFound, match="logged model 'm-nope' not found"):
        store.create_model_version("bot", "m-nope")
    with pytest.raises(NotFound, match="version 7 of model 'bot' not found"):
        store.get_model_version("bot", 7)
    with pytest.raises(NotFound, match="alias 'gone' of model 'bot' not found"):
        store.get_model_version_by_alias("bot", "gone")
    with pytest.raises(NotFound, match="has no versions"):
        store.get_latest_model_version("other")
    with pytest.raises(NotFound, match="version 9 of model 'bot' not found"):
        store.set_model_alias("bot", "champion", 9)
    with pytest.raises(NotFound, match="alias 'champion' of model 'bot' not found"):
        store.delete_model_alias("bot", "champion")


def test_registered_model_names_are_unique_and_validated(store: SqlStore) -> None:
    created = store.create_registered_model("bot", description="support", tags={"team": "cx"})
    assert (created.description, created.tags, created.latest_version) == ("support", {"team": "cx"}, None)
    with pytest.raises(AlreadyExists, match="registered model 'bot' already exists"):
        store.create_registered_model("bot")
    for bad in ("has space", "slash/name", "", "ünicode"):
        with pytest.raises(InvalidArgument, match="invalid model name"):
            store.create_registered_model(bad)
    assert [m.name for m in store.list_registered_models()] == ["bot"]


def test_aliases_move_and_are_reported_on_versions(store: SqlStore) -> None:
    model = ready_model(store)
    for _ in range(2):
        store.create_model_version("bot", model.model_id)
    store.set_model_alias("bot", "champion", 1)
    store.set_model_alias("bot", "challenger", 2)
    assert store.get_model_version_by_alias("bot", "champion").version == 1
    moved = store.set_model_alias("bot", "champion", 2)
    assert moved.aliases == ["challenger", "champion"]
    assert store.get_model_version("bot", 1).aliases == []
    assert store.get_registered_model("bot").aliases == {"champion": 2, "challenger": 2}
    store.delete_model_alias("bot", "challenger")
    assert store.get_registered_model("bot").aliases == {"champion": 2}


@pytest.mark.parametrize("alias", ["latest", "LATEST", "3", "bad alias", "a/b"])
def test_reserved_or_invalid_aliases_are_rejected(store: SqlStore, alias: str) -> None:
    model = ready_model(store)
    store.create_model_version("bot", model.model_id)
    with pytest.raises(InvalidArgument, match="alias"):
        store.set_model_alias("bot", alias, 1)
    assert store.get_registered_model("bot").aliases == {}


def test_bad_input_changes_nothing(store: SqlStore) -> None:
    """A failing registration rolls back the registered model it would have created on the way."""
    with pytest.raises(NotFound):
        store.create_model_version("fresh", "m-" + "0" * 32)
    assert store.list_registered_models() == []


def test_model_version_tags_are_editable(store: SqlStore) -> None:
    model = ready_model(store)
    store.create_model_version("bot", model.model_id, tags={"a": "1"})
    assert store.set_model_version_tag("bot", 1, "b", "2").tags == {"a": "1", "b": "2"}


def test_ping_answers_and_schema_is_at_head(store: SqlStore) -> None:
    store.ping()
    assert store.schema_revision() == migrate.head_revision()


def test_an_alias_moves_only_from_the_version_its_mover_expects(store: SqlStore) -> None:
    """A canary's promotion moves @champion from the champion it measured to the challenger: a move made by
    someone else meanwhile (a hotfix) must not be overwritten, and reading then writing left a window."""
    model = ready_model(store)
    for _ in range(3):
        store.create_model_version("bot", model.model_id)
    assert store.move_model_alias("bot", "champion", 2, expected=1) is None  # not set: nothing to move
    with pytest.raises(NotFound, match="alias 'champion' of model 'bot' not found"):
        store.get_model_version_by_alias("bot", "champion")
    store.set_model_alias("bot", "champion", 1)
    assert store.move_model_alias("bot", "champion", 2, expected=1) == 1
    assert store.move_model_alias("bot", "champion", 3, expected=1) == 2  # moved meanwhile: left as it is
    assert store.get_model_version_by_alias("bot", "champion").version == 2
    with pytest.raises(NotFound, match="version 9"):
        store.move_model_alias("bot", "champion", 9, expected=2)


def test_of_two_movers_expecting_one_version_at_once_exactly_one_moves_the_alias(store: SqlStore) -> None:
    model = ready_model(store)
    for _ in range(3):
        store.create_model_version("bot", model.model_id)
    store.set_model_alias("bot", "champion", 1)
    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda v: store.move_model_alias("bot", "champion", v, expected=1), (2, 3)))
    winner = store.get_model_version_by_alias("bot", "champion").version
    assert sorted(found, key=lambda f: f != 1) == [1, winner]  # the winner saw 1; the loser, the winner
