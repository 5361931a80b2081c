import pytest

from catalog import services
from catalog.tests.factories import GenreFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    scifi = GenreFactory(name="Sci-Fi", slug="sci-fi")
    drama = GenreFactory(name="Drama", slug="drama")
    dune = ItemFactory(title="Dune", year=1984, genres=[scifi])
    alien = ItemFactory(title="Alien", year=1979, genres=[scifi])
    heat = ItemFactory(title="Heat", year=1995, genres=[drama])
    ItemFactory(title="Gone", is_active=False)
    u1, u2 = UserFactory(), UserFactory()
    services.rating_upsert(user=u1, item=dune, score=5)
    services.rating_upsert(user=u2, item=dune, score=4)
    services.rating_upsert(user=u1, item=alien, score=3)
    return {"dune": dune, "alien": alien, "heat": heat}


def titles(response):
    return [item["title"] for item in response.json()["results"]]


def test_item_list_is_paginated_with_average_and_count_and_hides_inactive(api, catalogue):
    response = api.get("/api/v1/items/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert titles(response) == ["Dune", "Alien", "Heat"]  # default: most rated first
    dune = body["results"][0]
    assert dune["average"] == 4.5 and dune["count"] == 2
    assert dune["genres"] == [{"name": "Sci-Fi", "slug": "sci-fi"}]
    assert body["results"][2]["average"] is None


def test_item_list_search_genre_and_every_ordering(api, catalogue):
    assert titles(api.get("/api/v1/items/", {"search": "ali"})) == ["Alien"]
    assert titles(api.get("/api/v1/items/", {"genre": "drama"})) == ["Heat"]
    expected = {
        "title": ["Alien", "Dune", "Heat"],
        "-year": ["Heat", "Dune", "Alien"],
        "average": ["Alien", "Dune", "Heat"],
        "-average": ["Dune", "Alien", "Heat"],
        "count": ["Heat", "Alien", "Dune"],
    }
    for ordering, order in expected.items():
        assert titles(api.get("/api/v1/items/", {"ordering": ordering})) == order, ordering


def test_pagination_pages_and_page_size(api, catalogue):
    first = api.get("/api/v1/items/", {"page_size": 2, "ordering": "title"}).json()
    assert [i["title"] for i in first["results"]] == ["Alien", "Dune"]
    assert first["previous"] is None and "page=2" in first["next"]
    second = api.get(first["next"]).json()
    assert [i["title"] for i in second["results"]] == ["Heat"] and second["next"] is None


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5", "٣"])
def test_malformed_page_number_is_a_400_naming_page(api, catalogue, page):
    response = api.get("/api/v1/items/", {"page": page})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"]["page"][0]["code"] == "invalid"


def test_page_past_the_end_is_a_404_and_oversized_page_size_a_400(api, catalogue):
    response = api.get("/api/v1/items/", {"page": 9})
    assert response.status_code == 404
    assert "last page (1)" in response.json()["error"]["message"]
    response = api.get("/api/v1/items/", {"page_size": 1000})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["page_size"][0]["code"] == "max_value"


def test_unknown_ordering_and_genre_are_400s_naming_the_parameter(api, catalogue):
    fields = api.get("/api/v1/items/", {"ordering": "price"}).json()["error"]["fields"]
    assert fields["ordering"][0]["code"] == "invalid_choice"
    fields = api.get("/api/v1/items/", {"genre": "western"}).json()["error"]["fields"]
    assert fields["genre"][0]["code"] == "does_not_exist"


def test_item_detail_and_unknown_or_inactive_item_404(api, catalogue):
    body = api.get(f"/api/v1/items/{catalogue['dune'].pk}/").json()
    assert body["title"] == "Dune" and body["average"] == 4.5 and "description" in body
    for path in ["/api/v1/items/999999/", "/api/v1/items/99999999999999999999999/"]:
        response = api.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_popular_and_top_rated_are_open_to_anonymous_users(api, catalogue):
    popular = api.get("/api/v1/items/popular/", {"limit": 2}).json()
    assert [i["title"] for i in popular] == ["Dune", "Alien"]
    top = api.get("/api/v1/items/top-rated/", {"genre": "sci-fi"}).json()
    assert [i["title"] for i in top] == ["Dune", "Alien"]
    response = api.get("/api/v1/items/popular/", {"limit": 0})
    assert response.status_code == 400
    assert "limit" in response.json()["error"]["fields"]
