"""Title search (``selectors.item_search``): the same behaviour on SQLite (FTS5) and
PostgreSQL (full-text search + pg_trgm); CI runs this file on both."""

import pytest
from django.db import connection

from catalog import search_index, selectors
from catalog.models import Item
from catalog.tests.factories import GenreFactory, ItemFactory

pytestmark = pytest.mark.django_db


def _titles(items) -> list[str]:
    return [item.title for item in items]


@pytest.fixture
def catalogue():
    scifi = GenreFactory(name="Sci-Fi", slug="sci-fi")
    items = {
        "colony": ItemFactory(title="The Dark Colony", rating_count=5, genres=[scifi]),
        "knight": ItemFactory(title="Dark Knight Rising", rating_count=50),
        "garden": ItemFactory(title="A Garden in Paris", rating_count=1),
        "colonies": ItemFactory(title="Colony of Stars", rating_count=9, genres=[scifi]),
        "amelie": ItemFactory(title="Amélie", rating_count=3),
    }
    for n in range(30):
        ItemFactory(title=f"A Quiet Story {n}", rating_count=n)
    return items


def test_words_match_in_any_order(catalogue):
    assert _titles(selectors.item_search(query="colony dark")) == ["The Dark Colony"]
    assert _titles(selectors.item_search(query="DARK colony")) == ["The Dark Colony"]


def test_a_misspelt_word_finds_the_titles_spelt_like_it(catalogue):
    assert set(_titles(selectors.item_search(query="drak"))) == {
        "The Dark Colony",
        "Dark Knight Rising",
    }
    assert _titles(selectors.item_search(query="drak colony")) == ["The Dark Colony"]
    assert set(_titles(selectors.item_search(query="colny"))) == {
        "The Dark Colony",
        "Colony of Stars",
    }


def test_results_are_ordered_by_relevance_then_popularity(catalogue):
    found = list(selectors.item_search(query="dark"))
    # Both titles hold "dark" once; the one with more ratings comes first.
    assert _titles(found) == ["Dark Knight Rising", "The Dark Colony"]
    assert all(item.relevance > 0 for item in found)
    # A title that matches more of the query ranks above a more popular one matching less.
    best = _titles(selectors.item_search(query="colony stars"))
    assert best == ["Colony of Stars"]


def test_a_stop_word_alone_does_not_list_the_catalogue(catalogue):
    assert _titles(selectors.item_search(query="A")) == []
    assert _titles(selectors.item_search(query="the")) == []
    assert _titles(selectors.item_search(query="a garden")) == ["A Garden in Paris"]


def test_a_query_of_stop_words_still_finds_a_title_equal_to_it(catalogue):
    ItemFactory(title="It")
    ItemFactory(title="The")
    assert _titles(selectors.item_search(query="the")) == ["The"]


def test_prefixes_and_accents_match(catalogue):
    assert _titles(selectors.item_search(query="colo dark")) == ["The Dark Colony"]
    assert _titles(selectors.item_search(query="amelie")) == ["Amélie"]


def test_search_combines_with_genre_and_other_orderings(catalogue):
    assert _titles(selectors.item_search(query="colony", genre="sci-fi", ordering="title")) == [
        "Colony of Stars",
        "The Dark Colony",
    ]
    assert _titles(selectors.item_search(query="dark", genre="sci-fi")) == ["The Dark Colony"]


def test_query_syntax_from_the_user_is_only_words(catalogue):
    for query in ['"dark', "dark*", "(dark", "dark:*", "dark & |"]:
        assert "The Dark Colony" in _titles(selectors.item_search(query=query)), query
    # Operators are words like any other: every word must match.
    assert _titles(selectors.item_search(query="dark NOT colony")) == []
    assert _titles(selectors.item_search(query="dark:* | knight")) == ["Dark Knight Rising"]
    assert _titles(selectors.item_search(query="_ *")) == []
    assert selectors.search_words('dark"* OR (colony)') == ["dark", "colony"]


def test_inactive_items_are_not_found(catalogue):
    Item.objects.filter(pk=catalogue["colony"].pk).update(is_active=False)
    assert _titles(selectors.item_search(query="dark")) == ["Dark Knight Rising"]


def test_the_index_follows_new_renamed_and_deleted_titles(catalogue):
    item = ItemFactory(title="Lighthouse Keepers")
    assert _titles(selectors.item_search(query="lighthouse")) == ["Lighthouse Keepers"]
    item.title = "Harbour Keepers"
    item.save()
    assert _titles(selectors.item_search(query="lighthouse")) == []
    assert _titles(selectors.item_search(query="harbour")) == ["Harbour Keepers"]
    item.delete()
    assert _titles(selectors.item_search(query="keepers")) == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the FTS5 triggers are SQLite's")
def test_lost_triggers_are_put_back_and_the_index_rebuilt(catalogue):
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER catalog_item_fts_insert")
    ItemFactory(title="Unindexed Meadow")
    assert _titles(selectors.item_search(query="meadow")) == []
    search_index.install(connection)
    assert _titles(selectors.item_search(query="meadow")) == ["Unindexed Meadow"]


def test_the_catalogue_page_searches_by_relevance_unless_told_otherwise(client, catalogue):
    page = client.get("/items/", {"q": "drak"})
    assert _titles(page.context["page"]) == ["Dark Knight Rising", "The Dark Colony"]
    page = client.get("/items/", {"q": "colony", "sort": "title"})
    assert _titles(page.context["page"]) == ["Colony of Stars", "The Dark Colony"]
    assert client.get("/items/", {"q": "A"}).context["page"].paginator.count == 0


def test_the_api_searches_with_the_same_selector(client, catalogue):
    body = client.get("/api/v1/items/", {"search": "colony dark"}).json()
    assert [item["title"] for item in body["results"]] == ["The Dark Colony"]
    body = client.get("/api/v1/items/", {"search": "drak", "ordering": "-title"}).json()
    assert [item["title"] for item in body["results"]] == ["The Dark Colony", "Dark Knight Rising"]
    assert client.get("/api/v1/items/", {"search": "a"}).json()["count"] == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm is PostgreSQL's")
def test_trigram_matches_of_a_misspelt_word_come_after_the_index_matches(catalogue):
    ItemFactory(title="Dragon Tales", rating_count=1000)
    found = _titles(selectors.item_search(query="drak"))
    assert found[:2] == ["Dark Knight Rising", "The Dark Colony"]
    assert "Dragon Tales" in found[2:]
    # A known word never falls back to trigrams.
    assert _titles(selectors.item_search(query="dark")) == found[:2]


def test_a_long_query_is_cut_to_its_first_words(catalogue):
    words = selectors.search_words("dark colony " + " ".join(f"w{n}" for n in range(100)))
    assert len(words) == selectors.MAX_SEARCH_WORDS and words[:2] == ["dark", "colony"]
    assert _titles(selectors.item_search(query="dark colony " + "zz " * 200)) == []
