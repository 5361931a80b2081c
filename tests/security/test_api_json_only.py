"""Every response under /api/ is JSON in the one error shape, DEBUG or not (item 5)."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.api.test_errors import assert_error

pytestmark = pytest.mark.django_db

ODD_PATHS = [
    "/api/v1/items/1%0A/",
    "/api/v1/items/%0A",
    "/api/v1/%0D%0A",
    "/api/nope/",
    "/api/",
    "/api/v2/items/",
    "/api/docs/x/",
]


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("path", ODD_PATHS)
def test_unknown_paths_under_api_are_json_404s(path, debug):
    with override_settings(DEBUG=debug):
        assert_error(APIClient().get(path), 404, "not_found")


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_bad_host_header_under_api_is_a_json_400(debug):
    with override_settings(DEBUG=debug):
        response = APIClient().get("/api/v1/items/", HTTP_HOST="evil.example")
    assert_error(response, 400, "bad_request")


def test_a_session_post_without_csrf_under_api_is_a_json_403():
    from catalog.tests.factories import UserFactory

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    response = client.post("/api/v1/me/ratings/", {"item": 1, "score": 4}, format="json")
    assert_error(response, 403, "permission_denied")


def test_the_docs_pages_stay_html():
    assert APIClient().get("/api/docs/")["Content-Type"].startswith("text/html")
