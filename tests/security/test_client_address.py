"""Throttles and lockouts key on an address a client cannot choose (issue 11, item 1)."""

import pytest
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient

from recsite.security import client_address

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counters(redis_client):
    return redis_client


def _with_proxies(n):
    from django.conf import settings

    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": n})


@override_settings(API_THROTTLE_RATES={"anon": None, "user": None, "auth": "3/min"})
def test_a_forged_x_forwarded_for_does_not_escape_the_token_throttle():
    client = APIClient()
    body = {"username": "demo", "password": "wrong"}
    statuses = [
        client.post("/api/v1/auth/token/", body, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
        for n in range(6)
    ]
    assert statuses[:3] == [400, 400, 400]
    assert statuses[3:] == [429, 429, 429]


def test_without_proxies_the_address_is_the_socket_peer():
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert client_address(request) == "192.0.2.7"


def test_behind_one_proxy_the_address_is_the_one_that_proxy_saw():
    request = RequestFactory().get(
        "/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.9, 198.51.100.4"
    )
    with _with_proxies(1):
        # The client wrote 10.9.9.9 itself; only the last hop was added by our proxy.
        assert client_address(request) == "198.51.100.4"


@override_settings(API_THROTTLE_RATES={"anon": None, "user": None, "auth": "1/min"})
def test_behind_a_proxy_clients_are_counted_apart():
    client = APIClient(REMOTE_ADDR="127.0.0.1")
    body = {"username": "demo", "password": "wrong"}
    with _with_proxies(1):
        first = client.post("/api/v1/auth/token/", body, HTTP_X_FORWARDED_FOR="198.51.100.1")
        second = client.post("/api/v1/auth/token/", body, HTTP_X_FORWARDED_FOR="198.51.100.2")
        again = client.post("/api/v1/auth/token/", body, HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert (first.status_code, second.status_code, again.status_code) == (400, 400, 429)


def test_num_proxies_comes_from_the_environment_and_bad_values_fail(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import recsite.settings.base as base

    try:
        assert base.REST_FRAMEWORK["NUM_PROXIES"] == 0
        monkeypatch.setenv("NUM_PROXIES", "2")
        importlib.reload(base)
        assert base.REST_FRAMEWORK["NUM_PROXIES"] == 2
        monkeypatch.setenv("NUM_PROXIES", "-1")
        with pytest.raises(ImproperlyConfigured, match="NUM_PROXIES"):
            importlib.reload(base)
    finally:
        monkeypatch.delenv("NUM_PROXIES")
        importlib.reload(base)
