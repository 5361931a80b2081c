"""The hand-written rating INSERT writes the row the ORM would have written.

``catalog.services._rating_insert`` bypasses ``Rating.objects.create`` (one statement
instead of a savepoint and an INSERT), so nothing else checks that the values it writes,
and the instance it returns, match the ORM's: these tests compare them field by field on
whichever database the suite runs on (SQLite by default, PostgreSQL with DATABASE_URL).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog import services
from catalog.models import Rating
from catalog.tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

FIELDS = [field.attname for field in Rating._meta.concrete_fields]


def _values(rating: Rating) -> dict:
    return {name: getattr(rating, name) for name in FIELDS}


def _assert_same_types(left: dict, right: dict) -> None:
    for name in FIELDS:
        assert type(left[name]) is type(right[name]), name
        if name in ("created", "updated"):
            assert left[name].utcoffset() == right[name].utcoffset() == timedelta(0), name


@pytest.mark.parametrize("score", [0.5, 3.0, 3.5, 5.0])
def test_the_hand_written_insert_writes_the_row_the_orm_writes(score):
    user, by_hand_item, by_orm_item = UserFactory(), ItemFactory(), ItemFactory()

    before = timezone.now()
    returned = services._rating_insert(user=user, item=by_hand_item, score=score)
    after = timezone.now()
    by_orm = Rating.objects.create(user=user, item=by_orm_item, score=score)

    assert returned is not None
    by_hand = _values(Rating.objects.get(pk=returned.pk))
    orm = _values(Rating.objects.get(pk=by_orm.pk))

    # Read back through the ORM, both rows hold values of the same types.
    _assert_same_types(by_hand, orm)
    assert by_hand["user_id"] == orm["user_id"] == user.pk
    assert (by_hand["item_id"], orm["item_id"]) == (by_hand_item.pk, by_orm_item.pk)
    assert by_hand["score"] == orm["score"] == score
    # One instant for both stamps, taken during the call, in UTC.
    assert by_hand["created"] == by_hand["updated"]
    assert before <= by_hand["created"] <= after
    # The id comes from the table's own sequence: the ORM's next row takes the next one.
    assert orm["id"] == by_hand["id"] + 1

    # The instance returned is the row as stored, and saved (not "adding").
    assert _values(returned) == by_hand
    _assert_same_types(_values(returned), by_hand)
    assert returned._state.adding is False
    assert returned.user == user and returned.item == by_hand_item


def test_the_hand_written_insert_follows_the_orms_ids():
    """An ORM row, then a hand-written one, then an ORM row: consecutive ids."""
    user, first, second, third = UserFactory(), ItemFactory(), ItemFactory(), ItemFactory()
    a = Rating.objects.create(user=user, item=first, score=1.0)
    b = services._rating_insert(user=user, item=second, score=2.5)
    c = Rating.objects.create(user=user, item=third, score=4.0)
    assert [a.pk + 1, a.pk + 2] == [b.pk, c.pk]


def test_a_second_insert_of_the_same_pair_returns_none_and_leaves_the_row_alone():
    user, item = UserFactory(), ItemFactory()
    first = services._rating_insert(user=user, item=item, score=2.5)
    stored = _values(Rating.objects.get(pk=first.pk))

    assert services._rating_insert(user=user, item=item, score=4.5) is None

    assert Rating.objects.filter(user=user, item=item).count() == 1
    again = _values(Rating.objects.get(pk=first.pk))
    assert again == stored
    _assert_same_types(again, stored)
