"""Writes the API needs that the site's pages do not: accounts made over JSON, tokens."""

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from accounts.services import genre_picks_set


@transaction.atomic
def account_register(*, username: str, password: str, genres=()):
    """A new user with ``password`` (already validated), the ``genres`` they like and
    their API token."""
    user = get_user_model().objects.create_user(username=username, password=password)
    genre_picks_set(user=user, genres=genres)
    token = Token.objects.create(user=user)
    return user, token


def auth_token_get_or_create(*, user) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token
