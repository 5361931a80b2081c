import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from catalog.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_register_returns_a_token_that_authenticates(api):
    response = api.post(
        "/api/v1/auth/register/",
        {"username": "carol", "password": "a-long-pass-phrase"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "carol" and body["token"]
    assert "password" not in body
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert client.get("/api/v1/me/ratings/").status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"username": "carol", "password": "short"}, "password", "password_too_short"),
        ({"username": "carol", "password": "password123"}, "password", "password_too_common"),
        (
            {"username": "carol", "password": "8713094527361"},
            "password",
            "password_entirely_numeric",
        ),
        ({"username": "carolina", "password": "carolina1"}, "password", "password_too_similar"),
        ({"username": "ca rol!", "password": "a-long-pass-phrase"}, "username", "invalid"),
        ({"username": "ALICE", "password": "a-long-pass-phrase"}, "username", "unique"),
        ({"password": "a-long-pass-phrase"}, "username", "required"),
        ({"username": "carol"}, "password", "required"),
    ],
)
def test_register_applies_the_password_validators_and_names_the_field(api, body, field, code):
    UserFactory(username="alice")
    response = api.post("/api/v1/auth/register/", body, format="json")
    assert response.status_code == 400
    codes = [e["code"] for e in response.json()["error"]["fields"][field]]
    assert code in codes
    assert not get_user_model().objects.filter(username="carol").exists()


def test_token_for_good_credentials_and_a_400_for_bad_ones(api):
    UserFactory(username="alice")
    response = api.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "a-long-pass-phrase"}
    )
    assert response.status_code == 200
    token = response.json()["token"]
    again = api.post("/api/v1/auth/token/", {"username": "alice", "password": "a-long-pass-phrase"})
    assert again.json()["token"] == token  # one token per user, handed out again
    response = api.post("/api/v1/auth/token/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["fields"]["non_field_errors"][0]["code"] == "invalid_credentials"
    assert "token" not in response.json()
