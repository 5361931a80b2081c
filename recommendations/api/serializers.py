"""Shapes of recommendations, neighbours, predictions and recompute runs in the JSON API."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.api.serializers import ItemRefSerializer, ItemSerializer, TopListQuerySerializer
from recommendations.models import RecomputeRun


class RecommendationQuerySerializer(TopListQuerySerializer):
    exclude_rated = serializers.BooleanField(
        required=False, default=True, help_text="Leave out items I have rated (default on)."
    )
    explain = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add `because`: my rated items and the neighbour users behind each one.",
    )


class LimitQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)


class BecauseSerializer(serializers.Serializer):
    items = ItemRefSerializer(
        many=True, source="because_items", help_text="My rated items it is close to."
    )
    users = serializers.ListField(
        child=serializers.IntegerField(),
        source="because_users",
        help_text="Ids of people with my taste who rated it (ids only, never their ratings).",
    )


class SuggestionSerializer(serializers.Serializer):
    item = ItemSerializer()
    score = serializers.FloatField(help_text="Ranking score; comparable within one list.")
    reason = serializers.CharField(help_text="One line for people.")
    because = serializers.SerializerMethodField()

    @extend_schema_field(BecauseSerializer(allow_null=True))
    def get_because(self, suggestion):
        return _because(suggestion, self.context.get("explain"))

    def to_representation(self, suggestion):
        # By hand for speed, like ItemSerializer; the declared fields stay the schema.
        return _suggestion(suggestion, self.context.get("explain"))


def _suggestion(suggestion, explain) -> dict:
    return {
        "item": _item(suggestion.item),
        "score": float(suggestion.score),
        "reason": suggestion.reason,
        "because": _because(suggestion, explain),
    }


def _because(suggestion, explain) -> dict | None:
    if not explain:
        return None
    return {
        "items": [_ref(item) for item in suggestion.because_items],
        "users": [int(u) for u in suggestion.because_users],
    }


class RecommendationListSerializer(serializers.Serializer):
    source = serializers.ChoiceField(
        choices=["personal", "popular"],
        help_text="personal: from my neighbours; popular: the fallback (no model yet, too "
        "few ratings, or Redis unavailable).",
    )
    model_version = serializers.CharField(allow_null=True)
    note = serializers.CharField(allow_blank=True, help_text="Why the fallback was served.")
    results = SuggestionSerializer(many=True, source="suggestions")

    def to_representation(self, result):
        # By hand for speed, like SuggestionSerializer; the declared fields stay the schema.
        explain = self.context.get("explain")
        return {
            "source": result.source,
            "model_version": result.model_version,
            "note": result.note,
            "results": [_suggestion(s, explain) for s in result.suggestions],
        }


_item = ItemSerializer().to_representation
_ref = ItemRefSerializer().to_representation


class SimilarItemSerializer(serializers.Serializer):
    item = ItemSerializer()
    score = serializers.FloatField(
        allow_null=True, help_text="Similarity; null when the list is the popular fallback."
    )
    support = serializers.IntegerField(help_text="People who rated both items.")
    source = serializers.ChoiceField(choices=["personal", "popular"])


class SimilarUserSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    similarity = serializers.FloatField()


class PredictionNeighbourSerializer(serializers.Serializer):
    item = ItemRefSerializer()
    similarity = serializers.FloatField()
    your_score = serializers.FloatField(help_text="My rating of this neighbour item.")


class PredictedRatingSerializer(serializers.Serializer):
    item = serializers.IntegerField(help_text="The item's id.")
    score = serializers.FloatField(allow_null=True, help_text="0.5 to 5; null when unavailable.")
    source = serializers.ChoiceField(choices=["neighbours", "baseline", "unavailable"])
    neighbours = PredictionNeighbourSerializer(many=True)


class RecomputeRunSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(allow_null=True, read_only=True)
    status = serializers.ChoiceField(choices=RecomputeRun.Status.choices, read_only=True)

    class Meta:
        model = RecomputeRun
        fields = [
            "id",
            "status",
            "trigger",
            "created",
            "started",
            "finished",
            "shards_total",
            "shards_done",
            "progress",
            "n_ratings",
            "n_users",
            "n_items",
            "version",
            "error",
        ]
        read_only_fields = fields
