"""The hand-written to_representation of the hottest serializers gives exactly the JSON
DRF's generic field-by-field walk gives, so the OpenAPI schema (made from the declared
fields) stays true."""

import pytest
from rest_framework import serializers

from catalog import services
from catalog.api.serializers import ItemDetailSerializer, ItemRefSerializer, ItemSerializer
from catalog.tests.factories import GenreFactory, ItemFactory, UserFactory
from recommendations.api.serializers import (
    BecauseSerializer,
    RecommendationListSerializer,
    SuggestionSerializer,
    recommendation_list,
)
from recommendations.reads import RecommendationList, Suggestion

pytestmark = pytest.mark.django_db


def generic(serializer, instance):
    return serializers.Serializer.to_representation(serializer, instance)


@pytest.fixture
def items():
    genres = [GenreFactory(name="Drama", slug="drama"), GenreFactory(name="War", slug="war")]
    rated = ItemFactory(title="Rated", year=None, genres=genres, description="Long.")
    services.rating_upsert(user=UserFactory(), item=rated, score=3.5)
    return [rated, ItemFactory(title="Unrated")]


@pytest.mark.parametrize(
    "serializer_class", [ItemSerializer, ItemDetailSerializer, ItemRefSerializer]
)
def test_item_serializers_match_the_generic_walk(items, serializer_class):
    for item in items:
        serializer = serializer_class()
        assert serializer.to_representation(item) == generic(serializer, item)


@pytest.mark.parametrize("explain", [False, True])
def test_suggestion_serializer_matches_the_generic_walk(items, explain):
    suggestion = Suggestion(items[0], 4.25, "why", because_items=[items[1]])
    serializer = SuggestionSerializer(context={"explain": explain})
    fast = serializer.to_representation(suggestion)
    assert fast == generic(serializer, suggestion)
    if explain:
        assert fast["because"] == BecauseSerializer(suggestion).data


@pytest.mark.parametrize("explain", [False, True])
def test_recommendation_list_serializer_matches_the_generic_walk(items, explain):
    suggestion = Suggestion(items[0], 4.25, "why", because_items=[items[1]])
    result = RecommendationList([suggestion], "personal", "v1", note="")
    serializer = RecommendationListSerializer(context={"explain": explain})
    assert serializer.to_representation(result) == generic(serializer, result)
    # What me/recommendations/ renders, without making the serializer.
    assert recommendation_list(result, explain=explain) == generic(serializer, result)


def test_item_cards_serialize_like_orm_items(items):
    from catalog.selectors import item_cards

    cards = item_cards([item.pk for item in items])
    for item in items:
        orm = type(item).objects.prefetch_related("genres").get(pk=item.pk)
        assert ItemSerializer().to_representation(cards[item.pk]) == generic(ItemSerializer(), orm)


def test_rating_serializer_matches_the_generic_walk(items):
    from catalog.api.serializers import RatingSerializer
    from catalog.models import Rating

    services.rating_upsert(user=UserFactory(), item=items[1], score=0.5)
    for rating in Rating.objects.select_related("item"):
        serializer = RatingSerializer()
        assert serializer.to_representation(rating) == generic(serializer, rating)


@pytest.mark.parametrize(
    "similar",
    [
        {"score": 0.75, "support": 12, "source": "personal"},
        {"score": 0.5, "support": 1, "source": "personal"},
        {"score": 0.25, "support": 0, "source": "content", "reason": "Also Drama"},
        {"score": None, "support": 0, "source": "popular"},
    ],
)
def test_similar_item_serializer_matches_the_generic_walk(items, similar):
    from catalog.selectors import item_cards
    from recommendations.api.serializers import SimilarItemSerializer
    from recommendations.reads import SimilarItem

    for item in [items[0], item_cards([items[0].pk])[items[0].pk]]:
        one = SimilarItem(item, **similar)
        serializer = SimilarItemSerializer()
        assert serializer.to_representation(one) == generic(serializer, one)
