"""Throttles per anonymous client and per user, with rates from settings."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from catalog.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counters(redis_client):
    """Counters live in the real (test) Redis, emptied around each test."""
    return redis_client


@override_settings(API_THROTTLE_RATES={"anon": "3/min", "user": "5/min", "auth": None})
def test_anonymous_clients_are_throttled_per_address_with_retry_after():
    client = APIClient()
    assert [client.get("/api/v1/items/").status_code for _ in range(3)] == [200] * 3
    response = client.get("/api/v1/items/")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    other = APIClient(REMOTE_ADDR="127.0.0.2")
    assert other.get("/api/v1/items/").status_code == 200


@override_settings(API_THROTTLE_RATES={"anon": "1/min", "user": "5/min", "auth": None})
def test_signed_in_users_have_their_own_budget_per_user():
    alice, bob = APIClient(), APIClient()
    alice.force_authenticate(UserFactory(username="alice"))
    bob.force_authenticate(UserFactory(username="bob"))
    assert [alice.get("/api/v1/me/ratings/").status_code for _ in range(5)] == [200] * 5
    assert alice.get("/api/v1/me/ratings/").status_code == 429
    assert bob.get("/api/v1/me/ratings/").status_code == 200


@override_settings(API_THROTTLE_RATES={"anon": None, "user": None, "auth": "2/min"})
def test_token_and_register_share_a_tighter_budget_per_address():
    client = APIClient()
    body = {"username": "x", "password": "y"}
    assert client.post("/api/v1/auth/token/", body).status_code == 400
    assert client.post("/api/v1/auth/register/", body).status_code == 400
    assert client.post("/api/v1/auth/token/", body).status_code == 429


@override_settings(API_THROTTLE_RATES={"anon": "2/min", "user": None, "auth": None})
def test_counters_are_shared_through_redis_like_between_two_web_workers(redis_client):
    from django.core.cache import caches

    assert APIClient().get("/api/v1/items/").status_code == 200
    assert any(b"throttle_anon" in key for key in redis_client.keys("*"))
    # Another worker process has its own cache connections but sees the same counter.
    caches["api-throttle"].close()
    assert APIClient().get("/api/v1/items/").status_code == 200
    assert APIClient().get("/api/v1/items/").status_code == 429


def test_an_unreachable_throttle_cache_lets_requests_through(caplog):
    from django.conf import settings

    from recsite import redis_server

    dead = {**settings.CACHES["api-throttle"]}
    dead["LOCATION"] = f"redis://127.0.0.1:{redis_server.free_port()}/0"
    rates = {"anon": "1/min", "user": None, "auth": None}
    with override_settings(
        CACHES={**settings.CACHES, "api-throttle": dead}, API_THROTTLE_RATES=rates
    ):
        statuses = [APIClient().get("/api/v1/items/").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert "throttle cache unavailable" in caplog.text


@pytest.mark.parametrize("value", ["lots", "10/fortnight", "-1/min"])
def test_rates_come_from_the_environment_and_bad_ones_fail_loudly(monkeypatch, value):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import recsite.settings.base as base

    monkeypatch.setenv("API_THROTTLE_USER", value)
    with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_USER"):
        importlib.reload(base)
    monkeypatch.setenv("API_THROTTLE_USER", "7/min")
    monkeypatch.setenv("API_THROTTLE_ANON", "off")
    importlib.reload(base)
    assert base.API_THROTTLE_RATES["user"] == "7/min" and base.API_THROTTLE_RATES["anon"] is None
    monkeypatch.delenv("API_THROTTLE_USER")
    monkeypatch.delenv("API_THROTTLE_ANON")
    importlib.reload(base)


def test_the_throttle_cache_reuses_one_redis_client_and_still_reaches_redis(redis_client):
    """Django's Redis cache made a ``redis.Redis`` on every call (~0.07 ms each with
    redis-py 8); ours keeps one per connection pool, and the values still go to Redis."""
    from django.core.cache import caches

    cache = caches["api-throttle"]
    cache.set("probe", [1.5, 2.5], 60)
    assert cache.get("probe") == [1.5, 2.5]
    assert any(b"probe" in key for key in redis_client.keys("*"))
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client
    assert cache._cache.get_client("probe") is client  # one server: reads use it too
