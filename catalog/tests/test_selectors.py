import pytest

from catalog import selectors, services
from catalog.tests.factories import GenreFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated_catalogue():
    drama, comedy = GenreFactory(name="Drama"), GenreFactory(name="Comedy")
    loved = ItemFactory(title="Loved by few", year=1990, genres=[drama])
    solid = ItemFactory(title="Solid classic", year=1970, genres=[drama, comedy])
    unrated = ItemFactory(title="Unseen", year=2020, genres=[comedy])
    meh = ItemFactory(title="Meh", year=2010)
    ItemFactory(title="Hidden", is_active=False)
    people = [UserFactory() for _ in range(30)]
    services.rating_upsert(user=people[0], item=loved, score=5)
    for person in people:
        services.rating_upsert(user=person, item=solid, score=4.5 if person.pk % 2 else 4.0)
        services.rating_upsert(user=person, item=meh, score=2.0)
    return loved, solid, unrated


def test_item_list_searches_filters_by_genre_and_hides_inactive(rated_catalogue):
    loved, solid, unrated = rated_catalogue
    assert [i.title for i in selectors.item_list(search="CLASSIC")] == ["Solid classic"]
    assert {i.pk for i in selectors.item_list(genre="comedy")} == {solid.pk, unrated.pk}
    assert "Hidden" not in {i.title for i in selectors.item_list()}


def test_item_list_orders_by_average_with_unrated_last(rated_catalogue):
    loved, solid, unrated = rated_catalogue
    ordered = list(selectors.item_list(ordering="-average"))
    assert [i.title for i in ordered] == ["Loved by few", "Solid classic", "Meh", "Unseen"]
    assert ordered[0].average == 5.0
    assert [i.pk for i in selectors.item_list(ordering="-count")][0] == solid.pk
    by_year = [i.title for i in selectors.item_list(ordering="year")]
    assert by_year == ["Solid classic", "Loved by few", "Meh", "Unseen"]


def test_item_list_rejects_unknown_ordering():
    with pytest.raises(ValueError, match="unknown ordering"):
        selectors.item_list(ordering="price")


def test_top_rated_damps_items_with_few_ratings(rated_catalogue):
    loved, solid, _ = rated_catalogue
    top = selectors.item_top_rated(limit=5)
    # One 5 does not beat thirty ratings averaging 4.25 once damped toward the mean.
    assert [i.title for i in top] == ["Solid classic", "Loved by few", "Meh"]
    assert selectors.item_top_rated(genre="comedy", limit=5)[0].pk == solid.pk


def test_top_rated_keeps_its_ranking_for_its_time_and_reads_the_items_fresh(rated_catalogue):
    """Ranked at most once every TOP_RATED_CACHE_SECONDS per process (and genre); within
    that time the order stays, while each item's count and average are current and an
    item hidden from the catalogue is left out at once; after it, the ranking is new."""
    import time

    from django.test import override_settings

    loved, solid, _ = rated_catalogue
    meh = selectors.item_list(search="Meh").get()
    selectors._top_rated.clear()
    with override_settings(TOP_RATED_CACHE_SECONDS=60):
        assert [i.title for i in selectors.item_top_rated(limit=5)] == [
            "Solid classic", "Loved by few", "Meh",
        ]  # fmt: skip
        ranked_at = time.monotonic()
        for person in [UserFactory() for _ in range(40)]:
            services.rating_upsert(user=person, item=meh, score=5)
            services.rating_upsert(user=person, item=loved, score=1)
        top = selectors.item_top_rated(limit=5)
        assert [i.title for i in top] == ["Solid classic", "Loved by few", "Meh"]
        assert top[2].rating_count == 70 and top[2].average == pytest.approx(260 / 70)
        solid.is_active = False
        solid.save()
        assert [i.title for i in selectors.item_top_rated(limit=5)] == ["Loved by few", "Meh"]
        # the next one kept takes its place in a shorter list
        assert [i.title for i in selectors.item_top_rated(limit=1)] == ["Loved by few"]
    with override_settings(TOP_RATED_CACHE_SECONDS=1):  # once its time has passed
        time.sleep(max(0.0, ranked_at + 1.05 - time.monotonic()))
        assert [i.title for i in selectors.item_top_rated(limit=5)] == ["Meh", "Loved by few"]
        # a genre has its own ranking
        assert [i.title for i in selectors.item_top_rated(genre="drama", limit=5)] == [
            "Loved by few"
        ]


def test_top_rated_is_empty_without_ratings():
    ItemFactory()
    assert selectors.item_top_rated() == []


# -- hand-written reads: the taste stamp and item cards ----------------------------------
def test_the_taste_stamp_moves_with_every_change_to_ratings_or_hidden_items():
    from datetime import UTC, datetime

    from catalog.importers.loader import ratings_bulk_upsert

    user = UserFactory()
    items = [ItemFactory() for _ in range(4)]
    seen = {selectors.user_taste_stamp(user_id=user.pk)}

    def changed():
        stamp = selectors.user_taste_stamp(user_id=user.pk)
        assert stamp not in seen
        assert selectors.user_taste_stamps()[user.pk] == stamp  # the batch form agrees
        seen.add(stamp)

    services.rating_upsert(user=user, item=items[0], score=4)
    changed()
    services.rating_upsert(user=user, item=items[1], score=3)
    changed()
    services.rating_upsert(user=user, item=items[0], score=2.5)
    changed()
    none_hidden = selectors.user_taste_stamp(user_id=user.pk)
    services.item_hide(user=user, item=items[2])
    changed()
    one_hidden = selectors.user_taste_stamp(user_id=user.pk)
    services.item_hide(user=user, item=items[3])  # unrated: hiding a rated one unrates it
    changed()
    # Back to an earlier hidden set: its stamp again (lists made for it are right again).
    services.item_unhide(user=user, item=items[3])
    assert selectors.user_taste_stamp(user_id=user.pk) == one_hidden
    services.item_unhide(user=user, item=items[2])
    assert selectors.user_taste_stamp(user_id=user.pk) == none_hidden
    services.rating_delete(user=user, item=items[0])
    changed()
    # An imported rating with an old time, replacing an older stored one.
    old = datetime(2001, 1, 1, tzinfo=UTC)
    ratings_bulk_upsert({(user.pk, items[2].pk): (old, 5.0)})
    changed()
    ratings_bulk_upsert({(user.pk, items[2].pk): (datetime(2002, 1, 1, tzinfo=UTC), 1.0)})
    changed()
    # Another user's change leaves this stamp alone.
    services.rating_upsert(user=UserFactory(), item=items[1], score=5)
    assert selectors.user_taste_stamp(user_id=user.pk) in seen


def test_item_cards_read_what_the_orm_reads():
    drama, war = GenreFactory(name="War", slug="war"), GenreFactory(name="Drama", slug="drama")
    with_genres = ItemFactory(title="Both", year=1999, genres=[drama, war])
    plain = ItemFactory(title="None", year=None, is_active=False)
    services.rating_upsert(user=UserFactory(), item=with_genres, score=4.5)
    cards = selectors.item_cards([plain.pk, with_genres.pk, with_genres.pk, 10**9])
    assert set(cards) == {plain.pk, with_genres.pk}
    for item in (with_genres, plain):
        item.refresh_from_db()
        card = cards[item.pk]
        for field in ("pk", "title", "year", "is_active", "rating_count", "rating_sum"):
            assert getattr(card, field) == getattr(item, field), field
        names = [(g.id, g.name, g.slug) for g in card.card_genres()]
        assert names == [(g.id, g.name, g.slug) for g in item.genres.all()]  # name order
        assert card.rating_average == item.rating_average
        assert (str(card), card.get_absolute_url()) == (str(item), item.get_absolute_url())
    assert cards[plain.pk].is_active is False


def test_rated_or_hidden_reads_what_the_orm_reads():
    """The panels' one-statement exclusion: the user's rated and hidden items, nobody else's."""
    from catalog.models import HiddenItem, Rating

    me, other = UserFactory(), UserFactory()
    items = [ItemFactory() for _ in range(6)]
    services.rating_upsert(user=me, item=items[0], score=4)
    services.rating_upsert(user=me, item=items[1], score=2)
    services.item_hide(user=me, item=items[2])
    services.rating_upsert(user=other, item=items[3], score=5)
    services.item_hide(user=other, item=items[4])
    orm = set(Rating.objects.filter(user=me).values_list("item_id", flat=True)) | set(
        HiddenItem.objects.filter(user=me).values_list("item_id", flat=True)
    )
    assert selectors.user_rated_or_hidden_ids(user_id=me.pk) == orm == {i.pk for i in items[:3]}
    asked = [items[1].pk, items[2].pk, items[3].pk, items[5].pk, items[1].pk]
    assert selectors.user_rated_or_hidden_among(user_id=me.pk, item_ids=asked) == {
        items[1].pk,
        items[2].pk,
    }
    assert selectors.user_rated_or_hidden_among(user_id=me.pk, item_ids=[]) == set()


def test_recent_high_ratings_are_newest_first_and_of_active_items():
    me = UserFactory()
    items = [ItemFactory() for _ in range(5)]
    for item, score in zip(items, [4, 5, 3.5, 4.5, 4], strict=True):
        services.rating_upsert(user=me, item=item, score=score)
    items[4].is_active = False
    items[4].save()
    services.rating_upsert(user=UserFactory(), item=items[2], score=5)
    recent = selectors.user_recent_high_ratings(user_id=me.pk, limit=2)
    assert recent == [items[3].pk, items[1].pk]
    assert selectors.user_recent_high_ratings(user_id=me.pk, limit=9) == [
        items[3].pk,
        items[1].pk,
        items[0].pk,
    ]
