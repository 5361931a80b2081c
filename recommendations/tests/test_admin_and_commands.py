from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from recommendations import store
from recommendations.models import RecomputeRun
from recsite.celery import app

pytestmark = pytest.mark.django_db


def test_the_recompute_command_publishes_with_a_summary(rec_redis, demo_catalogue):
    out = StringIO()
    call_command("recompute", verbosity=0, stdout=out)
    run = RecomputeRun.objects.get()
    assert run.status == "succeeded" and run.trigger == "command"
    assert f"Published {run.version}" in out.getvalue()
    assert store.live_model().version == run.version
    again = StringIO()
    call_command("recompute", "--if-missing", verbosity=0, stdout=again)
    assert "already published" in again.getvalue()
    assert RecomputeRun.objects.count() == 1


def test_the_recompute_command_names_an_unreachable_redis(settings):
    from recsite.redis_server import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    store._client_for.cache_clear()
    try:
        with pytest.raises(CommandError, match="Redis is unavailable"):
            call_command("recompute", "--if-missing", verbosity=0, stdout=StringIO())
    finally:
        store._client_for.cache_clear()


def test_staff_see_runs_with_progress_and_can_start_one(
    rec_redis, demo_catalogue, admin_client, django_capture_on_commit_callbacks
):
    call_command("recompute", verbosity=0, stdout=StringIO())
    page = admin_client.get(reverse("admin:recommendations_recomputerun_changelist"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Live model:" in html and "Recompute now" in html
    # 4 kinds x 2 neighbour shards (user-user: the symmetric pass's), the ranking model,
    # the merge of the user-user partial lists in 2 shards, 2 list shards
    assert '<progress max="16" value="16"' in html
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:recommendations_recomputerun_recompute_now"), follow=True
        )
    run = RecomputeRun.objects.order_by("-id").first()
    assert run.trigger == "admin" and run.status == "queued"
    assert f"Recompute #{run.pk} queued" in response.content.decode()
    # Queued on the real broker: one message waits for a worker.
    assert rec_redis.llen("celery") == 1
    # While a run is active the list refreshes itself to show progress.
    assert 'http-equiv="refresh"' in admin_client.get(page.request["PATH_INFO"]).content.decode()


def test_runs_cannot_be_added_or_edited_by_hand(admin_client):
    assert admin_client.get(reverse("admin:recommendations_recomputerun_add")).status_code == 403


def test_beat_schedules_a_task_the_workers_know():
    entry = settings.CELERY_BEAT_SCHEDULE["recompute-neighbours"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    assert entry["schedule"] >= 60
