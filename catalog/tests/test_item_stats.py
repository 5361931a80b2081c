"""Items' rating counts and sums stay what their ratings add up to through every write
that removes or changes ratings outside the rating service (account deletion, the
admin's edits), each moving them by the rows it changes, never by recounting an item's
ratings (there is no index of the ratings by item: a recount per item scans the table)."""

import random
import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.services import account_delete
from catalog import services
from catalog.models import Item, Rating
from catalog.tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db
RATING = Rating._meta.db_table


def _random_ratings(seed, *, users=12, items=10, n=150):
    """Ratings through the site's service (which keeps the stats), random pairs and scores."""
    rng = random.Random(seed)
    people = [UserFactory() for _ in range(users)]
    things = [ItemFactory() for _ in range(items)]
    for _ in range(n):
        services.rating_upsert(
            user=rng.choice(people), item=rng.choice(things), score=rng.randrange(1, 11) / 2
        )
    return rng, people, things


def _assert_stats_are_a_recount():
    """Every item's stored count and sum equal its ratings' (scores are halves: exact)."""
    recount = {}
    for item_id, score in Rating.objects.values_list("item_id", "score"):
        count, total = recount.get(item_id, (0, 0.0))
        recount[item_id] = (count + 1, total + score)
    stored = {
        pk: (count, total)
        for pk, count, total in Item.objects.values_list("pk", "rating_count", "rating_sum")
    }
    assert stored == {pk: recount.get(pk, (0, 0.0)) for pk in stored}


def _ratings_read_by_item(queries) -> list[str]:
    """The statements that look ratings up by item alone (a filter or a join on item_id
    without the user's: the unique (user, item) index serves those)."""

    def on(column):
        return re.compile(rf'"?{column}"?\s*(=|IN\b)', re.IGNORECASE)

    by_item, by_user = on("item_id"), on("user_id")
    found = []
    for query in queries:
        where = query["sql"].split(" WHERE ", 1)[-1]
        if RATING in query["sql"] and by_item.search(where) and not by_user.search(where):
            found.append(query["sql"])
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_account_deletion_moves_its_items_stats_by_its_ratings_and_never_recounts(seed):
    """Deleting accounts (random ratings, overlapping items) leaves every item's stats
    equal to a full recount, and the deletion reads no item's ratings: it subtracts the
    user's own rows, grouped by item."""
    rng, people, _ = _random_ratings(seed)
    for user in rng.sample(people, 4):
        had = Rating.objects.filter(user=user).count()
        with CaptureQueriesContext(connection) as seen:
            assert account_delete(user=user) == had
        assert _ratings_read_by_item(seen.captured_queries) == []
        assert not get_user_model().objects.filter(pk=user.pk).exists()
        _assert_stats_are_a_recount()


@pytest.mark.parametrize("seed", [1, 2])
def test_the_admins_rating_edits_move_item_stats_by_the_rows_they_change(client, seed):
    """Through the admin: scores changed, ratings moved to another item, added, deleted
    one by one and by the bulk action (random data). After each, every item's stats equal
    a full recount, and no edit read any item's ratings."""
    rng, people, things = _random_ratings(seed)
    client.force_login(get_user_model().objects.create_superuser("boss", password="x-long-pw"))

    def check(response, seen):
        assert response.status_code == 302, response.content.decode()[:2000]
        assert _ratings_read_by_item(seen.captured_queries) == []
        _assert_stats_are_a_recount()

    ratings = list(Rating.objects.order_by("id"))
    for rating in rng.sample(ratings, 6):
        taken = set(Rating.objects.filter(user=rating.user_id).values_list("item_id", flat=True))
        free = [t.pk for t in things if t.pk not in taken]
        item = rng.choice(free) if free and rng.random() < 0.5 else rating.item_id
        data = {"user": rating.user_id, "item": item, "score": rng.randrange(1, 11) / 2}
        with CaptureQueriesContext(connection) as seen:
            response = client.post(reverse("admin:catalog_rating_change", args=[rating.pk]), data)
        check(response, seen)
    newcomer = UserFactory()
    with CaptureQueriesContext(connection) as seen:
        response = client.post(
            reverse("admin:catalog_rating_add"),
            {"user": newcomer.pk, "item": things[0].pk, "score": 3.5},
        )
    check(response, seen)
    for rating in rng.sample(list(Rating.objects.all()), 3):
        with CaptureQueriesContext(connection) as seen:
            response = client.post(
                reverse("admin:catalog_rating_delete", args=[rating.pk]), {"post": "yes"}
            )
        check(response, seen)
    chosen = [r.pk for r in rng.sample(list(Rating.objects.all()), 15)]
    with CaptureQueriesContext(connection) as seen:
        response = client.post(
            reverse("admin:catalog_rating_changelist"),
            {"action": "delete_selected", "_selected_action": chosen, "post": "yes"},
        )
    check(response, seen)
    assert not Rating.objects.filter(pk__in=chosen).exists()


def test_item_stats_refresh_is_one_grouped_statement_and_writes_only_what_differs():
    """The recount (seed, repair) of all items, or of some, is one statement that groups
    the ratings by item (one scan), not a subquery per item; it returns how many items'
    stats it changed, zeroing those nobody rates any more."""
    _random_ratings(5, items=8)
    unrated = ItemFactory()
    wrong = list(Item.objects.exclude(pk=unrated.pk).order_by("pk")[:3])
    Item.objects.filter(pk__in=[i.pk for i in wrong]).update(rating_count=99, rating_sum=7.5)
    Item.objects.filter(pk=unrated.pk).update(rating_count=2, rating_sum=3.0)
    with CaptureQueriesContext(connection) as seen:
        assert services.item_stats_refresh(item_ids=[wrong[0].pk, unrated.pk]) == 2
    assert len(seen.captured_queries) == 1 and "GROUP BY" in seen.captured_queries[0]["sql"]
    assert Item.objects.get(pk=unrated.pk).rating_count == 0
    assert Item.objects.get(pk=wrong[1].pk).rating_count == 99  # not asked for
    with CaptureQueriesContext(connection) as seen:
        assert services.item_stats_refresh() == 2
    assert len(seen.captured_queries) == 1
    _assert_stats_are_a_recount()
    assert services.item_stats_refresh() == 0
