import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Item, Rating
from catalog.tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def item():
    return ItemFactory(title="Dune")


def fields(response):
    return response.json()["error"]["fields"]


def test_anonymous_users_get_401_on_my_ratings(api, item):
    for method, path in [
        ("get", "/api/v1/me/ratings/"),
        ("post", "/api/v1/me/ratings/"),
        ("put", f"/api/v1/me/ratings/{item.pk}/"),
        ("delete", f"/api/v1/me/ratings/{item.pk}/"),
    ]:
        response = getattr(api, method)(path, {"score": 4}, format="json")
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Token"


def test_bad_token_is_a_401_even_on_public_endpoints(api, item):
    api.credentials(HTTP_AUTHORIZATION="Token nope")
    response = api.get("/api/v1/items/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_create_then_replace_through_post_keeps_item_stats_in_step(user_api, item):
    response = user_api.post("/api/v1/me/ratings/", {"item": item.pk, "score": 4.5}, format="json")
    assert response.status_code == 201
    assert response.json()["item"] == item.pk and response.json()["score"] == 4.5
    response = user_api.post("/api/v1/me/ratings/", {"item": item.pk, "score": 2}, format="json")
    assert response.status_code == 200
    item.refresh_from_db()
    assert (item.rating_count, item.rating_sum) == (1, 2.0)


def test_put_creates_or_replaces_and_patch_changes_and_delete_removes(user_api, user, item):
    path = f"/api/v1/me/ratings/{item.pk}/"
    assert user_api.get(path).status_code == 404
    assert user_api.patch(path, {"score": 3}, format="json").status_code == 404
    assert user_api.put(path, {"score": 3}, format="json").status_code == 201
    assert user_api.put(path, {"score": 3.5}, format="json").status_code == 200
    response = user_api.patch(path, {"score": 1}, format="json")
    assert response.status_code == 200 and response.json()["score"] == 1.0
    assert user_api.get(path).json()["score"] == 1.0
    listed = user_api.get("/api/v1/me/ratings/").json()
    assert listed["count"] == 1 and listed["results"][0]["title"] == "Dune"
    assert user_api.delete(path).status_code == 204
    assert user_api.delete(path).status_code == 404
    item.refresh_from_db()
    assert (item.rating_count, item.rating_sum) == (0, 0.0)
    assert not Rating.objects.filter(user=user).exists()


def test_another_users_ratings_are_unreachable(user_api, user, item):
    other = UserFactory(username="bob")
    theirs = ItemFactory(title="Theirs")
    Rating.objects.create(user=other, item=theirs, score=5)
    Rating.objects.create(user=other, item=item, score=5)
    assert user_api.get("/api/v1/me/ratings/").json()["count"] == 0
    assert user_api.get(f"/api/v1/me/ratings/{theirs.pk}/").status_code == 404
    assert user_api.patch(f"/api/v1/me/ratings/{theirs.pk}/", {"score": 1}).status_code == 404
    assert user_api.delete(f"/api/v1/me/ratings/{theirs.pk}/").status_code == 404
    # Rating the same item makes my own rating; theirs is untouched.
    user_api.put(f"/api/v1/me/ratings/{item.pk}/", {"score": 1}, format="json")
    assert Rating.objects.get(user=other, item=item).score == 5
    assert Rating.objects.get(user=other, item=theirs).score == 5
    # No query parameter or body field names another user.
    response = user_api.get("/api/v1/me/ratings/", {"user": other.pk})
    assert response.json()["count"] == 1


def test_session_authentication_works_for_the_sites_own_javascript(user, item):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/v1/me/ratings/").status_code == 200
    # Unsafe requests over a session need the CSRF token, as Django forms do.
    response = client.put(f"/api/v1/me/ratings/{item.pk}/", {"score": 4}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"item": "ITEM", "score": 7}, "score", "out_of_range"),
        ({"item": "ITEM", "score": 4.3}, "score", "out_of_range"),
        ({"item": "ITEM", "score": "abc"}, "score", "invalid"),
        ({"item": "ITEM", "score": "4"}, "score", "invalid"),
        ({"item": "ITEM", "score": True}, "score", "invalid"),
        ({"item": "ITEM", "score": None}, "score", "null"),
        ({"item": "ITEM"}, "score", "required"),
        ({"score": 4}, "item", "required"),
        ({"item": 999999, "score": 4}, "item", "does_not_exist"),
        ({"item": 2**70, "score": 4}, "item", "max_value"),
        ({"item": "x", "score": 4}, "item", "invalid"),
        ({"item": "INACTIVE", "score": 4}, "item", "inactive"),
    ],
)
def test_validation_errors_name_the_field_and_reason(user_api, item, body, field, code):
    inactive = ItemFactory(is_active=False)
    ids = {"ITEM": item.pk, "INACTIVE": inactive.pk}
    body = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    response = user_api.post("/api/v1/me/ratings/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"][field][0]["code"] == code
    assert error["message"].startswith(f"{field}: ")
    assert not Rating.objects.exists()


def test_put_on_unknown_item_is_404_and_bad_bodies_are_400(user_api, item):
    response = user_api.put("/api/v1/me/ratings/999999/", {"score": 4}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No item with id 999999."
    path = f"/api/v1/me/ratings/{item.pk}/"
    assert fields(user_api.put(path, {"score": 7}, format="json"))["score"][0]["code"] == (
        "out_of_range"
    )
    response = user_api.put(path, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    response = user_api.put(path, [1, 2], format="json")
    assert response.status_code == 400
    assert "non_field_errors" in fields(response)
    response = user_api.put(path, "score=4", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_ratings_list_ordering_and_its_validation(user_api, user):
    a, b = ItemFactory(title="A"), ItemFactory(title="B")
    user_api.put(f"/api/v1/me/ratings/{a.pk}/", {"score": 2}, format="json")
    user_api.put(f"/api/v1/me/ratings/{b.pk}/", {"score": 5}, format="json")
    results = user_api.get("/api/v1/me/ratings/", {"ordering": "-score"}).json()["results"]
    assert [r["title"] for r in results] == ["B", "A"]
    response = user_api.get("/api/v1/me/ratings/", {"ordering": "user"})
    assert fields(response)["ordering"][0]["code"] == "invalid_choice"


def test_token_user_cannot_reach_items_they_have_not_rated_through_ids(user_api):
    """Ids of items that were never created give 404, not a crash."""
    last = Item.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    assert user_api.get(f"/api/v1/me/ratings/{last + 1}/").status_code == 404
    assert Token.objects.count() == 1


def test_a_put_is_few_statements(user_api, item, django_assert_num_queries):
    """A PUT's statements, each a round trip that on a busy PostgreSQL waits for a server
    process (bench/scale.py's stream). A new rating: the token, the item (no genres: the
    answer names only the title), clearing "Not interested", the insert, the item's
    counts. A replacement: the same with the insert finding the row, then the lock and
    the two updates. The test's own transaction makes the service's a savepoint (2 more);
    outside a test, BEGIN and COMMIT instead."""
    with django_assert_num_queries(5 + 2):
        response = user_api.put(f"/api/v1/me/ratings/{item.pk}/", {"score": 4}, format="json")
    assert response.status_code == 201
    with django_assert_num_queries(7 + 2):
        response = user_api.put(f"/api/v1/me/ratings/{item.pk}/", {"score": 2}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["item"], body["title"], body["score"]) == (item.pk, "Dune", 2.0)
    item.refresh_from_db()
    assert (item.rating_count, item.rating_sum) == (1, 2.0)
