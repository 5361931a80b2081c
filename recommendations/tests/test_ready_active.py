"""Stored lists are a cache of the live computation: the recompute stores them only for
recently active users; anyone else's list is computed on their first read and kept, in
Redis, for that model version, exactly as the stage would have stored it."""

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from catalog import services as catalog_services
from catalog.models import Item, Rating
from recommendations import build, model_scoring, pipeline, ranking, reads, store
from recommendations.conf import get as option

pytestmark = pytest.mark.django_db


def _eligible_users():
    needed = model_scoring.min_ratings(model_scoring.enabled())
    users = get_user_model().objects.filter(ratings__isnull=False).distinct().order_by("pk")
    return [u for u in users if u.ratings.count() >= needed]


def _ready_ids(version: str) -> set[int]:
    return {int(k) for k in store.client().hkeys(store.version_key(version, "ready"))}


@pytest.fixture
def half_idle(rec_redis, demo_catalogue, settings):
    """With the default READY_ACTIVE_DAYS (the test settings store every list), every
    other eligible user last rated 60 days before that window, the rest within it;
    returns (active users, idle users) after a recompute."""
    from recommendations.conf import DEFAULTS

    days = DEFAULTS["READY_ACTIVE_DAYS"]
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "READY_ACTIVE_DAYS": days}
    users = _eligible_users()
    idle, active = users[::2], users[1::2]
    now = timezone.now()
    # update(): no auto_now
    Rating.objects.filter(user__in=idle).update(updated=now - timedelta(days=days + 60))
    Rating.objects.filter(user__in=active).update(updated=now - timedelta(days=1))
    run = pipeline.recompute_sync()
    assert run.status == run.Status.SUCCEEDED, run.error
    return active, idle


def test_the_stage_stores_lists_only_for_recently_active_users(half_idle):
    active, idle = half_idle
    model = store.live_model()
    assert _ready_ids(model.version) == {u.pk for u in active}
    assert model.meta["n_ready_lists"] == len(active) > 20
    # A recent login counts as activity too.
    get_user_model().objects.filter(pk=idle[0].pk).update(last_login=timezone.now())
    assert idle[0].pk in build.ready_users(all_users=[]).tolist()


def test_at_most_the_most_recently_active_users_get_stored_lists(half_idle, settings):
    active, _ = half_idle
    now = timezone.now()
    for age, user in enumerate(active[:5]):  # the five newest, in this order
        Rating.objects.filter(user=user).update(updated=now - timedelta(hours=1 + age))
    Rating.objects.filter(user__in=active[5:]).update(updated=now - timedelta(days=2))
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "READY_MAX_USERS": 3}
    assert build.ready_users(all_users=[]).tolist() == [u.pk for u in active[:3]]
    pipeline.recompute_sync()
    assert _ready_ids(store.live_model().version) == {u.pk for u in active[:3]}


def _stage_list(version: str, user) -> bytes:
    """What the recompute's stage stores for ``user`` from ``version``, selection aside."""
    arrays = build.snapshot_arrays(build.snapshot_ratings(), build.snapshot_list_context())
    inputs = build.ModelInputs.from_snapshot(arrays)
    lists = replace(build.ListInputs.load(version, inputs, arrays), ready=None)
    u = int(inputs.matrix.user_indices([user.pk])[0])
    parts = model_scoring.parts_for(version)
    return build.compute_ready(inputs, lists, u, u + 1, model=parts)[user.pk]


def test_an_idle_users_first_read_computes_and_keeps_the_list_the_stage_would_store(half_idle):
    _, idle = half_idle
    user, other = idle[0], idle[1]
    model = store.live_model()
    assert model.ready_list(user.pk) is None
    first = reads.recommendations_for_user(user=user, limit=10, explain=True)
    assert first.source == reads.PERSONAL and len(first.suggestions) == 10
    kept = store.client().hget(store.version_key(model.version, "ready"), user.pk)
    assert kept == _stage_list(model.version, user)
    # Nobody else's list was written by that read.
    assert _ready_ids(model.version) - {user.pk} == {u.pk for u in half_idle[0]}
    assert other.pk not in _ready_ids(model.version)
    # The second read is a stored read, the same answer.
    second = reads._from_ready_list(model, user.pk, 10, True)
    assert second is not None
    assert [(s.item.pk, s.score, s.reason) for s in second.suggestions] == [
        (s.item.pk, s.score, s.reason) for s in first.suggestions
    ]
    # And having read counts as activity: the next recompute stores the list itself.
    assert user.pk in store.readers_since(0)
    pipeline.recompute_sync()
    assert user.pk in _ready_ids(store.live_model().version)


def test_a_first_read_leaves_out_hidden_and_inactive_items_as_the_stage_does(half_idle):
    """A first read reads the user's hidden items and the inactive ones in one query:
    neither is suggested, the rest keep their order, and the list kept is the stage's."""
    from catalog.models import HiddenItem

    user = half_idle[1][2]
    model = store.live_model()
    before = [s.item.pk for s in reads.recommendations_for_user(user=user, limit=8).suggestions]
    HiddenItem.objects.create(user=user, item_id=before[0])  # no signal: no refresh queued
    Item.objects.filter(pk=before[2]).update(is_active=False)
    store.client().hdel(store.version_key(model.version, "ready"), user.pk)
    after = [s.item.pk for s in reads.recommendations_for_user(user=user, limit=8).suggestions]
    assert after[:5] == [before[1], *before[3:7]] and len(after) == 8
    kept = store.client().hget(store.version_key(model.version, "ready"), user.pk)
    assert kept == _stage_list(model.version, user)


def test_a_rating_makes_a_list_kept_on_read_stale_and_the_next_read_keeps_a_new_one(half_idle):
    user = half_idle[1][0]
    model = store.live_model()
    top = reads.recommendations_for_user(user=user, limit=5).suggestions[0].item.pk
    assert reads._from_ready_list(model, user.pk, 5) is not None
    catalog_services.rating_upsert(user=user, item=Item.objects.get(pk=top), score=1)
    assert reads._from_ready_list(model, user.pk, 5) is None  # stale: its stamp moved
    after = reads.recommendations_for_user(user=user, limit=5)
    assert top not in [s.item.pk for s in after.suggestions]
    again = reads._from_ready_list(model, user.pk, 5)
    assert again is not None
    assert [s.item.pk for s in again.suggestions] == [s.item.pk for s in after.suggestions]


def test_a_new_version_ignores_a_list_kept_for_the_old_one(half_idle):
    user = half_idle[1][0]
    old = store.live_model()
    reads.recommendations_for_user(user=user, limit=5)
    raw = store.client().hget(store.version_key(old.version, "ready"), user.pk)
    assert raw is not None
    # Idle again: the readers set would otherwise get them a list in the next stage.
    store.client().delete(store.key("readers"))
    pipeline.recompute_sync()
    new = store.live_model()
    assert new.version != old.version
    assert new.ready_list(user.pk) is None
    # A reader still holding the old version cannot write into it (its keys expire).
    assert store.ready_put(old.version, user.pk, raw) is False
    assert store.client().ttl(store.version_key(old.version, "ready")) > 0
    reads.recommendations_for_user(user=user, limit=5)
    assert new.ready_list(user.pk) is not None


def test_requests_the_stored_list_does_not_answer_keep_nothing(half_idle):
    user = half_idle[1][0]
    version = store.live_model().version
    genre = user.ratings.first().item.genres.first().slug
    reads.recommendations_for_user(user=user, genre=genre, limit=5)
    reads.recommendations_for_user(user=user, limit=option("READY_LIST_LENGTH"))
    reads.recommendations_for_user(user=user, limit=5, exclude_rated=False)
    assert user.pk not in _ready_ids(version)
    assert np.isin([user.pk], list(store.readers_since(0))).sum() == 0


def test_a_first_reads_neighbour_evidence_is_the_sum_a_ratings_matrix_gives(half_idle):
    """A first read sums the neighbours' ratings per model column straight from their
    stored rows (``ranking.model_slice_from_store``), without the local ratings matrix the
    slice used to build for it: the same float64 counts and sums, bit for bit, for every
    user, also when a neighbour's stored ratings are missing."""
    model = store.live_model()
    parts = model_scoring.parts_for(model.version)

    def both(user):
        rated, scores = reads._live_ratings(user.pk)
        fast = ranking.model_slice_from_store(model, parts, user.pk, rated, scores)
        full = ranking.slice_from_store(model, user.pk, rated, scores, item_part=False)
        counts, sums = ranking._neighbour_evidence(replace(full, model=fast.model))
        return fast.evidence, (counts, sums)

    users = _eligible_users()
    for user in users:
        (fast_counts, fast_sums), (counts, sums) = both(user)
        assert counts.sum() > 0, user  # every demo user has neighbours who rated something
        assert np.array_equal(fast_counts, counts) and np.array_equal(fast_sums, sums), user

    user = users[0]
    neighbour = int(model.user_neighbours([user.pk])[user.pk]["id"][0])
    before = both(user)[0]
    store.client().hdel(store.version_key(model.version, "ur"), neighbour)
    (fast_counts, fast_sums), (counts, sums) = both(user)
    assert fast_counts.sum() < before[0].sum()
    assert np.array_equal(fast_counts, counts) and np.array_equal(fast_sums, sums)
