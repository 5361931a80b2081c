"""Redis down or frozen: pages, the API and the services still answer, then recover.

Each test runs its own redis-server so it can kill, freeze and restart it.
"""

import os
import signal
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from catalog.models import Item
from recommendations import pipeline, reads, store
from recsite import redis_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_redis(settings, tmp_path):
    """A redis-server only this test uses; ``.stop()``, ``.start()``, ``.freeze()``."""

    class OwnRedis:
        port = redis_server.free_port()
        proc = None

        def start(self):
            self.proc = redis_server.start(self.port, tmp_path / "redis")
            store._client_for.cache_clear()

        def stop(self):
            self.proc.kill()
            self.proc.wait()

        def freeze(self):
            os.kill(self.proc.pid, signal.SIGSTOP)

        def thaw(self):
            os.kill(self.proc.pid, signal.SIGCONT)

    own = OwnRedis()
    settings.REDIS_URL = f"redis://127.0.0.1:{own.port}/0"
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "REDIS_TIMEOUT": 0.3}
    own.start()
    pipeline.model_state_clear()
    yield own
    if own.proc.poll() is None:
        own.thaw()
        own.stop()
    store._client_for.cache_clear()
    pipeline.model_state_clear()


@pytest.fixture
def demo(demo_catalogue, client):
    user = get_user_model().objects.get(username="demo")
    client.force_login(user)
    return user


def _every_read(user):
    item = Item.objects.order_by("-rating_count").first()
    return {
        "recommendations": reads.recommendations_for_user(user=user).source,
        "people_like_you": reads.people_like_you(user=user).source,
        "similar": {s.source for s in reads.similar_items(item=item)},
        "because": reads.because_you_rated(user=user),
        "similar_users": reads.similar_users(user=user),
        "predicted": reads.predicted_rating(user=user, item=item).source,
        "status": reads.model_status()["redis"],
    }


def _pages_answer(client, item):
    for url in [
        reverse("home"),
        item.get_absolute_url(),
        "/api/v1/me/recommendations/",
        f"/api/v1/items/{item.pk}/similar/",
        "/api/v1/health/",
    ]:
        response = client.get(url)
        assert response.status_code in (200, 503), (url, response.status_code)
        if url.startswith("/api/v1/me/"):
            assert response.json()["source"] == "popular"


def test_with_redis_killed_everything_falls_back_to_labelled_popular_items_then_recovers(
    own_redis, demo, client
):
    pipeline.recompute_sync()
    assert reads.recommendations_for_user(user=demo).source == reads.PERSONAL
    item = Item.objects.order_by("-rating_count").first()

    own_redis.stop()
    seen = _every_read(demo)
    assert seen["recommendations"] == seen["people_like_you"] == reads.POPULAR
    # content rows live in Redis with the model now: popular items of the genre meanwhile
    assert seen["similar"] == {reads.POPULAR}
    assert seen["because"] == [] and seen["similar_users"] == []
    assert seen["predicted"] == "unavailable" and seen["status"] == "down"
    fallback = reads.recommendations_for_user(user=demo)
    assert "unavailable" in fallback.note and fallback.suggestions
    _pages_answer(client, item)

    # Redis returns empty (no persistence): the same client reconnects by itself, pages say
    # a model is being prepared, and the next recompute brings personal results back.
    own_redis.start()
    assert reads.model_status()["redis"] == "up"
    assert "being prepared" in reads.recommendations_for_user(user=demo).note
    pipeline.recompute_sync()
    assert reads.recommendations_for_user(user=demo).source == reads.PERSONAL


def test_a_frozen_redis_times_out_into_the_fallback_and_recovers_with_its_data(
    own_redis, demo, client
):
    pipeline.recompute_sync()
    item = Item.objects.order_by("-rating_count").first()
    own_redis.freeze()
    try:
        assert reads.recommendations_for_user(user=demo).source == reads.POPULAR
        _pages_answer(client, item)
    finally:
        own_redis.thaw()
    assert reads.recommendations_for_user(user=demo).source == reads.PERSONAL


def test_rating_still_works_while_redis_is_down(
    own_redis, demo, client, django_capture_on_commit_callbacks
):
    from catalog.models import Rating

    own_redis.stop()
    item = Item.objects.exclude(ratings__user=demo).first()
    # The commit hook that queues the model update runs, fails to reach Redis, and logs.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(reverse("catalog:rating_submit", args=[item.pk]), {"score": "4"})
    assert callbacks and response.status_code == 302
    assert Rating.objects.get(user=demo, item=item).score == 4.0


def test_the_test_redis_port_is_not_the_development_one(settings):
    assert urlsplit(settings.REDIS_URL).port != 6390
