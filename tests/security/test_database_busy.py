"""A database lock timeout is a 503 with Retry-After, never a 500 (item 8).

Another connection really holds the SQLite write lock while the site tries to write.
"""

import sqlite3

import pytest
from django.db import connection
from rest_framework.test import APIClient

from catalog.tests.factories import ItemFactory, UserFactory
from tests.api.test_errors import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def write_lock_held():
    """Hold the test database's write lock from a second connection; the site waits 0.2 s."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's file lock; PostgreSQL's lock_timeout is tested separately")
    options = connection.settings_dict["OPTIONS"]
    before = options.get("timeout")
    options["timeout"] = 0.2
    connection.close()
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield
    other.execute("ROLLBACK")
    other.close()
    options["timeout"] = before
    connection.close()


@pytest.fixture
def user_and_item():
    return UserFactory(), ItemFactory()


def test_api_write_blocked_by_another_writer_is_503(user_and_item, write_lock_held):
    user, item = user_and_item
    client = APIClient()
    client.force_authenticate(user)
    response = client.put(f"/api/v1/me/ratings/{item.pk}/", {"score": 4}, format="json")
    error = assert_error(response, 503, "database_busy")
    assert int(response["Retry-After"]) > 0
    assert "try again" in error["message"].lower()


@pytest.fixture
def signed_in(client, user_and_item):
    client.force_login(user_and_item[0])  # writes the session, so before the lock
    return client


def test_page_write_blocked_by_another_writer_is_a_small_html_503(
    signed_in, user_and_item, write_lock_held
):
    client, (_, item) = signed_in, user_and_item
    response = client.post(f"/items/{item.pk}/rate/", {"score": "4"})
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) > 0
    assert b"busy" in response.content.lower()
