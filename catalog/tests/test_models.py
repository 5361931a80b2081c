import pytest
from django.db import IntegrityError, connection, transaction

from catalog.models import ALLOWED_SCORES, Item, Rating, is_allowed_score
from catalog.tests.factories import ItemFactory, RatingFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_allowed_scores_are_half_steps_from_half_to_five():
    assert ALLOWED_SCORES == (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)
    assert not is_allowed_score(0.0)
    assert not is_allowed_score(3.25)
    assert not is_allowed_score(5.5)


def test_database_allows_only_one_rating_per_user_and_item():
    rating = RatingFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(user=rating.user, item=rating.item, score=3.0)


@pytest.mark.parametrize("score", [0.0, 3.3, 5.5, 7.0, -1.0])
def test_database_rejects_scores_outside_half_steps(score):
    with pytest.raises(IntegrityError), transaction.atomic():
        RatingFactory(score=score)


def test_deleting_a_user_or_an_item_deletes_their_ratings():
    user, other = UserFactory(), UserFactory()
    first, second = ItemFactory(), ItemFactory()
    RatingFactory(user=user, item=first)
    RatingFactory(user=other, item=first)
    RatingFactory(user=other, item=second)
    user.delete()
    assert Rating.objects.count() == 2
    first.delete()
    assert list(Rating.objects.values_list("item_id", flat=True)) == [second.pk]


def test_item_average_is_none_until_rated():
    item = ItemFactory()
    assert item.rating_average is None
    item = Item(title="x", rating_count=4, rating_sum=14.0)
    assert item.rating_average == 3.5


def test_the_ratings_table_has_only_indexes_that_lead_with_the_user():
    """Every index costs each rating's write and each import's build: the user foreign
    key's lookups are served by the unique (user, item) constraint, and there is no index
    by item (nothing the site does reads ratings by item; SQLite's first import appends in
    user order, so with every index leading with the user it never builds one after)."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, Rating._meta.db_table)
    indexed = sorted(
        tuple(c["columns"])
        for c in found.values()
        if (c["index"] or c["unique"]) and not c["primary_key"]
    )
    assert indexed == [("user_id", "item_id"), ("user_id", "updated")]


def test_popularity_band_is_the_counts_bit_length_and_sorts_as_the_count():
    """The band the "most rated" index holds only grows with the count, so ordering by
    band then count is ordering by count, whatever writes the count (here a bulk update)."""
    counts = [0, 1, 2, 3, 4, 7, 8, 100, 127, 128, 5000, 2**20, 2**31 - 1]
    items = [ItemFactory() for _ in counts]
    for item, count in zip(items, counts, strict=True):
        Item.objects.filter(pk=item.pk).update(rating_count=count)
    bands = dict(Item.objects.values_list("rating_count", "popularity_band"))
    assert bands == {count: count.bit_length() for count in counts}
    by_band = Item.objects.order_by("-popularity_band", "-rating_count", "id")
    assert list(by_band) == list(Item.objects.order_by("-rating_count", "id"))


def test_no_index_covers_the_counts_a_rating_changes():
    """A rating updates the item's rating_count and rating_sum; PostgreSQL keeps such an
    update on the row's page and writes no index entry (HOT) only when no index covers a
    changed column. Indexes of the item table (expression indexes name no columns here)."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Item._meta.db_table)
    covered = {c for info in constraints.values() if info["index"] for c in info["columns"] or ()}
    assert "popularity_band" in covered  # the "most rated" lists' index
    assert not covered & {"rating_count", "rating_sum"}


def test_the_newest_hidden_row_of_a_user_is_one_index_probe():
    """``user_taste_stamp`` asks for MAX(id) of a user's hidden rows: an index on
    (user_id, id) answers it; without one PostgreSQL walked the primary key backwards."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "catalog_hiddenitem")
    assert ["user_id", "id"] in [info["columns"] for info in constraints.values() if info["index"]]
