"""Sign-in lockout per account and per address on every login path (item 2).

The HTML login, the admin's login and the API's token endpoint count toward one lockout
(django-axes); a locked account cannot sign in even with its password, the page says
why, and staff unlock it in the admin.
"""

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from catalog.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-pass-phrase"
LIMIT = 3


@pytest.fixture(autouse=True)
def low_limit():
    with override_settings(AXES_FAILURE_LIMIT=LIMIT):
        yield


@pytest.fixture
def demo():
    return UserFactory(username="demo")


def _html_login(client, username, password, path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password})


def _token(client, username, password, **extra):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, **extra)


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_login_pages_lock_the_account_and_say_so(demo, path):
    client = Client()
    for _ in range(LIMIT):
        _html_login(client, "demo", "wrong", path=path)
    response = _html_login(client, "demo", PASSWORD, path=path)
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert not _signed_in(client)


def test_the_account_lock_holds_from_another_address(demo):
    for n in range(LIMIT):
        _html_login(Client(REMOTE_ADDR=f"192.0.2.{n}"), "demo", "wrong")
    fresh = Client(REMOTE_ADDR="198.51.100.9")
    assert _html_login(fresh, "demo", PASSWORD).status_code == 429
    assert not _signed_in(fresh)


def test_one_address_guessing_many_accounts_is_locked_out(demo):
    client = Client(REMOTE_ADDR="192.0.2.50")
    for n in range(LIMIT):
        _html_login(client, f"someone{n}", "wrong")
    assert _html_login(client, "demo", PASSWORD).status_code == 429
    assert _html_login(Client(REMOTE_ADDR="192.0.2.51"), "demo", PASSWORD).status_code == 302


def test_a_forged_x_forwarded_for_is_the_same_address(demo):
    for n in range(LIMIT):
        _html_login(Client(HTTP_X_FORWARDED_FOR=f"10.0.0.{n}"), f"x{n}", "wrong")
    forged = Client(HTTP_X_FORWARDED_FOR="10.0.0.99")
    assert _html_login(forged, "demo", PASSWORD).status_code == 429


def test_api_token_failures_count_toward_the_same_lockout(demo):
    api = APIClient()
    for _ in range(LIMIT):
        _token(api, "demo", "wrong")
    response = _token(api, "demo", PASSWORD)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "locked_out"
    assert int(response["Retry-After"]) > 0
    assert _html_login(Client(REMOTE_ADDR="198.51.100.3"), "demo", PASSWORD).status_code == 429


def test_staff_unlock_in_the_admin(demo):
    from axes.models import AccessAttempt

    for _ in range(LIMIT):
        _html_login(Client(), "demo", "wrong")
    assert _html_login(Client(), "demo", PASSWORD).status_code == 429
    staff = Client()
    staff.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    listing = staff.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and b"demo" in listing.content
    attempt = AccessAttempt.objects.get(username="demo")
    staff.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    client = Client()
    assert _html_login(client, "demo", PASSWORD).status_code == 302
    assert _signed_in(client)


def test_signing_in_to_ones_own_account_does_not_reset_the_count_against_another(demo):
    """A success resets nothing: else an attacker with an account could sign in to it
    between guesses and clear the counts against the account under attack."""
    UserFactory(username="mallory")
    attacker = Client(REMOTE_ADDR="192.0.2.66")
    for _ in range(LIMIT - 1):
        _html_login(attacker, "demo", "wrong")
    assert _html_login(attacker, "mallory", PASSWORD).status_code == 302
    _html_login(Client(REMOTE_ADDR="192.0.2.66"), "demo", "wrong")
    assert _html_login(Client(REMOTE_ADDR="198.51.100.7"), "demo", PASSWORD).status_code == 429
