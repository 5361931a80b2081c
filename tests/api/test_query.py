"""recsite.api.query validates query parameters exactly as the serializers would."""

import pytest
from rest_framework.exceptions import ValidationError

from catalog.api import serializers as catalog_serializers
from catalog.tests.factories import GenreFactory
from recommendations.api import serializers as recommendation_serializers
from recsite.api.query import validate_query

pytestmark = pytest.mark.django_db

QUERY_SERIALIZERS = [
    catalog_serializers.ItemListQuerySerializer,
    catalog_serializers.TopListQuerySerializer,
    catalog_serializers.RatingListQuerySerializer,
    recommendation_serializers.RecommendationQuerySerializer,
    recommendation_serializers.LimitQuerySerializer,
]
QUERIES = [
    {},
    {"limit": "10"},
    {"limit": ""},
    {"limit": "0"},
    {"limit": "101"},
    {"limit": "abc"},
    {"limit": "5", "genre": "drama"},
    {"genre": "no-such-genre"},
    {"genre": "not a slug!"},
    {"genre": ""},
    {"exclude_rated": "false", "explain": "1"},
    {"exclude_rated": "maybe", "explain": "yes"},
    {"ordering": "-average", "search": "war"},
    {"ordering": "sideways", "search": "x" * 400},
    {"unknown": "ignored"},
    {"page": "2", "page_size": "5"},
]


def answer(run):
    try:
        return "ok", run()
    except ValidationError as error:
        return "invalid", error.detail


@pytest.mark.parametrize("serializer_class", QUERY_SERIALIZERS, ids=lambda c: c.__name__)
def test_the_same_values_and_errors_as_the_serializer(serializer_class):
    GenreFactory(name="Drama", slug="drama")
    for query in QUERIES:

        def slow(query=query):
            serializer = serializer_class(data=query)
            serializer.is_valid(raise_exception=True)
            return dict(serializer.validated_data)

        expected = answer(slow)
        # Twice: the second answer may be a remembered one.
        for _ in range(2):
            assert answer(lambda q=query: validate_query(serializer_class, q)) == expected, query


def test_a_parameter_checked_against_the_database_is_checked_every_time():
    """Answers are remembered only where the values alone decide them: a genre that
    was valid is invalid once it is gone."""
    genre = GenreFactory(name="Western", slug="western")
    query = {"genre": "western", "limit": "5"}
    for serializer_class in [
        catalog_serializers.TopListQuerySerializer,
        recommendation_serializers.RecommendationQuerySerializer,
    ]:
        assert validate_query(serializer_class, query)["genre"] == "western"
    genre.delete()
    for serializer_class in [
        catalog_serializers.TopListQuerySerializer,
        recommendation_serializers.RecommendationQuerySerializer,
    ]:
        with pytest.raises(ValidationError):
            validate_query(serializer_class, query)
