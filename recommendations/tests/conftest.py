from io import StringIO

import pytest
from django.core.management import call_command

from recommendations import cold_start, pipeline, store


@pytest.fixture
def rec_redis(redis_client):
    """The empty test Redis (the test settings point the store at it), no cached inputs."""
    store._client_for.cache_clear()
    pipeline.model_state_clear()
    cold_start.clear()
    yield redis_client
    pipeline.model_state_clear()
    cold_start.clear()


@pytest.fixture
def demo_catalogue(db):
    """A small synthetic catalogue (users with genre tastes) and the demo login."""
    call_command("seed_demo", "--items", "150", "--users", "120", verbosity=0, stdout=StringIO())
