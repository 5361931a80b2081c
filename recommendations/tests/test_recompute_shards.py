"""The user-user lists through the recompute: the symmetric pass in shards (each pair
computed once), partial lists through the store, a merge stage; the rows published equal
one unsharded computation's, and the partial lists go with the run."""

import numpy as np
import pytest

from recommendations import build, pipeline, store
from recommendations.models import RecomputeRun

pytestmark = pytest.mark.django_db


def _unsharded_rows(version: str) -> dict[int, bytes]:
    """The user-user rows as the row-range path computes them over all users at once."""
    inputs = pipeline.model_state(version).inputs
    return build.compute_rows(inputs, "uu", 0, inputs.matrix.n_users)


def _stored(rec_redis, version: str, kind: str) -> dict[int, bytes]:
    return {int(k): v for k, v in rec_redis.hgetall(store.version_key(version, kind)).items()}


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_the_published_user_lists_equal_the_unsharded_computation(
    rec_redis, demo_catalogue, settings, shards
):
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "SHARDS": shards}
    run = pipeline.recompute_sync()
    assert run.status == RecomputeRun.Status.SUCCEEDED, run.error
    stored = _stored(rec_redis, run.version, "uu")
    expected = _unsharded_rows(run.version)
    assert len(expected) == run.n_users and stored == expected
    assert sum(len(v) for v in stored.values()) > 0  # not trivially equal
    assert not rec_redis.exists(store.version_key(run.version, "partial"))


def test_the_plan_runs_the_symmetric_pass_then_its_merge(rec_redis, demo_catalogue):
    """Stage one has the user-user pair shards (ranges of about equal pair work, so the
    first range, whose rows meet the most later rows, is the shortest); stage two merges
    them over all users; then the stored lists."""
    run = RecomputeRun.objects.create()
    version, (first, merge, lists) = pipeline.recompute_prepare(run_id=run.pk)
    pairs = [(a, b) for kind, a, b in first if kind == "uu:pairs"]
    n_users = pipeline.model_state(version).inputs.matrix.n_users
    assert pairs[0][0] == 0 and pairs[-1][1] == n_users and len(pairs) == 2
    assert pairs[0][1] - pairs[0][0] < pairs[1][1] - pairs[1][0]
    assert not [kind for kind, _, _ in first if kind == "uu"]
    assert {kind for kind, _, _ in merge} == {"uu:merge"}
    assert merge[0][1] == 0 and merge[-1][2] == n_users
    assert {kind for kind, _, _ in lists} == {"ready"}


def test_partial_lists_are_stored_in_chunks_and_dropped_after_the_merge(
    rec_redis, demo_catalogue, settings, monkeypatch
):
    """Small groups and chunks: many of each, no Redis value over the chunk size, the same
    merged rows; the list stage drops the partial lists."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "SNAPSHOT_CHUNK_BYTES": 2048}
    monkeypatch.setattr(build, "PARTIAL_GROUP_BYTES", 16 * 50 * 9)  # 9 rows a group
    run = RecomputeRun.objects.create()
    version, (first, merge, lists) = pipeline.recompute_prepare(run_id=run.pk)
    for kind, start, stop in first:
        pipeline.recompute_shard(run_id=run.pk, version=version, kind=kind, start=start, stop=stop)
    partial = rec_redis.hgetall(store.version_key(version, "partial"))
    assert len(store.partial_groups(version)) > 10
    assert max(len(v) for v in partial.values()) <= 2048
    pipeline.recompute_stage_begin(version=version, plan=merge)  # keeps them
    for kind, start, stop in merge:
        pipeline.recompute_shard(run_id=run.pk, version=version, kind=kind, start=start, stop=stop)
    assert _stored(rec_redis, version, "uu") == _unsharded_rows(version)
    pipeline.recompute_stage_begin(version=version, plan=lists)
    assert not rec_redis.exists(store.version_key(version, "partial"))


def test_with_a_snapshot_dir_partial_lists_are_files_there_and_go_with_the_run(
    rec_redis, demo_catalogue, settings, tmp_path
):
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "SNAPSHOT_DIR": str(tmp_path)}
    run = RecomputeRun.objects.create()
    version, (first, merge, _) = pipeline.recompute_prepare(run_id=run.pk)
    for kind, start, stop in first:
        pipeline.recompute_shard(run_id=run.pk, version=version, kind=kind, start=start, stop=stop)
    assert not rec_redis.exists(store.version_key(version, "partial"))
    folder = tmp_path / f"partial-{version}"
    assert store.partial_groups(version) and folder.is_dir()
    for kind, start, stop in merge:
        pipeline.recompute_shard(run_id=run.pk, version=version, kind=kind, start=start, stop=stop)
    assert _stored(rec_redis, version, "uu") == _unsharded_rows(version)
    pipeline.recompute_fail(run_id=run.pk, error="stopped by the test")  # a failed run ...
    assert not folder.exists()  # ... takes its partial lists with it


def test_a_failed_run_deletes_its_partial_lists_from_redis(rec_redis, demo_catalogue):
    run = RecomputeRun.objects.create()
    version, (first, *_) = pipeline.recompute_prepare(run_id=run.pk)
    kind, start, stop = next(s for s in first if s[0] == "uu:pairs")
    pipeline.recompute_shard(run_id=run.pk, version=version, kind=kind, start=start, stop=stop)
    assert rec_redis.exists(store.version_key(version, "partial"))
    with pytest.raises(ValueError, match="unknown row kind"):
        pipeline.recompute_shard(run_id=run.pk, version=version, kind="zz", start=0, stop=1)
    assert not rec_redis.exists(store.version_key(version, "partial"))


def test_a_merge_missing_a_shards_partial_lists_fails_the_run(rec_redis, demo_catalogue):
    """Partial lists lost (Redis emptied, a shard's result gone): the merge refuses to make
    rows from the others, and the run fails instead of publishing short lists."""
    run = RecomputeRun.objects.create()
    version, (first, merge, _) = pipeline.recompute_prepare(run_id=run.pk)
    pairs = [s for s in first if s[0] == "uu:pairs"]
    kind, start, stop = pairs[-1]  # the first shard's lists never arrive
    pipeline.recompute_shard(run_id=run.pk, version=version, kind=kind, start=start, stop=stop)
    kind, start, stop = merge[-1]
    with pytest.raises(LookupError, match="miss shards"):
        pipeline.recompute_shard(run_id=run.pk, version=version, kind=kind, start=start, stop=stop)
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.FAILED and store.lock_holder() is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_workers_publish_the_unsharded_user_lists(
    rec_redis, demo_catalogue, celery_worker_factory
):
    """Through Celery with two worker processes: pair shards, the merge stage, the lists,
    publish; the user-user rows equal one unsharded computation's and no partial is left."""
    import time

    celery_worker_factory(concurrency=2)
    run = pipeline.recompute_start(trigger="test")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert run.status == "succeeded", run.error
    assert run.shards_done == run.shards_total == 16
    stored = _stored(rec_redis, run.version, "uu")
    assert stored == _unsharded_rows(run.version)
    assert not rec_redis.exists(store.version_key(run.version, "partial"))
    assert np.all([len(v) % store.NEIGHBOUR_DTYPE.itemsize == 0 for v in stored.values()])


def test_the_lock_heartbeat_also_covers_taking_the_snapshot(
    rec_redis, demo_catalogue, settings, monkeypatch
):
    """Reading the ratings grows with the catalogue (minutes at 25M ratings): a prepare
    step longer than the lock's TTL keeps the lock, as a long shard does."""
    import time

    snapshot_ratings = build.snapshot_ratings

    def slow(*args, **kwargs):  # the same ratings, after outlasting the TTL twice over
        time.sleep(7)
        return snapshot_ratings(*args, **kwargs)

    monkeypatch.setattr(build, "snapshot_ratings", slow)
    # 3 s, not 1: the rest of the step (storing the snapshot, the memory give-back's
    # collection, the derived arrays, the content fit) holds the GIL in pieces that took
    # over 2/3 s on a loaded CI machine, and a beat every TTL/3 must fit between them.
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "LOCK_TTL_SECONDS": 3}
    run = RecomputeRun.objects.create()
    assert pipeline.recompute_prepare(run_id=run.pk) is not None
    assert store.lock_holder() == f"run:{run.pk}"


def test_the_prepare_task_is_queued_with_the_configured_time_limits(
    rec_redis, demo_catalogue, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from recommendations import tasks

    queued = []
    monkeypatch.setattr(
        tasks.recompute, "apply_async", lambda args, **options: queued.append((args, options))
    )
    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS, "TASK_SOFT_TIME_LIMIT": 4000, "TASK_TIME_LIMIT": 4200,
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        run = pipeline.recompute_start(trigger="test")
    assert queued == [((run.pk,), {"soft_time_limit": 4000, "time_limit": 4200})]
