"""Shapes of the catalogue's JSON: items, ratings, accounts. No logic beyond parsing."""

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts import usernames
from catalog.models import ALLOWED_SCORES, Genre, Item
from catalog.selectors import ITEM_ORDERINGS
from catalog.services import parse_score

# Ids beyond a 64-bit integer can name no row; bounding them keeps databases from choking.
MAX_ID = 2**63 - 1


@extend_schema_field(
    {
        "type": "number",
        "minimum": ALLOWED_SCORES[0],
        "maximum": ALLOWED_SCORES[-1],
        "multipleOf": 0.5,
        "description": "0.5 to 5 in steps of 0.5.",
    }
)
class ScoreField(serializers.Field):
    """A JSON number that ``catalog.services.parse_score`` accepts; its reasons on failure."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise serializers.ValidationError("A score must be a number.", code="invalid")
        try:
            return parse_score(data)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages, code=error.code) from None

    def to_representation(self, value):
        return float(value)


class GenreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Genre
        fields = ["name", "slug"]


class ItemSerializer(serializers.ModelSerializer):
    genres = GenreSerializer(many=True, read_only=True)
    average = serializers.FloatField(
        source="rating_average", allow_null=True, read_only=True, help_text="Mean score."
    )
    count = serializers.IntegerField(
        source="rating_count", read_only=True, help_text="Number of ratings."
    )

    class Meta:
        model = Item
        fields = ["id", "title", "year", "genres", "average", "count"]

    def to_representation(self, item):
        # The declared fields (and so the schema) spelled out by hand: lists of items are
        # the API's hottest output, and DRF's field-by-field walk costs ~0.3 ms an item.
        # tests/api/test_fast_serializers.py checks both give the same JSON.
        return {
            "id": item.pk,
            "title": item.title,
            "year": item.year,
            "genres": [{"name": g.name, "slug": g.slug} for g in item.card_genres()],
            "average": item.rating_average,
            "count": item.rating_count,
        }


class ItemDetailSerializer(ItemSerializer):
    class Meta(ItemSerializer.Meta):
        fields = [*ItemSerializer.Meta.fields, "description"]

    def to_representation(self, item):
        return {**super().to_representation(item), "description": item.description}


class ItemRefSerializer(serializers.ModelSerializer):
    """An item named in another resource: enough to show and link it."""

    class Meta:
        model = Item
        fields = ["id", "title", "year"]

    def to_representation(self, item):
        return {"id": item.pk, "title": item.title, "year": item.year}


class ItemListQuerySerializer(serializers.Serializer):
    search = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="Words in the title."
    )
    genre = serializers.SlugField(
        required=False, allow_blank=True, max_length=64, help_text="A genre's slug."
    )
    ordering = serializers.ChoiceField(
        choices=sorted(ITEM_ORDERINGS),
        required=False,
        default="relevance",
        help_text="relevance (the default): best match for a search, else most rated.",
    )

    def validate_genre(self, value):
        if value and not Genre.objects.filter(slug=value).exists():
            raise serializers.ValidationError(f"No genre {value!r}.", code="does_not_exist")
        return value


class TopListQuerySerializer(serializers.Serializer):
    genre = serializers.SlugField(required=False, allow_blank=True, max_length=64)
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)

    validate_genre = ItemListQuerySerializer.validate_genre


class RatingSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="item_id", help_text="The rated item's id.")
    title = serializers.CharField(source="item.title", help_text="The rated item's title.")
    score = ScoreField()
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()

    def to_representation(self, rating):
        # By hand, like ItemSerializer: a page of ratings is 20 of these (the DRF walk cost
        # ~0.15 ms a row); tests/api/test_fast_serializers.py checks both give the same JSON.
        return {
            "item": rating.item_id,
            "title": rating.item.title,
            "score": float(rating.score),
            "created": _datetime(rating.created),
            "updated": _datetime(rating.updated),
        }


# DRF's own formatting of a time (the settings' format and time zone), without the walk.
_datetime = serializers.DateTimeField().to_representation


class RatingCreateSerializer(serializers.Serializer):
    item = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="An item's id.")
    score = ScoreField()

    def validate_item(self, value):
        item = Item.objects.filter(pk=value).first()
        if item is None:
            raise serializers.ValidationError(f"No item with id {value}.", code="does_not_exist")
        if not item.is_active:
            raise serializers.ValidationError(
                "This item is no longer available for rating.", code="inactive"
            )
        return item


class RatingScoreSerializer(serializers.Serializer):
    score = ScoreField()


class RatingPatchSerializer(serializers.Serializer):
    score = ScoreField(required=False)


class RatingListQuerySerializer(serializers.Serializer):
    ordering = serializers.ChoiceField(
        choices=["-updated", "updated", "-score", "score", "item__title", "-item__title"],
        required=False,
        default="-updated",
    )


class GenreSlugsField(serializers.ListField):
    """A list of genre slugs, as ``Genre`` rows; every unknown slug is named in the error."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text",
            "Slugs of genres I like (see each item's `genres`); my first suggestions come "
            "from them until I have rated enough items.",
        )
        super().__init__(child=serializers.SlugField(max_length=64), max_length=100, **kwargs)

    def to_internal_value(self, data):
        slugs = list(dict.fromkeys(super().to_internal_value(data)))
        genres = {g.slug: g for g in Genre.objects.filter(slug__in=slugs)}
        unknown = [slug for slug in slugs if slug not in genres]
        if unknown:
            raise serializers.ValidationError(
                [
                    serializers.ErrorDetail(f"There is no genre “{slug}”.", "unknown_genre")
                    for slug in unknown
                ]
            )
        return [genres[slug] for slug in slugs]

    def to_representation(self, data):
        return [genre.slug for genre in data]


class GenrePicksSerializer(serializers.Serializer):
    genres = GenreSlugsField()


class RegisterSerializer(serializers.Serializer):
    username = serializers.CharField(
        max_length=150,
        help_text="ASCII letters, digits and @.+-_ only, after NFKC normalisation; "
        "unique without regard to case.",
    )
    password = serializers.CharField(
        write_only=True, max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )
    genres = GenreSlugsField(required=False)

    def validate_username(self, value):
        try:
            return usernames.validate_new(value)  # the same rule as sign-up and the importer
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages, code=error.code) from None

    def validate(self, attrs):
        user = get_user_model()(username=attrs["username"])
        try:
            password_validation.validate_password(attrs["password"], user=user)
        except DjangoValidationError as error:
            raise serializers.ValidationError(
                {
                    "password": [
                        serializers.ErrorDetail(e.messages[0], e.code) for e in error.error_list
                    ]
                }
            ) from None
        return attrs


class AccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    genres = serializers.ListField(
        child=serializers.SlugField(), help_text="Slugs of the genres I picked."
    )


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
