import pytest
from django.core.exceptions import ValidationError

from catalog import services
from catalog.models import Item, Rating
from catalog.signals import rating_changed
from catalog.tests.factories import ItemFactory, RatingFactory, UserFactory

pytestmark = pytest.mark.django_db


def _stats(item):
    item = Item.objects.get(pk=item.pk)
    return item.rating_count, item.rating_sum


def test_upsert_creates_then_replaces_and_keeps_item_stats_in_step():
    user, other, item = UserFactory(), UserFactory(), ItemFactory()
    services.rating_upsert(user=user, item=item, score=4)
    services.rating_upsert(user=other, item=item, score="2.5")
    assert _stats(item) == (2, 6.5)
    services.rating_upsert(user=user, item=item, score=1.5)
    assert Rating.objects.get(user=user, item=item).score == 1.5
    assert _stats(item) == (2, 4.0)


def test_delete_removes_the_rating_and_its_share_of_the_stats():
    user, item = UserFactory(), ItemFactory()
    services.rating_upsert(user=user, item=item, score=5)
    assert services.rating_delete(user=user, item=item) is True
    assert _stats(item) == (0, 0.0)
    assert services.rating_delete(user=user, item=item) is False


@pytest.mark.parametrize(
    ("score", "code"),
    [(7, "out_of_range"), (0, "out_of_range"), (3.3, "out_of_range"), ("abc", "invalid"),
     (None, "invalid"), (True, "invalid")],
)  # fmt: skip
def test_upsert_rejects_bad_scores_with_a_reason_and_writes_nothing(score, code):
    user, item = UserFactory(), ItemFactory()
    with pytest.raises(ValidationError) as raised:
        services.rating_upsert(user=user, item=item, score=score)
    assert raised.value.code == code
    assert not Rating.objects.exists()
    assert _stats(item) == (0, 0.0)


def test_inactive_items_cannot_be_rated():
    with pytest.raises(ValidationError):
        services.rating_upsert(user=UserFactory(), item=ItemFactory(is_active=False), score=4)


def test_rating_changed_is_sent_after_commit_with_the_new_score(django_capture_on_commit_callbacks):
    received = []

    def listener(sender, **kwargs):
        received.append((kwargs["user_id"], kwargs["item_id"], kwargs["score"]))

    rating_changed.connect(listener)
    try:
        user, item = UserFactory(), ItemFactory()
        with django_capture_on_commit_callbacks(execute=True):
            services.rating_upsert(user=user, item=item, score=4)
            assert received == []  # nothing before the commit
        with django_capture_on_commit_callbacks(execute=True):
            services.rating_delete(user=user, item=item)
    finally:
        rating_changed.disconnect(listener)
    assert received == [(user.pk, item.pk, 4.0), (user.pk, item.pk, None)]


def test_item_stats_refresh_recounts_from_ratings():
    item, untouched = ItemFactory(), ItemFactory()
    RatingFactory(item=item, score=4.0)
    RatingFactory(item=item, score=2.0)
    assert _stats(item) == (0, 0.0)  # factories write raw rows
    assert services.item_stats_refresh(item_ids=[item.pk]) == 1
    assert _stats(item) == (2, 6.0)
    assert _stats(untouched) == (0, 0.0)


def test_hiding_an_item_is_idempotent_and_reversible():
    from catalog.selectors import user_hidden_item_ids

    user, item = UserFactory(), ItemFactory()
    assert services.item_hide(user=user, item=item) is True
    assert services.item_hide(user=user, item=item) is False
    assert user_hidden_item_ids(user=user) == {item.pk}
    assert services.item_unhide(user=user, item=item) is True
    assert user_hidden_item_ids(user=user) == set()


def _record(signal):
    sent = []

    def receiver(sender, **kwargs):
        sent.append({k: v for k, v in kwargs.items() if k != "signal"})

    signal.connect(receiver, weak=False, dispatch_uid=f"test-{id(sent)}")
    return sent, lambda: signal.disconnect(dispatch_uid=f"test-{id(sent)}")


def test_rating_a_hidden_item_clears_not_interested(django_capture_on_commit_callbacks):
    from catalog.selectors import user_hidden_item_ids
    from catalog.signals import hidden_changed

    user, item = UserFactory(), ItemFactory()
    services.item_hide(user=user, item=item)
    hides, stop = _record(hidden_changed)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.rating_upsert(user=user, item=item, score=4.5)
    finally:
        stop()
    assert user_hidden_item_ids(user=user) == set()
    assert Rating.objects.get(user=user, item=item).score == 4.5
    assert hides == [{"user_id": user.pk, "item_id": item.pk, "hidden": False}]


def test_not_interested_removes_the_rating_and_keeps_stats_in_step(
    django_capture_on_commit_callbacks,
):
    from catalog.selectors import user_hidden_item_ids
    from catalog.signals import hidden_changed

    user, other, item = UserFactory(), UserFactory(), ItemFactory()
    services.rating_upsert(user=user, item=item, score=4.5)
    services.rating_upsert(user=other, item=item, score=2)
    rates, stop_rates = _record(rating_changed)
    hides, stop_hides = _record(hidden_changed)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert services.item_hide(user=user, item=item) is True
    finally:
        stop_rates()
        stop_hides()
    assert not Rating.objects.filter(user=user, item=item).exists()
    assert user_hidden_item_ids(user=user) == {item.pk}
    assert _stats(item) == (1, 2.0)
    assert rates == [{"user_id": user.pk, "item_id": item.pk, "score": None}]
    assert hides == [{"user_id": user.pk, "item_id": item.pk, "hidden": True}]


def _item_updates() -> tuple[int, int]:
    """(updates, HOT updates) of the item table in this transaction (PostgreSQL)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            [Item._meta.db_table],
        )
        return cursor.fetchone()


def test_ratings_update_the_items_counts_without_touching_an_index():
    """Every rating moves its item's count or sum; on PostgreSQL that update writes no
    index entry (a HOT update, as pg_stat counts them) unless the count crosses a power of
    two (the band "most rated" lists walk). Before, each rating rewrote the item's 8 index
    entries, two of them GIN (bench/scale.py's stream)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("HOT updates are PostgreSQL's; SQLite rewrites no index it need not")
    item = ItemFactory()
    Item.objects.filter(pk=item.pk).update(rating_count=100, rating_sum=300.0)  # band 64-127
    users = [UserFactory() for _ in range(10)]
    before = _item_updates()
    for user in users:
        services.rating_upsert(user=user, item=item, score=4)
    services.rating_upsert(user=users[0], item=item, score=2)  # a replacement: the sum
    services.rating_delete(user=users[1], item=item)
    updates, hot = (now - then for now, then in zip(_item_updates(), before, strict=True))
    assert (updates, hot) == (12, 12)
    assert _stats(item) == (109, 300.0 + 9 * 4 - 2)
