"""Beat's model watch: a Redis that came back empty gets a model again by itself."""

import pytest
from django.test import override_settings

from recommendations import pipeline, store, tasks
from recommendations.models import RecomputeRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_empty_redis_gets_a_recompute_and_only_one_while_it_is_on_its_way(
    rec_redis, demo_catalogue
):
    assert store.live_model() is None
    first = tasks.model_watch()
    run = RecomputeRun.objects.get(pk=first)
    assert (run.trigger, run.status) == ("no model", RecomputeRun.Status.QUEUED)
    assert tasks.model_watch() is None  # the first one is still queued
    assert RecomputeRun.objects.count() == 1


def test_nothing_starts_while_a_model_is_published(rec_redis, demo_catalogue):
    pipeline.recompute_sync(trigger="test")
    assert store.live_model() is not None
    assert tasks.model_watch() is None
    assert not RecomputeRun.objects.filter(trigger="no model").exists()


def test_after_a_failed_run_the_watch_tries_again(rec_redis, demo_catalogue):
    RecomputeRun.objects.create(trigger="schedule", status=RecomputeRun.Status.FAILED)
    assert tasks.model_watch() is not None


@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_with_redis_down_the_watch_says_so_and_starts_nothing(db):
    store._client_for.cache_clear()
    try:
        assert tasks.model_watch() is None
    finally:
        store._client_for.cache_clear()
    assert not RecomputeRun.objects.exists()


def test_beat_runs_the_watch_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["model-watch"]
    assert (entry["task"], entry["schedule"]) == ("recommendations.tasks.model_watch", 60)
