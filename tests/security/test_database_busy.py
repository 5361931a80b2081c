"""A database lock timeout is a 503 with Retry-After, never a 500 (item 8).

Another connection really holds a lock while the site tries to write: on SQLite the
database's write lock, on PostgreSQL the rating's row (with a short lock_timeout).
"""

import sqlite3

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from catalog.models import Rating
from catalog.tests.factories import ItemFactory, UserFactory
from tests.api.test_errors import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rating():
    return Rating.objects.create(user=UserFactory(), item=ItemFactory(), score=3.0)


@pytest.fixture
def signed_in(client, rating):
    client.force_login(rating.user)  # writes the session, so before the lock
    return client


@pytest.fixture
def lock_held(rating):
    """Hold a lock the site's next write of ``rating`` needs; the site waits 0.2 s."""
    if connection.vendor == "sqlite":
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
    elif connection.vendor == "postgresql":
        import psycopg

        conf = connection.settings_dict
        other = psycopg.connect(
            dbname=conf["NAME"], user=conf["USER"], password=conf["PASSWORD"] or None,
            host=conf["HOST"], port=conf["PORT"],
        )  # fmt: skip
        other.execute("SELECT 1 FROM catalog_rating WHERE id = %s FOR UPDATE", [rating.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        yield
        other.rollback()
        other.close()
        connection.close()  # drops the session's short lock_timeout
    else:
        pytest.skip(f"no lock to hold on {connection.vendor}")


def test_api_write_blocked_by_another_writer_is_503(rating, lock_held):
    client = APIClient()
    client.force_authenticate(rating.user)
    response = client.put(f"/api/v1/me/ratings/{rating.item_id}/", {"score": 4}, format="json")
    error = assert_error(response, 503, "database_busy")
    assert int(response["Retry-After"]) > 0
    assert "try again" in error["message"].lower()


def test_page_write_blocked_by_another_writer_is_a_small_html_503(signed_in, rating, lock_held):
    response = signed_in.post(f"/items/{rating.item_id}/rate/", {"score": "4"})
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) > 0
    assert b"busy" in response.content.lower()


def test_postgresql_connections_wait_for_locks_no_longer_than_the_setting():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's wait is its connection timeout")
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        shown = cursor.fetchone()[0]
    assert shown == f"{settings.DB_LOCK_TIMEOUT_SECONDS}s"
