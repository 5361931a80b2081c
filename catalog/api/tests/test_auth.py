import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
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


# -- the token lookup (recsite.api.authentication: one hand-written statement) ------------
def test_the_token_lookup_gives_the_same_user_and_token_as_the_orm(user):
    from django.contrib.auth import get_user_model

    from recsite.api.authentication import TokenAuthentication

    user.is_staff = True
    user.last_login = None
    user.save()
    token = Token.objects.create(user=user)
    found_user, found_token = TokenAuthentication().authenticate_credentials(token.key)
    orm_user = get_user_model().objects.get(pk=user.pk)
    for field in get_user_model()._meta.concrete_fields:
        assert getattr(found_user, field.attname) == getattr(orm_user, field.attname), field
    assert found_user.is_staff is True and found_user.date_joined.tzinfo is not None
    assert found_token.pk == token.pk and found_token.created == token.created
    assert found_token.user is found_user


def test_a_wrong_token_or_an_inactive_user_gets_drfs_401(api, user):
    me = "/api/v1/me/ratings/"
    api.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = api.get(me)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"]["message"] == "Invalid token."

    token = Token.objects.create(user=user)
    user.is_active = False
    user.save()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = api.get(me)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "User inactive or deleted."
