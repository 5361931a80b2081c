import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.tests.factories import UserFactory


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def user_api(user):
    """An APIClient signed in as ``user`` with a token, the way scripts use the API."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client
