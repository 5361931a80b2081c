"""Writes the API needs that the site's pages do not: accounts made over JSON, tokens."""

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token


@transaction.atomic
def account_register(*, username: str, password: str):
    """A new user with ``password`` (already validated) and their API token."""
    user = get_user_model().objects.create_user(username=username, password=password)
    token = Token.objects.create(user=user)
    return user, token


def auth_token_get_or_create(*, user) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token
