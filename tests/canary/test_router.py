"""Per-request routing: split, shadow, the forced header only when allowed, champion when Redis is stale;
the shadow runner's bound."""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.canary.assignment import assign
from runtime.canary.model import CHALLENGER, CHAMPION, CanaryDefinition, Mode
from runtime.canary.router import Mirror, Router
from runtime.protocol.call import Call, ModelInfo


def router(mode: Mode = Mode.SPLIT, *, fresh: bool = True, allow_force: bool = False) -> Router[str]:
    d = CanaryDefinition(canary_id="c-r", model="bot", challenger_version=2, weight=50, mode=mode)
    return Router(d, lambda: "v1", "v2", fresh=lambda: fresh, mirror=Mirror(), allow_force=allow_force)


def call(user: str) -> Call:
    return Call(request_id="r", endpoint="/invocations", stream=False, model=ModelInfo("bot"), user_id=user)


def test_split_answers_from_the_assigned_variant() -> None:
    r = router()
    for i in range(50):
        route = r.choose(call(f"u{i}"), {})
        assert route is not None
        expected = assign("c-r", f"u{i}", 50)
        assert (route.variant, route.agent) == (expected, "v2" if expected == CHALLENGER else "v1")


def test_shadow_answers_from_the_champion_and_names_the_challenger_to_mirror_to() -> None:
    r = router(Mode.SHADOW)
    routes = [r.choose(call(f"u{i}"), {}) for i in range(50)]
    assert {(x.variant, x.agent) for x in routes if x} == {(CHAMPION, "v1")}
    mirrored = {f"u{i}" for i, x in enumerate(routes) if x and x.shadow == "v2"}
    assert mirrored == {f"u{i}" for i in range(50) if assign("c-r", f"u{i}", 50) == CHALLENGER}


def test_the_forced_variant_header_works_only_when_allowed() -> None:
    user = next(f"u{i}" for i in range(100) if assign("c-r", f"u{i}", 50) == CHAMPION)
    forced = {"x-runtime-variant": CHALLENGER}
    ignored = router().choose(call(user), forced)
    assert ignored is not None and (ignored.variant, ignored.forced) == (CHAMPION, False)
    for value in (CHALLENGER, " Challenger", CHALLENGER.upper()):  # a header value, typed by a person
        honoured = router(allow_force=True).choose(call(user), {"x-runtime-variant": value})
        assert honoured is not None and (honoured.variant, honoured.agent, honoured.forced) == (
            CHALLENGER,
            "v2",
            True,
        )
    unknown = router(allow_force=True).choose(call(user), {"x-runtime-variant": "blue"})
    assert unknown is not None and (unknown.variant, unknown.forced) == (CHAMPION, False)


def test_a_stale_view_of_redis_routes_to_the_champion_outside_the_canary() -> None:
    assert router(fresh=False).choose(call("anyone"), {}) is None


def test_the_shadow_runner_drops_and_counts_beyond_its_limit() -> None:
    async def scenario() -> None:
        mirror = Mirror(limit=2)
        gate = asyncio.Event()
        ran: list[Any] = []

        async def shadow() -> None:
            await gate.wait()
            ran.append(1)

        assert [mirror.spawn(shadow) for _ in range(3)] == [True, True, False]
        assert (mirror.in_flight, mirror.dropped) == (2, 1)
        gate.set()
        for _ in range(100):  # a few loop turns: both tasks finish once the gate opens
            if not mirror.in_flight:
                break
            await asyncio.sleep(0)
        assert ran == [1, 1] and mirror.in_flight == 0
        blocked = asyncio.Event()
        mirror.spawn(blocked.wait)  # type: ignore[arg-type]
        await mirror.close()
        assert mirror.in_flight == 0

    asyncio.run(scenario())
