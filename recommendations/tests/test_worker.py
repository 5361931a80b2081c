"""The pipeline on a real Celery worker process, a real Redis and the test database.

Where a test needs a shard to be slow, the worker gets an empty NUMBA_CACHE_DIR: its
first shard then compiles the engine's kernels, which takes seconds, every time.
"""

import os
import re
import signal
import time

import pytest
from billiard import pool as billiard_pool
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.contrib.auth import get_user_model

from catalog import services as catalog_services
from catalog.models import Item
from recommendations import pipeline, reads, store, tasks
from recommendations.models import RecomputeRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, timeout: float, what: str, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None and value is not False:
            return value
        time.sleep(0.02)
    log = worker.log()[-3000:] if worker else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{log}")


def _run(pk) -> RecomputeRun:
    return RecomputeRun.objects.get(pk=pk)


def test_a_worker_runs_the_sharded_recompute_and_publishes(
    rec_redis, demo_catalogue, celery_worker_factory
):
    worker = celery_worker_factory(concurrency=2)
    run = pipeline.recompute_start(trigger="test")
    done = _wait_for(lambda: _run(run.pk).status in ("succeeded", "failed"), 120, "the run", worker)
    run = _run(run.pk)
    assert done and run.status == "succeeded", run.error
    assert run.shards_done == run.shards_total == 16
    assert store.live_model().version == run.version


def test_a_rating_reaches_the_panel_through_the_worker(
    rec_redis, demo_catalogue, celery_worker_factory
):
    pipeline.recompute_sync()
    worker = celery_worker_factory()
    newcomer = get_user_model().objects.create_user("newcomer", password="x-long-password")
    items = list(Item.objects.filter(genres__name="Comedy").order_by("-rating_count")[:4])
    for item in items:
        catalog_services.rating_upsert(user=newcomer, item=item, score=5)
    lists = _wait_for(
        lambda: store.live_model().user_neighbours([newcomer.pk])[newcomer.pk],
        60,
        "the worker to write the newcomer's neighbours",
        worker,
    )
    assert len(lists) > 0
    assert reads.people_like_you(user=newcomer).source == reads.PERSONAL
    # The stored list is refreshed by a task of its own that the update queues.
    _wait_for(
        lambda: reads._from_ready_list(store.live_model(), newcomer.pk, 10),
        60,
        "the worker to refresh the newcomer's stored list",
        worker,
    )


def test_a_new_worker_process_loads_the_live_version_for_updates_as_it_starts(
    rec_redis, demo_catalogue, celery_worker_factory
):
    """Before any rating: the first update of a fresh process (tens of seconds at 25M
    ratings) is not paid by the first rating it handles."""
    version = pipeline.recompute_sync().version
    worker = celery_worker_factory()
    _wait_for(lambda: f"update path of {version} warmed" in worker.log(), 60, "the warm-up", worker)


def test_a_killed_worker_leaves_the_old_version_serving_and_the_next_run_succeeds(
    rec_redis, demo_catalogue, celery_worker_factory, tmp_path
):
    live = pipeline.recompute_sync().version
    slow = {"NUMBA_CACHE_DIR": tmp_path / "numba-empty", "RECOMPUTE_LOCK_TTL_SECONDS": 3}
    worker = celery_worker_factory(**slow)
    lost = pipeline.recompute_start(trigger="test")
    _wait_for(lambda: _run(lost.pk).status == "running", 60, "the run to start", worker)
    worker.kill()
    assert _run(lost.pk).status == "running"  # killed mid-run, before its last shard
    assert store.live_model().version == live
    assert store.lock_holder() == f"run:{lost.pk}"

    _wait_for(lambda: store.lock_holder() is None, 10, "the dead worker's lock to lapse")
    celery_worker_factory()
    retry = pipeline.recompute_start(trigger="test")
    _wait_for(lambda: _run(retry.pk).status in ("succeeded", "failed"), 120, "the retry")
    assert _run(retry.pk).status == "succeeded", _run(retry.pk).error
    assert store.live_model().version == _run(retry.pk).version != live
    lost = _run(lost.pk)
    assert lost.status == "failed" and "lock lapsed" in lost.error


def test_a_shard_over_its_time_limit_is_stopped_and_the_run_fails(
    rec_redis, demo_catalogue, celery_worker_factory, tmp_path
):
    live = pipeline.recompute_sync().version
    worker = celery_worker_factory(
        NUMBA_CACHE_DIR=tmp_path / "numba-empty", RECOMPUTE_TIME_LIMIT_SECONDS=2
    )
    run = pipeline.recompute_start(trigger="test")
    _wait_for(lambda: _run(run.pk).status == "failed", 60, "the run to fail", worker)
    run = _run(run.pk)
    # RECOMPUTE_TIME_LIMIT_SECONDS=2 is the hard limit; the soft one is 19/20 of it, 1 s.
    # Named even when it lands inside numba's compiler (the empty cache makes every kernel
    # compile), which then raises "no compiled object yet" of its own (seen once in CI).
    assert run.error.startswith("Time limit of 1 s exceeded. "), run.error
    assert store.live_model().version == live
    assert store.lock_holder() is None


def test_a_shard_whose_code_turns_its_time_limit_into_another_error_records_the_limit(
    rec_redis, demo_catalogue, celery_worker_factory
):
    """The soft limit's exception lands wherever the shard is, and the code it interrupts
    may catch it and raise something else with no trace of it (numba's compiler did). The
    run's error names the limit, then what surfaced."""
    live = pipeline.recompute_sync().version
    worker = celery_worker_factory(
        DJANGO_SETTINGS_MODULE="recommendations.tests.worker_settings",
        RECOMPUTE_TIME_LIMIT_SECONDS=2,
    )
    run = pipeline.recompute_start(trigger="test")
    _wait_for(lambda: _run(run.pk).status == "failed", 60, "the run to fail", worker)
    assert _run(run.pk).error == (
        "Time limit of 1 s exceeded. RuntimeError: no compiled object yet for <Library 'stalled'>"
    )
    assert store.live_model().version == live
    assert store.lock_holder() is None


def test_a_shard_failing_within_its_time_limit_records_only_its_error(
    rec_redis, demo_catalogue, celery_worker_factory
):
    worker = celery_worker_factory(RECOMPUTE_TIME_LIMIT_SECONDS=60)
    run = RecomputeRun.objects.create(trigger="test")
    version, _ = pipeline.recompute_prepare(run_id=run.pk)
    result = tasks.recompute_shard.si(run.pk, version, "zz", 0, 1).set(**tasks.limits()).delay()
    _wait_for(lambda: result.ready(), 60, "the shard", worker)
    error = _run(run.pk).error
    assert error.startswith("ValueError: ") and "Time limit" not in error, error


def test_the_soft_limit_watch_notes_the_pools_signal_and_restores_its_handler():
    """The pool's handler (billiard's, which raises SoftTimeLimitExceeded) still runs."""
    previous = signal.signal(billiard_pool.SIG_SOFT_TIMEOUT, billiard_pool.soft_timeout_sighandler)
    try:
        with tasks._SoftTimeLimitWatch(7) as quiet:
            pass
        assert quiet.exceeded() is None
        with tasks._SoftTimeLimitWatch(7) as watch, pytest.raises(SoftTimeLimitExceeded):
            os.kill(os.getpid(), billiard_pool.SIG_SOFT_TIMEOUT)
            time.sleep(1)  # (the handler runs between bytecodes, at once)
        assert watch.exceeded() == 7
        handler = signal.getsignal(billiard_pool.SIG_SOFT_TIMEOUT)
        assert handler is billiard_pool.soft_timeout_sighandler
    finally:
        signal.signal(billiard_pool.SIG_SOFT_TIMEOUT, previous)


def test_a_shard_killed_at_its_hard_time_limit_records_the_limit(rec_redis):
    """The errback is all that runs when the pool kills a shard's process."""
    run = RecomputeRun.objects.create(trigger="test", status=RecomputeRun.Status.RUNNING)
    tasks.recompute_shard_failed.run(None, TimeLimitExceeded(2.0), None, run.pk)
    assert (
        _run(run.pk).error
        == "Time limit of 2 s exceeded. TimeLimitExceeded: TimeLimitExceeded(2.0,)"
    )


def test_a_ratings_update_runs_before_stored_list_refreshes_queued_ahead_of_it(
    rec_redis, demo_catalogue, celery_worker_factory
):
    """Under a burst of ratings the rows a rating changes (what the user's panels read at
    once) do not wait behind the stored lists' refreshes the earlier updates queued: those
    have a lower broker priority (a stale stored list is ranked live meanwhile)."""
    pipeline.recompute_sync()
    celery_worker_factory().stop()  # (the factory purges the queue at its first start)
    raters = list(
        get_user_model().objects.filter(ratings__isnull=False).distinct().order_by("pk")[:4]
    )
    for user in raters[:3]:  # their updates, run here, queue their lists' refreshes
        tasks.model_update.apply(args=(user.pk,))
    last = raters[3]
    item = Item.objects.exclude(ratings__user=last).order_by("pk").first()
    catalog_services.rating_upsert(user=last, item=item, score=4)  # queued after them
    worker = celery_worker_factory()
    # the update, the three refreshes queued before it and the one it queues
    _wait_for(lambda: worker.log().count(" succeeded in ") >= 5, 60, "the five tasks", worker)
    received = re.findall(r"Task recommendations\.tasks\.(\w+)\[[^\]]*\] received", worker.log())
    assert received[0] == "model_update", received
    assert sorted(received) == ["model_update"] + ["ready_list_refresh"] * 4


def test_a_warmed_worker_process_recomputes_then_updates_the_new_version_with_true_rows(
    rec_redis, demo_catalogue, celery_worker_factory
):
    """One pool process warms the live version's update state, then runs the whole
    recompute (the prepare step and the model fits release its state first); the rating
    that follows patches the published version, reloaded, into the rows a model holding
    every rating computes."""
    from recommendations import build
    from recommendations.incremental import PatchableModel

    live = pipeline.recompute_sync().version
    worker = celery_worker_factory(concurrency=1)
    _wait_for(lambda: f"update path of {live} warmed" in worker.log(), 60, "the warm-up", worker)
    run = pipeline.recompute_start(trigger="test")
    _wait_for(lambda: _run(run.pk).status in ("succeeded", "failed"), 120, "the run", worker)
    run = _run(run.pk)
    assert run.status == "succeeded", run.error
    assert store.live_model().version == run.version != live

    user = get_user_model().objects.get(username="demo")
    item = Item.objects.exclude(ratings__user=user).order_by("-rating_count").first()
    catalog_services.rating_upsert(user=user, item=item, score=5)  # queues the update
    pipeline.model_state_clear()
    reference = PatchableModel.from_inputs(pipeline.model_state(run.version).inputs)
    u = reference.set_user_ratings(user.pk, *reads._live_ratings(user.pk))
    expected = build.encode_list(*reference.user_neighbours(u, 50))
    i = int(reference.item_indices([item.pk])[0])
    _ii, ip = reference.item_rows(i, k_cosine=20, k_pearson=200, shrinkage=100.0)
    key = store.version_key(run.version, "uu")
    _wait_for(lambda: rec_redis.hget(key, user.pk) == expected, 60, "the user's row", worker)
    # (a popular item's row may come a moment later: ``item_rows_refresh``)
    key = store.version_key(run.version, "ip")
    row = build.encode_list(*ip)
    _wait_for(lambda: rec_redis.hget(key, item.pk) == row, 60, "the item's row", worker)
