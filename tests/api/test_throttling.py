"""Throttles per anonymous client and per user, with rates from settings."""

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from catalog.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


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


@pytest.mark.parametrize("value", ["lots", "10/fortnight", "-1/min"])
def test_bad_rate_in_the_environment_fails_loudly(monkeypatch, value):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import recsite.settings.base as base

    monkeypatch.setenv("API_THROTTLE_USER", value)
    with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_USER"):
        importlib.reload(base)
    monkeypatch.delenv("API_THROTTLE_USER")
    importlib.reload(base)
