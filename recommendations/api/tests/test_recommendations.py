"""me/recommendations, me/similar-users, items/{id}/similar and predicted-rating, served
from a model published in the real test Redis through recommendations.reads."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from catalog.models import Item, Rating
from recommendations import store
from recsite import redis_server

pytestmark = pytest.mark.django_db


def test_personal_recommendations_name_their_source_and_model(demo, published_model):
    response = demo.get("/api/v1/me/recommendations/", {"limit": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "personal" and body["model_version"] == published_model
    assert 1 <= len(body["results"]) <= 5
    first = body["results"][0]
    assert set(first) == {"item", "score", "reason", "because"}
    assert body["pending"] is False
    assert first["because"] is None  # only with ?explain=true
    assert "with your taste" in first["reason"] or "Because you rated" in first["reason"]
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_rated_items_are_left_out_by_default(demo):
    mine = set(Rating.objects.filter(user=demo.user).values_list("item_id", flat=True))
    body = demo.get("/api/v1/me/recommendations/", {"limit": 20}).json()
    assert body["results"] and not {r["item"]["id"] for r in body["results"]} & mine


def test_explain_gives_my_rated_items_behind_each_and_no_one_else(demo):
    mine = set(Rating.objects.filter(user=demo.user).values_list("item_id", flat=True))
    body = demo.get("/api/v1/me/recommendations/", {"explain": "true"}).json()
    assert body["results"]
    for suggestion in body["results"]:
        because = suggestion["because"]
        assert set(because) == {"items"}  # never the ids of the people behind it
        assert {i["id"] for i in because["items"]} <= mine
    assert any(s["because"]["items"] for s in body["results"])


def test_genre_filter_keeps_only_that_genre(demo):
    body = demo.get("/api/v1/me/recommendations/", {"genre": "drama", "limit": 5}).json()
    for suggestion in body["results"]:
        assert "drama" in [g["slug"] for g in suggestion["item"]["genres"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"explain": "maybe"}, "explain"),
        ({"exclude_rated": ""}, "exclude_rated"),
        ({"genre": "no-such-genre"}, "genre"),
    ],
)
def test_bad_parameters_are_400s_naming_them(demo, query, field):
    response = demo.get("/api/v1/me/recommendations/", query)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_redis_down_falls_back_to_popular_not_a_500(demo):
    dead = f"redis://127.0.0.1:{redis_server.free_port()}/0"
    store._client_for.cache_clear()
    try:
        with override_settings(REDIS_URL=dead):
            response = demo.get("/api/v1/me/recommendations/")
            similar = demo.get("/api/v1/me/similar-users/")
    finally:
        store._client_for.cache_clear()
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "popular" and body["model_version"] is None and body["note"]
    assert body["results"]
    assert similar.status_code == 200 and similar.json() == []


def test_similar_users_are_ids_and_similarities_only(demo):
    body = demo.get("/api/v1/me/similar-users/", {"limit": 5}).json()
    assert 1 <= len(body) <= 5
    for neighbour in body:
        assert set(neighbour) == {"user_id", "similarity"}
        assert neighbour["user_id"] != demo.user.pk


def test_similar_items_are_open_to_everyone_and_exclude_the_item(published_model):
    item = Item.objects.order_by("-rating_count").first()
    body = APIClient().get(f"/api/v1/items/{item.pk}/similar/", {"limit": 4}).json()
    assert 1 <= len(body) <= 4
    assert item.pk not in [s["item"]["id"] for s in body]
    assert all(s["source"] == "personal" and s["support"] >= 1 for s in body)
    assert APIClient().get("/api/v1/items/99999999/similar/").status_code == 404


def test_predicted_rating_with_the_items_i_rated_behind_it(demo):
    """From the rating model (recommendations/tests/test_rating_model.py covers it and
    the neighbours' fallback): the named items are mine, with my scores."""
    mine = dict(Rating.objects.filter(user=demo.user).values_list("item_id", "score"))
    item = Item.objects.exclude(pk__in=mine).order_by("-rating_count").first()
    body = demo.get(f"/api/v1/items/{item.pk}/predicted-rating/").json()
    assert body["item"] == item.pk and body["source"] == "factorization"
    assert 0.5 <= body["score"] <= 5
    for neighbour in body["neighbours"]:
        assert neighbour["your_score"] == mine[neighbour["item"]["id"]]


def test_personal_endpoints_need_a_signed_in_user(published_model):
    item = Item.objects.first()
    for path in [
        "/api/v1/me/recommendations/",
        "/api/v1/me/similar-users/",
        f"/api/v1/items/{item.pk}/predicted-rating/",
    ]:
        response = APIClient().get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"
