"""me/recommendations/ reads the user's taste stamp in the token's statement
(recommendations.api.authentication): same user, same stamp, same errors, one statement
fewer; revocation still immediate."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog import selectors as catalog_selectors
from catalog.models import HiddenItem, Item, Rating
from recommendations.api.authentication import TokenWithTasteStamp

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/recommendations/"


@pytest.fixture
def demo_token(published_model, db):
    user = get_user_model().objects.get(username="demo")
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.user, client.token = user, token
    return client


def test_the_lookup_gives_the_orms_user_and_the_stamp_user_taste_stamp_gives(demo_token):
    user = demo_token.user
    found_user, token = TokenWithTasteStamp().authenticate_credentials(demo_token.token.key)
    orm_user = get_user_model().objects.get(pk=user.pk)
    for field in get_user_model()._meta.concrete_fields:
        assert getattr(found_user, field.attname) == getattr(orm_user, field.attname), field
    assert token.pk == demo_token.token.pk and token.user is found_user
    assert token.taste_stamp == catalog_selectors.user_taste_stamp(user_id=user.pk)

    # It follows every kind of change the stamp stands for: a rating, a hidden item.
    before = token.taste_stamp
    rated = set(Rating.objects.filter(user=user).values_list("item_id", flat=True))
    item = Item.objects.exclude(pk__in=rated).first()
    Rating.objects.create(user=user, item=item, score=3.5)
    _, token = TokenWithTasteStamp().authenticate_credentials(demo_token.token.key)
    assert token.taste_stamp != before
    assert token.taste_stamp == catalog_selectors.user_taste_stamp(user_id=user.pk)
    after_rating = token.taste_stamp
    HiddenItem.objects.create(user=user, item=Item.objects.exclude(pk__in=rated).last())
    _, token = TokenWithTasteStamp().authenticate_credentials(demo_token.token.key)
    assert token.taste_stamp not in (before, after_rating)
    assert token.taste_stamp == catalog_selectors.user_taste_stamp(user_id=user.pk)


def test_a_stored_read_with_a_token_is_two_statements_and_the_same_answer(
    demo_token, django_assert_num_queries
):
    first = demo_token.get(URL, {"limit": 10})  # a first read keeps the user's list
    assert first.status_code == 200 and first.json()["source"] == "personal"
    # The token with the stamp, and the item cards: no statement of its own for the stamp.
    with django_assert_num_queries(2):
        stored = demo_token.get(URL, {"limit": 10})
    assert stored.content == first.content


def test_a_rating_since_the_list_was_kept_is_seen_through_the_tokens_stamp(demo_token):
    user = demo_token.user
    before = demo_token.get(URL, {"limit": 10}).json()
    top = before["results"][0]["item"]["id"]
    Rating.objects.create(user=user, item_id=top, score=1.0)
    after = demo_token.get(URL, {"limit": 10}).json()
    assert top not in [r["item"]["id"] for r in after["results"]]


def test_a_deleted_token_fails_at_once_and_errors_are_the_sites(demo_token):
    assert demo_token.get(URL).status_code == 200
    demo_token.token.delete()
    response = demo_token.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"]["message"] == "Invalid token."

    anonymous = APIClient().get(URL)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"

    user = demo_token.user
    token = Token.objects.create(user=user)
    user.is_active = False
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "User inactive or deleted."


def test_a_session_still_signs_in_and_reads_the_stamp_itself(demo_token):
    client = APIClient()
    client.force_login(demo_token.user)
    response = client.get(URL, {"limit": 10})
    assert response.status_code == 200 and response.json()["source"] == "personal"
    assert response.content == demo_token.get(URL, {"limit": 10}).content
