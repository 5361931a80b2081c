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


def test_top_rated_is_empty_without_ratings():
    ItemFactory()
    assert selectors.item_top_rated() == []
