"""Sticky assignment: deterministic per (canary, key), split by weight, reshuffled by a new canary."""

from __future__ import annotations

import math
import random

import pytest

from runtime.canary.assignment import assign, bucket, sticky_key
from runtime.canary.model import CHALLENGER, CHAMPION


def tolerance(n: int, p: float, sigmas: float = 4.5) -> float:
    """How far a Binomial(n, p) count may stray from n * p in a test that must not flake."""
    return sigmas * math.sqrt(n * p * (1 - p))


def test_the_same_key_gets_the_same_variant_every_time() -> None:
    first = [assign("c-1", f"user-{i}", 30) for i in range(200)]
    assert first == [assign("c-1", f"user-{i}", 30) for i in range(200)]


@pytest.mark.parametrize("weight", [1, 10, 50, 90])
def test_keys_split_by_weight_within_binomial_tolerance(weight: float) -> None:
    n = 20_000
    challengers = sum(assign("c-split", f"user-{i}", weight) == CHALLENGER for i in range(n))
    assert abs(challengers - n * weight / 100) <= tolerance(n, weight / 100)


def test_a_new_canary_reshuffles_users() -> None:
    users = [f"user-{i}" for i in range(2000)]
    a = {u for u in users if assign("c-a", u, 50) == CHALLENGER}
    b = {u for u in users if assign("c-b", u, 50) == CHALLENGER}
    overlap = len(a & b)
    assert abs(overlap - 500) <= tolerance(2000, 0.25)  # independent halves overlap on a quarter


def test_requests_without_a_key_are_split_at_random_by_weight() -> None:
    rng = random.Random(3)
    n = 5000
    challengers = sum(assign("c-1", None, 20, rng.random) == CHALLENGER for _ in range(n))
    assert abs(challengers - n * 0.2) <= tolerance(n, 0.2)


def test_bucket_is_uniform_in_unit_interval() -> None:
    points = [bucket("c-1", str(i)) for i in range(10_000)]
    assert all(0 <= p < 1 for p in points)
    assert abs(sum(points) / len(points) - 0.5) < 0.02


def test_weight_edges() -> None:
    assert {assign("c-1", f"u{i}", 100) for i in range(100)} == {CHALLENGER}
    assert {assign("c-1", f"u{i}", 0) for i in range(100)} == {CHAMPION}


def test_sticky_keys_come_from_user_session_or_a_header() -> None:
    headers = {"x-tenant": "acme"}
    assert sticky_key("user", "u1", "s1", headers) == "u1"
    assert sticky_key("session", "u1", "s1", headers) == "s1"
    assert sticky_key("header:X-Tenant", "u1", "s1", headers) == "acme"
    assert sticky_key("none", "u1", "s1", headers) is None
    assert sticky_key("user", None, "s1", headers) is None
