import pytest
from rest_framework.test import APIClient

from catalog.tests.factories import UserFactory
from recommendations.models import RecomputeRun

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_recompute_is_staff_only():
    assert APIClient().post("/api/v1/staff/recompute/").status_code == 401
    response = client_for(UserFactory()).post("/api/v1/staff/recompute/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert client_for(UserFactory()).get("/api/v1/staff/recompute/").status_code == 403
    assert not RecomputeRun.objects.exists()


def test_staff_start_a_recompute_and_read_its_status(django_capture_on_commit_callbacks):
    staff = client_for(UserFactory(is_staff=True))
    response = staff.get("/api/v1/staff/recompute/")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No recompute has run yet."
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff.post("/api/v1/staff/recompute/")
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "queued" and run["trigger"] == "api"
    assert len(callbacks) == 1  # the Celery task is queued once the request commits
    latest = staff.get("/api/v1/staff/recompute/").json()
    assert latest["id"] == run["id"] and latest["status"] == "queued"
