"""The API's one error shape, for every kind of error, and never an HTML page or a 500."""

import pytest
from rest_framework.test import APIClient

from catalog.tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def assert_error(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"status", "code", "message", "fields"}
    assert error["status"] == status and error["code"] == code and error["message"]
    return error


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nope/", "/api/v1/items", "/api/v1/items/abc/", "/api/v1/items/-1/", "/api/v1/"],
)
def test_unknown_paths_under_the_api_are_json_404s(path):
    assert_error(APIClient().get(path), 404, "not_found")


def test_wrong_method_is_a_json_405():
    response = APIClient().delete("/api/v1/items/")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_unacceptable_accept_header_is_a_json_406():
    response = APIClient().get("/api/v1/items/", HTTP_ACCEPT="text/html")
    assert response.status_code == 406
    assert response.json()["error"]["code"] == "not_acceptable"


def test_validation_error_lists_every_field_with_code_and_message():
    response = APIClient().post("/api/v1/auth/register/", {}, format="json")
    error = assert_error(response, 400, "invalid")
    assert set(error["fields"]) == {"username", "password"}
    assert error["fields"]["username"] == [
        {"code": "required", "message": "This field is required."}
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"search": "\x00"},
        {"search": "x" * 301},
        {"genre": "not a slug"},
        {"ordering": "-price"},
        {"page_size": "-5"},
    ],
)
def test_malformed_query_parameters_are_400s_naming_the_parameter(query):
    error = assert_error(APIClient().get("/api/v1/items/", query), 400, "invalid")
    assert set(error["fields"]) == set(query)


def test_oversized_and_absurdly_nested_bodies_are_client_errors_not_500s():
    client = APIClient()
    client.force_authenticate(UserFactory())
    path = f"/api/v1/me/ratings/{ItemFactory().pk}/"
    big = b'{"score": 4, "padding": "' + b"a" * 3_000_000 + b'"}'
    assert_error(client.put(path, big, content_type="application/json"), 413, "too_large")
    deep = b"[" * 100_000 + b"]" * 100_000
    error = assert_error(
        client.put(path, deep, content_type="application/json"), 400, "parse_error"
    )
    assert "nested too deeply" in error["message"]


def test_an_unexpected_exception_is_a_logged_json_500(monkeypatch, caplog):
    from catalog.api import views

    def boom(**kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(views.selectors, "item_list", boom)
    response = APIClient().get("/api/v1/items/")
    error = assert_error(response, 500, "server_error")
    assert "kaboom" not in error["message"]
    assert "kaboom" in caplog.text


def test_forbidden_is_a_json_403_for_non_staff():
    client = APIClient()
    client.force_authenticate(UserFactory())
    # The schema view is open; a staff-only endpoint comes with the recommendations API.
    assert client.get("/api/schema/").status_code == 200
