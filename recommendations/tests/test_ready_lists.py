"""Stored recommendation lists: computed with the model, served while the user's taste
stamp matches, and always the same answer the live computation gives."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model

from catalog import services as catalog_services
from catalog.importers.loader import ratings_bulk_upsert
from catalog.models import Item, Rating
from recommendations import pipeline, reads, store
from recommendations.conf import get as option

pytestmark = pytest.mark.django_db


def shown(result):
    return [
        (s.item.pk, s.score, s.reason, [b.pk for b in s.because_items]) for s in result.suggestions
    ]


def live(user, limit=10, **kwargs):
    """The live computation, bypassing the stored list."""
    return reads._personal(
        user=user, limit=limit, genre="", user_weight=option("USER_WEIGHT"), **kwargs
    )


def stored(user, limit=10, explain=True):
    """The stored list, or None when it would not be served."""
    return reads._from_ready_list(store.live_model(), user.pk, limit, explain)


@pytest.fixture
def published(rec_redis, demo_catalogue):
    pipeline.recompute_sync()
    return get_user_model().objects.get(username="demo")


def test_every_stored_list_is_what_the_live_computation_gives(published):
    model = store.live_model()
    users = get_user_model().objects.filter(ratings__isnull=False).distinct()
    eligible = [u for u in users if u.ratings.count() >= option("MIN_RATINGS_FOR_PERSONAL")]
    assert model.meta["n_ready_lists"] == len(eligible) > 100
    for user in eligible:
        for limit in (1, 10, 25):
            from_store = stored(user, limit)
            assert from_store is not None, user
            assert shown(from_store) == shown(live(user, limit, explain=True)), user
            assert len(from_store.suggestions) == limit


def test_without_explain_the_evidence_is_left_out(published):
    result = reads.recommendations_for_user(user=published, limit=5)
    assert result.source == reads.PERSONAL
    assert all(s.because_items == [] for s in result.suggestions)
    explained = reads.recommendations_for_user(user=published, limit=5, explain=True)
    assert [s.item.pk for s in explained.suggestions] == [s.item.pk for s in result.suggestions]
    assert any(s.because_items for s in explained.suggestions)


def test_a_new_rating_makes_the_list_stale_until_the_update_redoes_it(published):
    first = Item.objects.get(
        pk=reads.recommendations_for_user(user=published, limit=5).suggestions[0].item.pk
    )
    catalog_services.rating_upsert(user=published, item=first, score=2)
    assert stored(published) is None  # stale: served live meanwhile, without the rated item
    after = reads.recommendations_for_user(user=published, limit=5)
    assert after.source == reads.PERSONAL
    assert first.pk not in {s.item.pk for s in after.suggestions}

    pipeline.model_update_for_rating(user_id=published.pk, item_ids=[first.pk])
    refreshed = stored(published)
    assert refreshed is not None
    assert shown(refreshed) == shown(live(published, explain=True))
    assert first.pk not in {s.item.pk for s in refreshed.suggestions}


def _broker_lists() -> list[str]:
    """The broker's lists: kombu's Redis transport keeps one per priority ("celery" for 0,
    then "celery\x06\x16<n>"), and list refreshes and deferred item rows are queued at
    lower priorities than the updates."""
    from recommendations.tasks import ITEM_ROWS_PRIORITY, LIST_PRIORITY

    return ["celery"] + [f"celery\x06\x16{p}" for p in (ITEM_ROWS_PRIORITY, LIST_PRIORITY)]


def _queued(client, task: str) -> list[list]:
    """The args of each ``task`` message waiting in the broker's queue, any priority."""
    import json

    messages = [json.loads(m) for name in _broker_lists() for m in client.lrange(name, 0, -1)]
    return [m["headers"]["argsrepr"] for m in messages if m["headers"]["task"].endswith(task)]


def test_the_update_task_writes_rows_at_once_and_one_refresh_follows_several_ratings(
    published, rec_redis
):
    """The row update is one task, the stored list's refresh another: the rows (what the
    panels read) wait for no ranking, and ratings made while the refresh waits share it.
    Until it runs the list is stale, and reads rank live from the new rows."""
    from recommendations import tasks

    model = store.live_model()
    items = list(Item.objects.exclude(ratings__user=published).order_by("-rating_count")[:3])
    uu_before = model.user_neighbours([published.pk])[published.pk]
    rec_redis.delete(*_broker_lists())
    for item in items[:2]:
        catalog_services.rating_upsert(user=published, item=item, score=1)
        store.pending_add(published.pk, item.pk)
        assert tasks.model_update(published.pk) == model.version
        assert stored(published) is None  # its stamp moved; the list is not redone yet
    uu_after = model.user_neighbours([published.pk])[published.pk]
    assert uu_after.tobytes() != uu_before.tobytes()  # the rows were written at once
    assert _queued(rec_redis, "ready_list_refresh") == [f"({published.pk},)"]  # one, not two
    served = reads.recommendations_for_user(user=published, limit=10)
    assert shown(served) == shown(live(published))

    rec_redis.delete(*_broker_lists())
    assert tasks.ready_list_refresh(published.pk) == model.version
    refreshed = stored(published)
    assert refreshed is not None and shown(refreshed) == shown(live(published, explain=True))
    # The next rating queues the next refresh.
    catalog_services.rating_upsert(user=published, item=items[2], score=5)
    store.pending_add(published.pk, items[2].pk)
    tasks.model_update(published.pk)
    assert _queued(rec_redis, "ready_list_refresh") == [f"({published.pk},)"]


def test_a_deleted_rating_or_an_import_makes_the_list_stale(published):
    rating = Rating.objects.filter(user=published).order_by("updated").first()
    catalog_services.rating_delete(user=published, item=rating.item)
    assert stored(published) is None
    pipeline.model_update_for_rating(user_id=published.pk, item_ids=[rating.item_id])
    assert stored(published) is not None

    # An import may carry an old time: the stamp still moves when a score does.
    oldest = Rating.objects.filter(user=published).order_by("updated").first()
    newer_than_it = datetime.fromtimestamp(oldest.updated.timestamp() + 1, tz=UTC)
    ratings_bulk_upsert({(published.pk, oldest.item_id): (newer_than_it, 0.5)})
    assert stored(published) is None


def test_hiding_an_item_refreshes_the_stored_list(published, django_capture_on_commit_callbacks):
    first = Item.objects.get(
        pk=reads.recommendations_for_user(user=published, limit=5).suggestions[0].item.pk
    )
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.item_hide(user=published, item=first)
    assert stored(published) is None
    assert first.pk not in {
        s.item.pk for s in reads.recommendations_for_user(user=published).suggestions
    }
    # The receiver queued the update (debounced); run it as the worker would.
    assert store.pending_take(published.pk) == []
    pipeline.model_update_for_rating(user_id=published.pk, item_ids=[])
    refreshed = stored(published)
    assert refreshed is not None and first.pk not in {s.item.pk for s in refreshed.suggestions}

    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.item_unhide(user=published, item=first)
    assert stored(published) is None


def test_an_item_deactivated_since_is_skipped_and_the_list_still_served(published):
    before = stored(published, limit=6)
    gone = before.suggestions[1].item
    Item.objects.filter(pk=gone.pk).update(is_active=False)
    after = stored(published, limit=6)
    assert after is not None and len(after.suggestions) == 6
    assert [s.item.pk for s in after.suggestions] == [
        s.item.pk for s in before.suggestions if s.item.pk != gone.pk
    ] + [after.suggestions[-1].item.pk]
    assert gone.pk not in {s.item.pk for s in after.suggestions}


def test_requests_the_stored_list_cannot_answer_are_computed_live(published):
    length = option("READY_LIST_LENGTH")
    assert stored(published, limit=length + 1) is None
    longer = reads.recommendations_for_user(user=published, limit=length + 1)
    assert len(longer.suggestions) == length + 1
    assert shown(longer) == shown(live(published, length + 1))

    genre = published.ratings.first().item.genres.first().slug
    by_genre = reads.recommendations_for_user(user=published, genre=genre, limit=5)
    assert by_genre.source == reads.PERSONAL
    assert all(genre in [g.slug for g in s.item.card_genres()] for s in by_genre.suggestions)


def test_a_user_below_the_threshold_has_no_stored_list(published, settings):
    """Without the ranking model the threshold is MIN_RATINGS_FOR_PERSONAL; with it one
    rating is enough (recommendations/tests/test_model_lists.py)."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL": False}
    newcomer = get_user_model().objects.create_user("newcomer", password="x")
    for item in Item.objects.order_by("-rating_count")[:2]:
        catalog_services.rating_upsert(user=newcomer, item=item, score=4)
    pipeline.model_update_for_rating(user_id=newcomer.pk, item_ids=[])
    assert store.live_model().ready_list(newcomer.pk) is None
    # Served live: a first list from content, like the two items rated 4 (cold_start).
    assert reads.recommendations_for_user(user=newcomer).source == reads.CONTENT


def test_the_update_and_refresh_tasks_only_read_the_database(published, rec_redis):
    """Neither task writes (nor opens a transaction), so neither can hold SQLite's write
    lock while the site saves a rating (a slow "Saving…" was once blamed on the worker)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recommendations import tasks

    item = Item.objects.exclude(ratings__user=published).order_by("-rating_count").first()
    catalog_services.rating_upsert(user=published, item=item, score=4)
    store.pending_add(published.pk, item.pk)
    with CaptureQueriesContext(connection) as queries:
        tasks.model_update(published.pk)
        tasks.ready_list_refresh(published.pk)
    assert stored(published) is not None  # both ran in full
    statements = [q["sql"].lstrip().split(None, 1)[0].upper() for q in queries.captured_queries]
    assert statements and set(statements) == {"SELECT"}, statements


def test_popular_items_rows_are_deferred_to_one_task_that_writes_the_true_rows(
    published, rec_redis, settings
):
    """An update leaves the rows of popular items whose sums its process keeps none of (a
    pass over all their raters' rows) to one queued task for all of them. That task may
    run in another process: it patches in the raters' current ratings first, so the rows
    equal those of a model holding every rating; it keeps the sums, so the next rating of
    such an item in that process writes its rows at once."""
    from recommendations import build, tasks
    from recommendations.incremental import PatchableModel

    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "UPDATE_KEPT_SUMS_MIN_RATERS": 1}
    version = store.live_model().version
    pipeline.model_state_clear()  # a process holding no kept sums
    items = list(Item.objects.exclude(ratings__user=published).order_by("-rating_count")[:2])

    def row(kind, row_id):
        return rec_redis.hget(store.version_key(version, kind), row_id)

    before = {item.pk: row("ii", item.pk) for item in items}
    uu_before = row("uu", published.pk)
    rec_redis.delete(*_broker_lists())
    for item in items:
        catalog_services.rating_upsert(user=published, item=item, score=5)
        store.pending_add(published.pk, item.pk)
        tasks.model_update(published.pk)
    assert row("uu", published.pk) != uu_before  # the user's rows at once
    assert {item.pk: row("ii", item.pk) for item in items} == before  # the items' deferred
    assert len(_queued(rec_redis, "item_rows_refresh")) == 1  # one task for both

    pipeline.model_state_clear()  # the refresh runs in another process
    assert tasks.item_rows_refresh() == version
    reference = PatchableModel.from_inputs(pipeline.model_state(version).inputs)
    reference.set_user_ratings(published.pk, *reads._live_ratings(published.pk))
    for item in items:
        i = int(reference.item_indices([item.pk])[0])
        ii, ip = reference.item_rows(i, k_cosine=20, k_pearson=200, shrinkage=100.0)
        assert row("ii", item.pk) == build.encode_list(*ii) != before[item.pk]
        assert row("ip", item.pk) == build.encode_list(*ip)

    # Kept now in this process: the next rating of one writes its rows in the update.
    rec_redis.delete(*_broker_lists())
    catalog_services.rating_upsert(user=published, item=items[0], score=1)
    store.pending_add(published.pk, items[0].pk)
    written = row("ii", items[0].pk)
    tasks.model_update(published.pk)
    assert row("ii", items[0].pk) != written
    assert _queued(rec_redis, "item_rows_refresh") == []
