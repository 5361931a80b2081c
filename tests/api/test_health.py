import pytest
from django.db import DatabaseError
from django.test import override_settings
from rest_framework.test import APIClient

from recsite import redis_server
from recsite.api import health

pytestmark = pytest.mark.django_db


def test_health_reports_database_and_redis_up(redis_url):
    with override_settings(REDIS_URL=redis_url):
        response = APIClient().get("/api/v1/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["redis"] == "ok"
    assert "model_version" in body


def test_redis_down_is_still_a_200_reported_as_degraded():
    dead = f"redis://127.0.0.1:{redis_server.free_port()}/0"
    with override_settings(REDIS_URL=dead):
        response = APIClient().get("/api/v1/health/")
    assert response.status_code == 200
    body = response.json()
    assert body == {"status": "degraded", "database": "ok", "redis": "down", "model_version": None}


def test_database_down_is_a_503(monkeypatch, redis_url):
    class BrokenCursor:
        def __enter__(self):
            raise DatabaseError("no database")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(health.connection, "cursor", lambda: BrokenCursor())
    with override_settings(REDIS_URL=redis_url):
        response = APIClient().get("/api/v1/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "down" and response.json()["database"] == "down"
