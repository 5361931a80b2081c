"""Shapes of recommendations, neighbours, predictions and recompute runs in the JSON API."""

import json
import math

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.api.serializers import ItemRefSerializer, ItemSerializer, TopListQuerySerializer
from recommendations import reads, reasons
from recommendations.models import RecomputeRun


class RecommendationQuerySerializer(TopListQuerySerializer):
    exclude_rated = serializers.BooleanField(
        required=False, default=True, help_text="Leave out items I have rated (default on)."
    )
    explain = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add `because`: my own rated items behind each suggestion.",
    )


class LimitQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)


class BecauseSerializer(serializers.Serializer):
    """The evidence behind a suggestion that is the caller's own: never other people.

    `because` lists the caller's rated items that point at the suggestion most (the
    item-based part of the ranking, strongest first, at most 3). It names no other
    person: the people-based part shows only in `reason`, as an aggregate over at least
    `REASON_MIN_PEOPLE` people (default 3), because an average over one or two people
    next to who they are would tell anyone what those people rated.
    """

    items = ItemRefSerializer(
        many=True,
        source="because_items",
        help_text="My rated items it is closest to, strongest first (at most 3). "
        "Never other people's ids or ratings.",
    )


class SuggestionSerializer(serializers.Serializer):
    item = ItemSerializer()
    score = serializers.FloatField(help_text="Ranking score; comparable within one list.")
    reason = serializers.CharField(
        help_text='One line for people. It quotes an aggregate over other people ("4 '
        'people with your taste rated it 4.3 on average") only when it covers at least '
        "REASON_MIN_PEOPLE people (default 3) and their average is 4 or more; otherwise it "
        'names one of my items ("Because you rated ...") or says it in words.'
    )
    because = serializers.SerializerMethodField(
        help_text="With `explain=true`: my own items behind the suggestion; else null."
    )

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
    return {"items": [_ref(item) for item in suggestion.because_items]}


class RecommendationListSerializer(serializers.Serializer):
    source = serializers.ChoiceField(
        choices=reads.SOURCES,
        help_text="personal: from my neighbours; content: a first list from the genres I "
        "like and items like the ones I rated 4 or 5, while I have too few ratings for "
        "personal ones; popular: the fallback (no model yet, too few ratings and no genres, "
        "or Redis unavailable).",
    )
    model_version = serializers.CharField(allow_null=True)
    note = serializers.CharField(allow_blank=True, help_text="Why the fallback was served.")
    pending = serializers.BooleanField(
        help_text="True when the fallback is temporary and will turn personal by itself "
        "(the model is being prepared, or my latest ratings are being added to it): ask "
        "again in a few seconds. False when the answer holds until I rate more."
    )
    results = SuggestionSerializer(many=True, source="suggestions")

    def to_representation(self, result):
        # By hand for speed, like SuggestionSerializer; the declared fields stay the schema.
        return recommendation_list(result, explain=self.context.get("explain"))


def recommendation_list(result, *, explain: bool) -> dict:
    """``RecommendationListSerializer(result, context={"explain": explain}).data`` as a
    plain dict, without making the serializer (its fields, its ``data``'s wrapping) for
    each request: the view of the hottest read calls this."""
    return {
        "source": result.source,
        "model_version": result.model_version,
        "note": result.note,
        "pending": result.pending,
        "results": [_suggestion(s, explain) for s in result.suggestions],
    }


_item = ItemSerializer().to_representation
_ref = ItemRefSerializer().to_representation


# -- me/recommendations/ as JSON text --------------------------------------------------------
# The hottest read writes its answer as text: what ``json.dumps`` writes for
# ``recommendation_list(...)`` with DRF's renderer settings (ensure_ascii=False, compact,
# allow_nan=False), from parts. An item's id, title, year and genres change only with a
# catalogue edit, so a card read with its static parts kept (``ItemCard.memo``, one per
# item and catalogue generation) keeps their text there; each request writes only the
# live numbers (average, count), the score and the reason. Values of any other type than
# str, int, float, bool and None, and floats JSON cannot hold, give None: the caller then
# renders the dict, which writes them (or fails) as before. The bytes are compared with
# DRF's renderer's in recommendations/api/tests/test_json_text.py.
_string = json.encoder.encode_basestring  # ensure_ascii=False's (the C one)
_HEAD, _REF = "api-item-head", "api-item-ref"


class _Unwritten(Exception):
    pass


def _scalar(value) -> str:
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if not math.isfinite(value):
            raise _Unwritten
        return float.__repr__(value)
    raise _Unwritten


def _kept(item, name: str, write) -> str:
    memo = getattr(item, "memo", None)
    if memo is None:
        return write(item)
    text = memo.get(name)
    if text is None:
        text = memo[name] = write(item)
    return text


def _item_head(item) -> str:
    """``ItemSerializer``'s keys up to the live numbers: '{"id":..,"genres":[..],"average":'."""
    genres = ",".join(
        f'{{"name":{_scalar(g.name)},"slug":{_scalar(g.slug)}}}' for g in item.card_genres()
    )
    return (
        f'{{"id":{_scalar(item.pk)},"title":{_scalar(item.title)},"year":{_scalar(item.year)}'
        f',"genres":[{genres}],"average":'
    )


def _item_ref(item) -> str:
    return f'{{"id":{_scalar(item.pk)},"title":{_scalar(item.title)},"year":{_scalar(item.year)}}}'


def recommendation_list_json(result, *, explain: bool) -> str | None:
    """``json.dumps(recommendation_list(result, explain=explain), ensure_ascii=False,
    allow_nan=False, separators=(",", ":"))``, or None when a value is not one this
    writes (see above)."""
    try:
        out = [
            f'{{"source":{_scalar(result.source)},"model_version":{_scalar(result.model_version)}'
            f',"note":{_scalar(result.note)},"pending":{_scalar(result.pending)},"results":['
        ]
        for suggestion in result.suggestions:
            item = suggestion.item
            head = _kept(item, _HEAD, _item_head)
            # The common types written inline (a finite float: x - x == 0); others by _scalar.
            average, count = item.rating_average, item.rating_count
            score, reason = float(suggestion.score), suggestion.reason
            if not (type(average) is float and average - average == 0.0):
                average = _scalar(average)
            if not (type(count) is int and type(reason) is str and score - score == 0.0):
                count, reason, score = _scalar(count), _scalar(reason), _scalar(score)
            else:
                reason = _string(reason)
            if explain:
                refs = ",".join(_kept(i, _REF, _item_ref) for i in suggestion.because_items)
                because = f'{{"items":[{refs}]}}'
            else:
                because = "null"
            out.append(
                f'{{"item":{head}{average},"count":{count}}},"score":{score}'
                f',"reason":{reason},"because":{because}}}'
            )
            out.append(",")
        if result.suggestions:
            out.pop()
    except _Unwritten:
        return None
    out.append("]}")
    return "".join(out)


class SimilarItemSerializer(serializers.Serializer):
    item = ItemSerializer()
    score = serializers.FloatField(
        allow_null=True, help_text="Similarity; null when the list is the popular fallback."
    )
    support = serializers.SerializerMethodField(
        help_text="People who rated both items (whatever they gave); null when fewer than "
        "REASON_MIN_PEOPLE (default 3), so that no one can tell what one person rated."
    )
    source = serializers.ChoiceField(
        choices=reads.SOURCES,
        help_text="personal: people who rated this rated it too; content: alike in genre, "
        "year and title words (for items with few or no ratings, and places kept for new "
        "items nobody has rated yet); popular: well-rated items of the same genre.",
    )
    reason = serializers.SerializerMethodField(
        help_text='One line for people: "12 people rated both", "Also Sci-Fi, 1990s", '
        '"New, not rated yet: also Sci-Fi, 1990s"; empty when there is nothing to say.'
    )

    def get_reason(self, similar) -> str:
        return reasons.similar_item_reason(similar)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_support(self, similar):
        return reasons.shown_support(similar.support)

    def to_representation(self, similar):
        # By hand for speed, like SuggestionSerializer; the declared fields stay the schema.
        return {
            "item": _item(similar.item),
            "score": None if similar.score is None else float(similar.score),
            "support": reasons.shown_support(similar.support),
            "source": similar.source,
            "reason": reasons.similar_item_reason(similar),
        }


class SimilarUserSerializer(serializers.Serializer):
    """One of my nearest neighbours: who and how close, never what they rated.

    Listed only when we share at least REASON_MIN_PEOPLE (default 3) rated items: a
    similarity over one or two items would tell what that person rated.
    """

    user_id = serializers.IntegerField()
    similarity = serializers.FloatField()


class PredictionNeighbourSerializer(serializers.Serializer):
    item = ItemRefSerializer()
    similarity = serializers.FloatField(
        allow_null=True, help_text="Its similarity to the item (source neighbours), else null."
    )
    your_score = serializers.FloatField(help_text="My rating of this item.")
    contribution = serializers.FloatField(
        allow_null=True,
        help_text="Stars its interaction with the item adds to the prediction (source"
        " factorization or genres), else null.",
    )


class PredictedRatingSerializer(serializers.Serializer):
    item = serializers.IntegerField(help_text="The item's id.")
    score = serializers.FloatField(allow_null=True, help_text="0.5 to 5; null when unavailable.")
    source = serializers.ChoiceField(
        choices=["factorization", "genres", "neighbours", "baseline", "unavailable"],
        help_text="factorization: the rating model (a factorization machine over my ratings"
        " and the item's); genres: the same for an item it has no ratings of, from its genres"
        " and year; neighbours / baseline: similar items I rated, or averages alone.",
    )
    neighbours = PredictionNeighbourSerializer(
        many=True, help_text="My rated items behind the prediction, strongest first."
    )


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
