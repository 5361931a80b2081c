"""JSON views of the catalogue: items, the signed-in user's ratings, accounts.

Thin: parse with a serializer, read through ``catalog.selectors``, write through
``catalog.services``. A user's ratings are always looked up through ``request.user``, so
another user's ratings cannot be named, let alone read or changed.
"""

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import user_genre_picks
from accounts.services import genre_picks_set
from catalog import selectors, services
from catalog.api import serializers as s
from catalog.api.services import account_register, auth_token_get_or_create
from catalog.models import Item
from recsite.api.errors import LockedOut
from recsite.api.query import validated_query
from recsite.api.responses import json_response
from recsite.api.throttling import AnonThrottle, AuthThrottle

_ITEM_NOT_FOUND = "No item with id {}."


def item_or_404(item_id: int, *, active_only: bool = True, genres: bool = True) -> Item:
    """The item, its genres fetched too unless ``genres`` is False (a rating's answer names
    only the title: one statement less on the PUT path)."""
    items = Item.objects.prefetch_related("genres") if genres else Item.objects.all()
    if active_only:
        items = items.filter(is_active=True)
    item = items.filter(pk=item_id).first()
    if item is None:
        raise exceptions.NotFound(_ITEM_NOT_FOUND.format(item_id))
    return item


def _upsert(*, user, item: Item, score: float):
    """``rating_create_or_replace`` (the rating and whether this call created it), with
    its refusals reported against the ``item`` or ``score`` field."""
    try:
        return services.rating_create_or_replace(user=user, item=item, score=score)
    except DjangoValidationError as error:
        field = "score" if error.code in {"invalid", "out_of_range"} else "item"
        raise exceptions.ValidationError(
            {field: [exceptions.ErrorDetail(m, error.code) for m in error.messages]}
        ) from None


def _page_response(view, data):
    """The paginator's page body (count, links, results), rendered at once."""
    return json_response(view.request, view.get_paginated_response(data).data)


# --- Items -----------------------------------------------------------------------------


@extend_schema(tags=["items"])
class ItemListView(generics.GenericAPIView):
    serializer_class = s.ItemSerializer
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="items_list",
        summary="Browse the catalogue",
        parameters=[s.ItemListQuerySerializer],
        responses=s.ItemSerializer(many=True),
    )
    def get(self, request):
        query = validated_query(s.ItemListQuerySerializer, request)
        items = selectors.item_list(
            search=query.get("search", ""), genre=query.get("genre", ""), ordering=query["ordering"]
        )
        page = self.paginate_queryset(items)
        return _page_response(self, self.get_serializer(page, many=True).data)


@extend_schema(tags=["items"])
class ItemDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="items_retrieve", summary="One item", responses=s.ItemDetailSerializer
    )
    def get(self, request, item_id: int):
        return Response(s.ItemDetailSerializer(item_or_404(item_id)).data)


class _TopListView(APIView):
    permission_classes = [AllowAny]
    selector = None

    def get(self, request):
        query = validated_query(s.TopListQuerySerializer, request)
        items = type(self).selector(genre=query.get("genre", ""), limit=query["limit"])
        return json_response(request, s.ItemSerializer(items, many=True).data)


@extend_schema(tags=["items"])
class PopularItemsView(_TopListView):
    selector = staticmethod(selectors.item_most_popular)

    @extend_schema(
        operation_id="items_popular",
        summary="Most rated items (open to everyone)",
        parameters=[s.TopListQuerySerializer],
        responses=s.ItemSerializer(many=True),
    )
    def get(self, request):
        return super().get(request)


@extend_schema(tags=["items"])
class TopRatedItemsView(_TopListView):
    selector = staticmethod(selectors.item_top_rated)

    @extend_schema(
        operation_id="items_top_rated",
        summary="Best rated items by damped mean (open to everyone)",
        parameters=[s.TopListQuerySerializer],
        responses=s.ItemSerializer(many=True),
    )
    def get(self, request):
        return super().get(request)


# --- My ratings ------------------------------------------------------------------------


@extend_schema(tags=["my ratings"])
class MyRatingListView(generics.GenericAPIView):
    serializer_class = s.RatingSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_ratings_list",
        summary="My ratings",
        parameters=[s.RatingListQuerySerializer],
        responses=s.RatingSerializer(many=True),
    )
    def get(self, request):
        query = validated_query(s.RatingListQuerySerializer, request)
        ratings = selectors.user_rating_list(user=request.user, ordering=query["ordering"])
        page = self.paginate_queryset(ratings)
        return _page_response(self, s.RatingSerializer(page, many=True).data)

    @extend_schema(
        operation_id="me_ratings_create",
        summary="Rate an item (replaces my earlier rating of it)",
        request=s.RatingCreateSerializer,
        responses={
            201: OpenApiResponse(s.RatingSerializer, description="A new rating."),
            200: OpenApiResponse(s.RatingSerializer, description="My earlier rating, replaced."),
        },
    )
    def post(self, request):
        data = s.RatingCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = data.validated_data["item"]
        rating, created = _upsert(user=request.user, item=item, score=data.validated_data["score"])
        return Response(
            s.RatingSerializer(rating).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema(tags=["my ratings"])
class MyRatingDetailView(APIView):
    """My rating of one item, named by the item's id."""

    permission_classes = [IsAuthenticated]

    def _rating_or_404(self, request, item_id: int):
        item = item_or_404(item_id, active_only=False, genres=False)
        rating = selectors.user_rating_for_item(user=request.user, item=item)
        if rating is None:
            raise exceptions.NotFound(f"You have not rated item {item_id}.")
        return rating

    @extend_schema(operation_id="me_ratings_retrieve", responses=s.RatingSerializer)
    def get(self, request, item_id: int):
        return Response(s.RatingSerializer(self._rating_or_404(request, item_id)).data)

    @extend_schema(
        operation_id="me_ratings_put",
        summary="Create or replace my rating of an item",
        request=s.RatingScoreSerializer,
        responses={
            201: OpenApiResponse(s.RatingSerializer, description="A new rating."),
            200: OpenApiResponse(s.RatingSerializer, description="My earlier rating, replaced."),
        },
    )
    def put(self, request, item_id: int):
        item = item_or_404(item_id, active_only=False, genres=False)
        data = s.RatingScoreSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rating, created = _upsert(user=request.user, item=item, score=data.validated_data["score"])
        return Response(
            s.RatingSerializer(rating).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="me_ratings_patch",
        summary="Change my existing rating of an item",
        request=s.RatingPatchSerializer,
        responses=s.RatingSerializer,
    )
    def patch(self, request, item_id: int):
        rating = self._rating_or_404(request, item_id)
        data = s.RatingPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "score" in data.validated_data:
            rating, _ = _upsert(
                user=request.user, item=rating.item, score=data.validated_data["score"]
            )
        return Response(s.RatingSerializer(rating).data)

    @extend_schema(
        operation_id="me_ratings_destroy",
        summary="Remove my rating of an item",
        responses={204: OpenApiResponse(description="Removed.")},
    )
    def delete(self, request, item_id: int):
        item = item_or_404(item_id, active_only=False, genres=False)
        if not services.rating_delete(user=request.user, item=item):
            raise exceptions.NotFound(f"You have not rated item {item_id}.")
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Accounts --------------------------------------------------------------------------


@extend_schema(tags=["auth"])
class RegisterView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [AnonThrottle, AuthThrottle]

    @extend_schema(
        operation_id="auth_register",
        summary="Create an account (the site's password rules apply)",
        request=s.RegisterSerializer,
        responses={201: s.AccountSerializer},
    )
    def post(self, request):
        data = s.RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user, token = account_register(**data.validated_data)
        except IntegrityError:  # the same name registered a moment ago
            raise exceptions.ValidationError(
                {"username": [exceptions.ErrorDetail("That username is taken.", "unique")]}
            ) from None
        body = {
            "id": user.pk,
            "username": user.username,
            "token": token.key,
            "genres": [genre.slug for genre in user_genre_picks(user=user)],
        }
        return Response(s.AccountSerializer(body).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["auth"])
class MyGenresView(APIView):
    """The genres I like: my first suggestions come from them (``me/recommendations/``
    with source ``content``) until I have rated enough items."""

    permission_classes = [IsAuthenticated]

    def _body(self, user):
        return s.GenrePicksSerializer({"genres": user_genre_picks(user=user)}).data

    @extend_schema(
        operation_id="me_genres_retrieve",
        summary="The genres I like",
        responses=s.GenrePicksSerializer,
    )
    def get(self, request):
        return Response(self._body(request.user))

    @extend_schema(
        operation_id="me_genres_update",
        summary="Replace the genres I like (an empty list clears them)",
        request=s.GenrePicksSerializer,
        responses=s.GenrePicksSerializer,
    )
    def put(self, request):
        data = s.GenrePicksSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        genre_picks_set(user=request.user, genres=data.validated_data["genres"])
        return Response(self._body(request.user))


@extend_schema(tags=["auth"])
class TokenView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [AnonThrottle, AuthThrottle]

    @extend_schema(
        operation_id="auth_token",
        summary="Exchange a username and password for an API token",
        request=s.TokenRequestSerializer,
        responses=s.TokenSerializer,
    )
    def post(self, request):
        data = s.TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # With the request, so django-axes counts the attempt toward the sign-in lockout.
        user = authenticate(request, **data.validated_data)
        if getattr(request, "axes_locked_out", False):
            raise LockedOut()  # even with the right password
        if user is None:
            raise exceptions.ValidationError(
                exceptions.ErrorDetail(
                    "Unable to log in with that username and password.", "invalid_credentials"
                )
            )
        token = auth_token_get_or_create(user=user)
        return Response(s.TokenSerializer({"token": token.key}).data)
