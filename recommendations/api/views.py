"""JSON views of recommendations. Thin: every answer comes from ``recommendations.reads``
(``pipeline`` for a recompute), the same functions the pages use; nothing here scores or
ranks.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api.views import item_or_404
from recommendations import pipeline, reads
from recommendations.api import serializers as s
from recommendations.api.authentication import TokenWithTasteStamp, taste_stamp_of
from recsite.api.errors import ErrorSerializer
from recsite.api.query import validated_query
from recsite.api.responses import json_response, json_text_response, writes_plain_json


@extend_schema(tags=["recommendations"])
class MyRecommendationsView(APIView):
    # The site's classes (token first, for its 401 header), the token's with the stamp.
    authentication_classes = [TokenWithTasteStamp, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_recommendations",
        summary="My recommendations, with their source and (optionally) the evidence",
        parameters=[s.RecommendationQuerySerializer],
        responses=s.RecommendationListSerializer,
    )
    def get(self, request):
        query = validated_query(s.RecommendationQuerySerializer, request)
        result = reads.recommendations_for_user(
            user=request.user,
            limit=query["limit"],
            genre=query.get("genre", ""),
            exclude_rated=query["exclude_rated"],
            explain=query["explain"],
            taste_stamp=taste_stamp_of(request),
        )
        # The list written as text from its cards' kept parts; the dict rendered by DRF's
        # renderer when the client asked for another rendering (indent) or a value is not
        # one the text writer takes. The same bytes either way
        # (recommendations/api/tests/test_json_text.py).
        if writes_plain_json(request):
            text = s.recommendation_list_json(result, explain=query["explain"])
            if text is not None:
                return json_text_response(request, text)
        return json_response(request, s.recommendation_list(result, explain=query["explain"]))


@extend_schema(tags=["recommendations"])
class MySimilarUsersView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_similar_users",
        summary='"People like you": ids and similarity only',
        parameters=[s.LimitQuerySerializer],
        responses=s.SimilarUserSerializer(many=True),
    )
    def get(self, request):
        query = validated_query(s.LimitQuerySerializer, request)
        users = reads.similar_users(user=request.user, limit=query["limit"])
        return json_response(request, s.SimilarUserSerializer(users, many=True).data)


@extend_schema(tags=["recommendations"])
class SimilarItemsView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="items_similar",
        summary="Items people who rated this one also rated (item-based neighbours)",
        parameters=[s.LimitQuerySerializer],
        responses=s.SimilarItemSerializer(many=True),
    )
    def get(self, request, item_id: int):
        query = validated_query(s.LimitQuerySerializer, request)
        item = item_or_404(item_id)
        similar = reads.similar_items(item=item, limit=query["limit"], user=request.user)
        return json_response(request, s.SimilarItemSerializer(similar, many=True).data)


@extend_schema(tags=["recommendations"])
class PredictedRatingView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="items_predicted_rating",
        summary="The score I would probably give this item, and my rated items behind it",
        responses=s.PredictedRatingSerializer,
    )
    def get(self, request, item_id: int):
        item = item_or_404(item_id)
        prediction = reads.predicted_rating(user=request.user, item=item)
        body = {
            "item": item.pk,
            "score": prediction.score,
            "source": prediction.source,
            "neighbours": [
                {
                    "item": neighbour,
                    "similarity": similarity,
                    "your_score": score,
                    "contribution": contribution,
                }
                for neighbour, similarity, score, contribution in prediction.neighbours
            ],
        }
        return Response(s.PredictedRatingSerializer(body).data)


@extend_schema(tags=["staff"])
class RecomputeView(APIView):
    """Staff only: start a full recompute of the neighbour model, or read the latest."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="staff_recompute_status",
        summary="The latest recompute run",
        responses={
            200: s.RecomputeRunSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No recompute has run yet."),
        },
    )
    def get(self, request):
        run = pipeline.recompute_latest()
        if run is None:
            raise exceptions.NotFound("No recompute has run yet.")
        return Response(s.RecomputeRunSerializer(run).data)

    @extend_schema(
        operation_id="staff_recompute_start",
        summary="Queue a full recompute (runs on the Celery workers)",
        request=None,
        responses={202: s.RecomputeRunSerializer},
    )
    def post(self, request):
        run = pipeline.recompute_start(requested_by=request.user, trigger="api")
        return Response(s.RecomputeRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
