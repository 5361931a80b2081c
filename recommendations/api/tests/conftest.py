from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from recommendations import pipeline, store


@pytest.fixture(scope="module")
def published_model(django_db_setup, django_db_blocker, redis_url):
    """A small demo catalogue with a model published in the test Redis, built once per module.

    The rows are committed (module scope), so they are deleted again at the end.
    """
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    store._client_for.cache_clear()
    pipeline.model_state_clear()
    with django_db_blocker.unblock():
        call_command(
            "seed_demo", "--items", "150", "--users", "120", verbosity=0, stdout=StringIO()
        )
        run = pipeline.recompute_sync()
        assert run.version, run.error
        yield run.version
        call_command("flush", "--noinput", verbosity=0)
    pipeline.model_state_clear()
    client.flushdb()


@pytest.fixture
def demo(published_model, db):
    """The demo user (a Sci-Fi and Action taste), signed in through the API client."""
    client = APIClient()
    user = get_user_model().objects.get(username="demo")
    client.force_authenticate(user)
    client.user = user
    return client


@pytest.fixture
def reader(published_model, db):
    """The demo user with a token and a stored list (read once, so kept)."""
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.get(username="demo")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    client.user = user
    assert client.get("/api/v1/me/recommendations/", {"limit": 10}).status_code == 200
    return client
