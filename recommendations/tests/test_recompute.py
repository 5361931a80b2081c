"""Full recompute in-process: complete versions, atomic publish, the lock, incremental updates."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from catalog import selectors as catalog_selectors
from catalog import services as catalog_services
from catalog.models import Item, Rating
from recommendations import pipeline, reads, store
from recommendations.incremental import PatchableModel
from recommendations.models import RecomputeRun

pytestmark = pytest.mark.django_db


def test_a_recompute_publishes_a_complete_version(rec_redis, demo_catalogue):
    run = pipeline.recompute_sync()
    assert run.status == RecomputeRun.Status.SUCCEEDED, run.error
    # 4 kinds x 2 shards (user-user: the symmetric pass's), the ranking and rating models
    # and the content rows in 2 shards, the merge of the user-user partial lists in 2
    # shards, then the stored lists in 2 shards (the test settings)
    assert run.shards_done == run.shards_total == 16
    n_users = Rating.objects.values("user").distinct().count()
    n_items = Rating.objects.values("item").distinct().count()
    assert (run.n_ratings, run.n_users, run.n_items) == (Rating.objects.count(), n_users, n_items)
    model = store.live_model()
    assert model.version == run.version
    assert model.meta["n_ratings"] == run.n_ratings
    n_active = Item.objects.filter(is_active=True).count()
    kinds = {"ii": n_items, "ip": n_items, "uu": n_users, "ur": n_users, "ic": n_active}
    for kind, n in kinds.items():
        assert rec_redis.hlen(store.version_key(run.version, kind)) == n
    assert store.lock_holder() is None
    # Every stored list is sorted best first and never names its own row.
    some_item = Rating.objects.first().item_id
    lists = model.item_neighbours([some_item])[some_item]
    assert some_item not in lists["id"]
    assert np.all(np.diff(lists["score"]) <= 0)


def test_readers_see_the_old_or_the_new_version_never_a_mix(rec_redis, demo_catalogue):
    first = pipeline.recompute_sync()
    handle = store.live_model()
    item = Rating.objects.first().item_id
    before = handle.item_neighbours([item])[item].copy()

    run = RecomputeRun.objects.create()
    version, (plan, *_) = pipeline.recompute_prepare(run_id=run.pk)
    for kind, start, stop in plan[: len(plan) // 2]:
        pipeline.recompute_shard(run_id=run.pk, version=version, kind=kind, start=start, stop=stop)
    # Half built: the pointer still names the first version, and reads follow the pointer.
    assert store.live_model().version == first.version
    assert np.array_equal(store.live_model().item_neighbours([item])[item], before)
    with pytest.raises(store.IncompleteModel):
        pipeline.recompute_publish(run_id=run.pk)
    assert store.live_model().version == first.version
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.FAILED and "incomplete" in run.error
    # A handle taken before a flip keeps reading its own version through the grace period.
    second = pipeline.recompute_sync()
    assert store.live_model().version == second.version != first.version
    assert np.array_equal(handle.item_neighbours([item])[item], before)


def test_the_lock_stops_a_second_concurrent_recompute(rec_redis, demo_catalogue):
    first = RecomputeRun.objects.create()
    assert pipeline.recompute_prepare(run_id=first.pk) is not None
    second = RecomputeRun.objects.create()
    assert pipeline.recompute_prepare(run_id=second.pk) is None
    second.refresh_from_db()
    assert second.status == RecomputeRun.Status.SKIPPED
    assert f"run:{first.pk}" in second.error


def test_a_run_whose_worker_died_is_marked_failed_by_the_next(rec_redis, demo_catalogue):
    lost = RecomputeRun.objects.create()
    pipeline.recompute_prepare(run_id=lost.pk)  # ... and its worker never comes back
    rec_redis.delete(store.key("lock"))  # what the lapse of its TTL does
    run = pipeline.recompute_sync()
    assert run.status == RecomputeRun.Status.SUCCEEDED
    lost.refresh_from_db()
    assert lost.status == RecomputeRun.Status.FAILED
    assert "lock lapsed" in lost.error


def test_a_failing_shard_fails_the_run_and_frees_the_lock(rec_redis, demo_catalogue):
    run = RecomputeRun.objects.create()
    version, _ = pipeline.recompute_prepare(run_id=run.pk)
    with pytest.raises(ValueError, match="unknown row kind"):
        pipeline.recompute_shard(run_id=run.pk, version=version, kind="zz", start=0, stop=1)
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.FAILED
    assert store.lock_holder() is None
    assert not rec_redis.exists(store.version_key(version, "bias"))


def test_the_incremental_update_changes_the_users_panel_after_one_rating(
    rec_redis, demo_catalogue, settings
):
    """Neighbour counting's "people like you" (the ranking model's fold-in is in
    test_model_lists.py)."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL": False}
    pipeline.recompute_sync()
    newcomer = get_user_model().objects.create_user("newcomer", password="x-long-password")
    horror = list(Item.objects.filter(genres__name="Horror").order_by("-rating_count")[:4])
    for item in horror[:3]:
        catalog_services.rating_upsert(user=newcomer, item=item, score=5)
    # Not in the published model yet: no user-user list, so no "people like you" evidence.
    assert store.live_model().user_neighbours([newcomer.pk])[newcomer.pk] is None
    assert reads.people_like_you(user=newcomer).source == reads.POPULAR

    catalog_services.rating_upsert(user=newcomer, item=horror[3], score=4.5)
    store.pending_add(newcomer.pk, horror[3].pk)
    changed = store.pending_take(newcomer.pk)
    pipeline.model_update_for_rating(user_id=newcomer.pk, item_ids=changed)

    lists = store.live_model().user_neighbours([newcomer.pk])[newcomer.pk]
    assert lists is not None and len(lists) > 0
    panel = reads.people_like_you(user=newcomer, limit=5)
    assert panel.source == reads.PERSONAL
    assert all("with your taste" in s.reason for s in panel.suggestions)
    rated = set(Rating.objects.filter(user=newcomer).values_list("item_id", flat=True))
    assert not rated & {s.item.pk for s in panel.suggestions}


def test_updates_patch_the_workers_model_instead_of_rebuilding_it(
    rec_redis, demo_catalogue, monkeypatch
):
    """After the first update loads the version, later ones never rebuild the whole
    snapshot's inputs (the cost that grew with every rating in the catalogue)."""
    from recommendations import build

    pipeline.recompute_sync()
    pipeline.model_state_clear()  # a fresh worker process
    user = get_user_model().objects.get(username="demo")
    items = list(Item.objects.exclude(ratings__user=user).order_by("-rating_count")[:3])
    catalog_services.rating_upsert(user=user, item=items[0], score=5)
    pipeline.model_update_for_rating(user_id=user.pk, item_ids=[items[0].pk])

    def rebuilt(*args, **kwargs):
        raise AssertionError("an update rebuilt the whole model's inputs")

    monkeypatch.setattr(build.ModelInputs, "from_snapshot", rebuilt)
    newcomer = get_user_model().objects.create_user("newcomer", password="x-long-password")
    fresh = Item.objects.create(title="Brand new")
    for item in [*items[1:], fresh]:
        catalog_services.rating_upsert(user=newcomer, item=item, score=4.5)
        pipeline.model_update_for_rating(user_id=newcomer.pk, item_ids=[item.pk])
    model = store.live_model()
    assert len(model.user_neighbours([newcomer.pk])[newcomer.pk]) > 0
    assert model.user_ratings([newcomer.pk])[newcomer.pk]["item"].tolist() == sorted(
        i.pk for i in [*items[1:], fresh]
    )
    also_liked = model.item_neighbours([fresh.pk])[fresh.pk]  # a new item gets its list
    assert set(also_liked["id"].tolist()) == {i.pk for i in items[1:]}


def test_inactive_and_deleted_items_never_reach_suggestions(rec_redis, demo_catalogue):
    from django.contrib.auth import get_user_model

    pipeline.recompute_sync()
    demo = get_user_model().objects.get(username="demo")
    first = reads.recommendations_for_user(user=demo, limit=6).suggestions
    assert len(first) == 6
    hidden_by_staff, deleted = first[0].item, first[1].item
    Item.objects.filter(pk=hidden_by_staff.pk).update(is_active=False)
    deleted_pk = deleted.pk
    Item.objects.filter(pk=deleted_pk).delete()  # the published model still names it
    again = reads.recommendations_for_user(user=demo, limit=6).suggestions
    shown = {s.item.pk for s in again}
    assert len(again) == 6
    assert hidden_by_staff.pk not in shown and deleted_pk not in shown


def test_exclude_rated_off_lets_rated_items_compete(rec_redis, demo_catalogue):
    from django.contrib.auth import get_user_model

    pipeline.recompute_sync()
    demo = get_user_model().objects.get(username="demo")
    rated = set(Rating.objects.filter(user=demo).values_list("item_id", flat=True))
    default = reads.recommendations_for_user(user=demo, limit=20)
    assert not rated & {s.item.pk for s in default.suggestions}
    everything = reads.recommendations_for_user(user=demo, limit=20, exclude_rated=False)
    assert rated & {s.item.pk for s in everything.suggestions}


def test_status_transitions_are_conditional_and_report_whether_they_won(db):
    Status = RecomputeRun.Status
    run = RecomputeRun.objects.create()
    assert not RecomputeRun.objects.transition(run.pk, Status.SUCCEEDED)  # never from queued
    assert RecomputeRun.objects.transition(run.pk, Status.RUNNING)
    assert not RecomputeRun.objects.transition(run.pk, Status.RUNNING)  # claimed once only
    assert not RecomputeRun.objects.transition(run.pk, Status.SKIPPED)
    assert RecomputeRun.objects.transition(run.pk, Status.SUCCEEDED)
    for final in (Status.FAILED, Status.RUNNING, Status.SUCCEEDED):  # nothing leaves the end
        assert not RecomputeRun.objects.transition(run.pk, final)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED


def test_a_run_delivered_twice_is_prepared_once_and_keeps_running(rec_redis, demo_catalogue):
    run = RecomputeRun.objects.create()
    assert pipeline.recompute_prepare(run_id=run.pk) is not None
    assert pipeline.recompute_prepare(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.RUNNING
    assert store.lock_holder() == f"run:{run.pk}"


def _built(run) -> str:
    """Prepare ``run`` and compute every shard, stopping short of publishing."""
    version, stages = pipeline.recompute_prepare(run_id=run.pk)
    for stage in stages:
        for kind, start, stop in stage:
            pipeline.recompute_shard(
                run_id=run.pk, version=version, kind=kind, start=start, stop=stop
            )
    return version


def test_a_run_declared_lost_never_publishes_afterwards(rec_redis, demo_catalogue):
    live = pipeline.recompute_sync().version
    slow = RecomputeRun.objects.create()
    slow_version = _built(slow)
    rec_redis.delete(store.key("lock"))  # its lock lapses (a long pause, a partition) ...
    successor = RecomputeRun.objects.create()
    assert pipeline.recompute_prepare(run_id=successor.pk) is not None  # ... declares it lost
    slow.refresh_from_db()
    assert slow.status == RecomputeRun.Status.FAILED

    with pytest.raises(pipeline.RunNotRunning):
        pipeline.recompute_publish(run_id=slow.pk)
    assert store.live_model().version == live != slow_version
    assert store.lock_holder() == f"run:{successor.pk}"  # the successor's lock is untouched
    successor.refresh_from_db()
    assert successor.status == RecomputeRun.Status.RUNNING


def test_a_run_whose_lock_lapsed_does_not_publish_even_if_still_marked_running(
    rec_redis, demo_catalogue
):
    live = pipeline.recompute_sync().version
    run = RecomputeRun.objects.create()
    _built(run)
    rec_redis.delete(store.key("lock"))
    store.lock_acquire("run:someone-else", 60)
    with pytest.raises(store.LockLost):
        pipeline.recompute_publish(run_id=run.pk)
    assert store.live_model().version == live
    assert store.lock_holder() == "run:someone-else"
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.FAILED and "no longer holds" in run.error


def test_a_shard_longer_than_the_lock_ttl_keeps_the_lock_by_its_heartbeat(
    rec_redis, demo_catalogue, settings, monkeypatch
):
    import time

    from recommendations import build

    run = RecomputeRun.objects.create()
    version, (plan, *_) = pipeline.recompute_prepare(run_id=run.pk)
    kind, start, stop = next(shard for shard in plan if shard[0] not in ("model", "fm"))
    rows = build.compute_rows(pipeline.model_state(version).inputs, kind, start, stop)

    def slow(*args, **kwargs):  # the same rows, after outlasting the TTL twice over
        time.sleep(2.5)
        return rows

    monkeypatch.setattr(build, "compute_rows", slow)
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "LOCK_TTL_SECONDS": 1}
    assert pipeline.recompute_shard(
        run_id=run.pk, version=version, kind=kind, start=start, stop=stop
    ) == len(rows)
    assert store.lock_holder() == f"run:{run.pk}"


def _mapped(array) -> bool:
    base = array
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    return isinstance(base, np.memmap) and not array.flags.writeable


def test_the_snapshot_is_chunked_in_redis_and_each_machine_maps_one_copy(
    rec_redis, demo_catalogue, settings, tmp_path
):
    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS,
        "SNAPSHOT_CHUNK_BYTES": 4096,
        "SNAPSHOT_CACHE_DIR": str(tmp_path / "cache"),
    }
    run = RecomputeRun.objects.create()
    version, _ = pipeline.recompute_prepare(run_id=run.pk)
    built = pipeline.model_state(version).arrays
    chunks = rec_redis.hgetall(store.version_key(version, "snapshot"))
    assert len(chunks) > 10 and max(len(v) for k, v in chunks.items() if k != b"layout") <= 4096

    pipeline.model_state_clear()  # another worker process on this machine
    state = pipeline.model_state(version)
    for name in ("indptr", "indices", "data", "user_ids", "item_ids"):
        assert _mapped(state.arrays[name]) and np.array_equal(state.arrays[name], built[name])
    assert _mapped(state.inputs.ranking.csr.data) and _mapped(state.inputs.matrix.csc.indices)
    assert _mapped(state.patchable().e)

    rec_redis.delete(store.version_key(version, "snapshot"))
    pipeline.model_state_clear()  # a third process: the machine's copy serves it
    assert np.array_equal(pipeline.model_state(version).arrays["data"], built["data"])


def test_with_a_snapshot_dir_every_process_maps_the_shared_files(
    rec_redis, demo_catalogue, settings, tmp_path
):
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "SNAPSHOT_DIR": str(tmp_path)}
    run = pipeline.recompute_sync()
    assert not rec_redis.exists(store.version_key(run.version, "snapshot"))
    pipeline.model_state_clear()
    state = pipeline.model_state(run.version)
    assert _mapped(state.arrays["indices"]) and _mapped(state.inputs.baselines.user_bias_)
    assert str(tmp_path) in str(state.arrays["indices"].filename)


def test_a_ratings_update_is_queued_at_once_without_a_countdown(
    rec_redis, demo_catalogue, settings, django_capture_on_commit_callbacks
):
    """No countdown by default: a countdown held every update in the worker's timer for
    that long (0.2 s) before it could run. A rating made while the update waits in the
    queue joins it (one task)."""
    import json

    from recommendations.conf import DEFAULTS

    assert DEFAULTS["DEBOUNCE_SECONDS"] == 0
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "DEBOUNCE_SECONDS": 0}
    user = get_user_model().objects.get(username="demo")
    items = list(Item.objects.exclude(ratings__user=user).order_by("-rating_count")[:2])
    rec_redis.delete("celery")
    for item in items:
        with django_capture_on_commit_callbacks(execute=True):
            catalog_services.rating_upsert(user=user, item=item, score=4)
    queued = [json.loads(m) for m in rec_redis.lrange("celery", 0, -1)]
    updates = [m for m in queued if m["headers"]["task"].endswith("model_update")]
    assert len(updates) == 1 and updates[0]["headers"]["eta"] is None
    assert store.pending_take(user.pk) == sorted(i.pk for i in items)


def test_updates_of_one_user_on_two_worker_processes_both_write_the_users_true_rows(
    rec_redis, demo_catalogue
):
    """Each worker process patches its own copy of the model. Consecutive ratings of one
    user handled by different processes still write that user's rows from all their
    ratings (each update reads them from the database), equal to what one model holding
    every one of those ratings computes."""
    from recommendations import build
    from recommendations.incremental import PatchableModel

    version = pipeline.recompute_sync().version
    user = get_user_model().objects.get(username="demo")
    items = list(Item.objects.exclude(ratings__user=user).order_by("-rating_count")[:3])
    process_a = pipeline.model_state(version)  # the one that took the snapshot
    pipeline.model_state_clear()
    process_b = pipeline.model_state(version)  # another process, loaded from the snapshot

    def stored(kind, row_id):
        return rec_redis.hget(store.version_key(version, kind), row_id)

    for item, process in zip(items, [process_a, process_b, process_a], strict=True):
        pipeline._model_state_set(process)
        catalog_services.rating_upsert(user=user, item=item, score=5)
        pipeline.model_update_for_rating(user_id=user.pk, item_ids=[item.pk])

        rated, scores = reads._live_ratings(user.pk)
        assert stored("ur", user.pk) == store.encode_ratings(rated, scores)
        reference = PatchableModel.from_inputs(process.inputs)  # one model, every rating
        u = reference.set_user_ratings(user.pk, rated, scores)
        assert stored("uu", user.pk) == build.encode_list(*reference.user_neighbours(u, 50))
        i = int(reference.item_indices([item.pk])[0])
        ii, ip = reference.item_rows(i, k_cosine=20, k_pearson=200, shrinkage=100.0)
        assert stored("ii", item.pk) == build.encode_list(*ii)
        assert stored("ip", item.pk) == build.encode_list(*ip)
        # and the stored list is current (its stamp matches), so the site serves it
        stamp, _ = store.live_model().ready_list(user.pk)
        assert stamp == catalog_selectors.user_taste_stamp(user_id=user.pk)


def test_each_shard_logs_its_rows_wall_cpu_seconds_and_memory(rec_redis, demo_catalogue, caplog):
    """One INFO line per shard (kind, start, stop, rows, wall s, CPU s, RSS, peak RSS), so
    a recompute measured on a loaded machine still gives each stage's CPU cost."""
    import logging
    import re

    with caplog.at_level(logging.INFO, logger="recommendations.pipeline"):
        run = pipeline.recompute_sync()
    assert run.status == RecomputeRun.Status.SUCCEEDED, run.error
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("recompute shard")]
    assert len(lines) == run.shards_total
    fields = [dict(re.findall(r"(\w+)=(\S+)", line)) for line in lines]
    assert {"model", "fm", "ready"} <= {f["kind"] for f in fields}
    for f in fields:
        assert set(f) == {
            "kind", "start", "stop", "rows", "wall_s", "cpu_s", "rss_start_mib",
            "peak_before_mib", "peak_rss_mib", "rss_end_mib",
        }  # fmt: skip
        assert float(f["cpu_s"]) >= 0 and float(f["wall_s"]) >= 0 and int(f["rows"]) >= 0
        assert int(f["peak_rss_mib"]) >= int(f["peak_before_mib"]) > 0
    # the models' fits do work in this process: their CPU time is counted
    assert sum(float(f["cpu_s"]) for f in fields if f["kind"] in ("model", "fm")) > 0


def test_the_prepare_step_drops_the_live_state_and_keeps_the_new_version_mapped(
    rec_redis, demo_catalogue
):
    """A worker process holds the live version's update state (warmed as it started); the
    prepare step drops it before reading the ratings, and leaves the process the new
    version mapped from this machine's copy (not the arrays it built), its derived arrays
    saved beside it for the other processes."""
    live = pipeline.recompute_sync().version
    assert pipeline.model_update_warm() == live
    warmed = pipeline.model_state(live)
    run = RecomputeRun.objects.create(trigger="test")
    version, _ = pipeline.recompute_prepare(run_id=run.pk)
    state = pipeline.model_state(version)
    assert state is not warmed and state.version == version
    assert all(isinstance(a, np.memmap) for a in state.arrays.values())
    folder = store._snapshot_folder(version)
    assert {p.name for p in folder.glob("derived-*.npy")} >= {"derived-bm25.npy"}
    # The copy holds what Redis holds.
    pipeline.model_state_clear()
    store.snapshot_drop(version)
    from_redis = store.snapshot_get(version)
    assert from_redis.keys() == state.arrays.keys()
    for name, array in from_redis.items():
        assert np.array_equal(array, state.arrays[name]), name


def test_an_update_after_the_state_is_released_reloads_it_and_writes_the_same_rows(
    rec_redis, demo_catalogue
):
    """A heavy step releases the process's state (``model_state_release``); the next
    update loads the version again and writes the rows a model holding every rating
    computes."""
    from recommendations import build
    from recommendations.incremental import PatchableModel

    version = pipeline.recompute_sync().version
    user = get_user_model().objects.get(username="demo")
    first, second = Item.objects.exclude(ratings__user=user).order_by("-rating_count")[:2]
    catalog_services.rating_upsert(user=user, item=first, score=5)
    pipeline.model_update_for_rating(user_id=user.pk, item_ids=[first.pk])
    before = pipeline.model_state(version)

    pipeline.model_state_release()
    assert pipeline._state is None
    catalog_services.rating_upsert(user=user, item=second, score=2)
    pipeline.model_update_for_rating(user_id=user.pk, item_ids=[second.pk])
    assert pipeline.model_state(version) is not before

    rated, scores = reads._live_ratings(user.pk)
    reference = PatchableModel.from_inputs(before.inputs)  # the snapshot, then every rating
    u = reference.set_user_ratings(user.pk, rated, scores)
    stored = store.live_model()
    assert rec_redis.hget(store.version_key(version, "uu"), user.pk) == build.encode_list(
        *reference.user_neighbours(u, 50)
    )
    i = int(reference.item_indices([second.pk])[0])
    ii, ip = reference.item_rows(i, k_cosine=20, k_pearson=200, shrinkage=100.0)
    assert rec_redis.hget(store.version_key(version, "ii"), second.pk) == build.encode_list(*ii)
    assert rec_redis.hget(store.version_key(version, "ip"), second.pk) == build.encode_list(*ip)
    assert stored.ready_list(user.pk)[0] == catalog_selectors.user_taste_stamp(user_id=user.pk)


def test_a_state_reloaded_after_a_release_maps_the_saved_arrays_and_equals_the_old_build(
    rec_redis, demo_catalogue
):
    """The prepare step saves the update state's arrays over all ratings beside the
    snapshot; a process whose state was released maps them when it loads the state again
    (no pass over the ratings), and holds what building the state in memory from the
    snapshot held (the build before this change: its own passes over the ratings)."""
    from recommendations import build
    from recommendations.engine.similarity import _csc_permutation

    version = pipeline.recompute_sync().version
    folder = store._snapshot_folder(version)
    saved = {p.name for p in folder.glob("derived-*.npy")}
    names = ("residuals", "bm25_by_item", "user_sq", "item_sq")
    assert {f"derived-{n}.npy" for n in names} <= saved
    pipeline.model_state_release()
    reloaded = pipeline.model_state(version).patchable()
    assert {p.name for p in folder.glob("derived-*.npy")} == saved  # nothing made now
    assert isinstance(reloaded.e, np.memmap)
    assert isinstance(reloaded.w_by_item.data, np.memmap)

    # The old build: every array from the snapshot, in memory, in one pass each.
    inputs = build.ModelInputs.from_snapshot(store.snapshot_get(version))
    m, w, b = inputs.matrix, inputs.ranking.csr.data, inputs.baselines
    rows = np.repeat(np.arange(m.n_users), m.user_counts)
    user_sq = np.bincount(rows, weights=w**2, minlength=m.n_users)
    item_sq = np.bincount(m.csr.indices, weights=w**2, minlength=m.n_items)
    assert np.array_equal(reloaded.e, b.residuals(m))
    assert np.array_equal(reloaded.w_by_item.data, w[_csc_permutation(m)])
    assert np.array_equal(reloaded.user_sq, user_sq)
    assert np.array_equal(reloaded.item_sq, item_sq)
    assert np.array_equal(reloaded.idf, np.log(m.n_users) - np.log1p(m.item_counts.astype(float)))
    assert reloaded.avg_len == float(m.user_counts.mean())
    assert np.array_equal(reloaded.inv_user[user_sq > 0], 1 / np.sqrt(user_sq[user_sq > 0]))
    # and it computes the rows the old build's model computes, after the same change
    user = get_user_model().objects.get(username="demo")
    item = Item.objects.exclude(ratings__user=user).order_by("-rating_count").first()
    catalog_services.rating_upsert(user=user, item=item, score=4)
    rated, scores = reads._live_ratings(user.pk)
    old = PatchableModel(m, inputs.ranking, b)
    for model in (reloaded, old):
        model.set_user_ratings(user.pk, rated, scores)
    u = old.user_index(user.pk)
    assert build.encode_list(*reloaded.user_neighbours(u, 50)) == build.encode_list(
        *old.user_neighbours(u, 50)
    )
    i = int(old.item_indices([item.pk])[0])
    rows_of = lambda model: model.item_rows(i, k_cosine=20, k_pearson=200, shrinkage=100.0)  # noqa: E731
    for new_rows, old_rows in zip(rows_of(reloaded), rows_of(old), strict=True):
        assert build.encode_list(*new_rows) == build.encode_list(*old_rows)


def test_a_warm_up_overtaken_by_a_release_keeps_nothing(rec_redis, demo_catalogue):
    """The warm-up thread (``tasks._warm_update_path``) may still be loading when a heavy
    step starts in its process and releases the state: it then drops what it loaded
    rather than leaving it under the step's memory."""
    import threading

    live = pipeline.recompute_sync().version
    pipeline.model_state_clear()
    result = {}
    with pipeline._state_lock:  # the warm-up blocks in its load...
        warm = threading.Thread(target=lambda: result.update(v=pipeline.model_update_warm()))
        warm.start()
        warm.join(2)
        assert warm.is_alive()
        pipeline.model_state_release()  # ...when the step releases (without waiting)
    warm.join(60)
    assert result == {"v": None}
    assert pipeline._state is None
    # Not overtaken, it keeps the live version's state.
    assert pipeline.model_update_warm() == live
    assert pipeline._state.version == live and pipeline._state._patchable is not None


def test_a_model_fit_releases_the_process_state_and_fits_the_mapped_snapshot(
    rec_redis, demo_catalogue
):
    """The fm and model tasks, the recompute's largest in memory, do not stack their fit
    on the state of the process (they read the snapshot's arrays alone): it is released
    first, and the parts stored are those fitted on the snapshot held in memory."""
    from recommendations import rating_model
    from recommendations.item_info import catalogue_item_info

    pipeline.recompute_sync()  # a live version, whose chain the fm task starts from
    run = RecomputeRun.objects.create(trigger="test")
    version, _ = pipeline.recompute_prepare(run_id=run.pk)
    arrays = {name: np.array(a) for name, a in pipeline.model_state(version).arrays.items()}
    pipeline.recompute_shard(run_id=run.pk, version=version, kind="fm", start=0, stop=1)
    assert pipeline._state is None

    stored = store.snapshot_get(version, part="fm")
    info = catalogue_item_info(active_only=False)
    expected = rating_model.fit_parts(arrays, info=info, warm=rating_model._live_parts())
    assert stored.keys() == expected.keys()
    for name in expected.keys() - {"config"}:
        assert np.array_equal(stored[name], expected[name]), name
