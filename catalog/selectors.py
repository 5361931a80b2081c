"""Reads of the catalogue that pages and the API share."""

from django.db.models import F, FloatField, QuerySet
from django.db.models.functions import Cast, NullIf

from catalog.models import Genre, HiddenItem, Item, Rating

ITEM_ORDERINGS = {
    "title": ("title", "id"),
    "-title": ("-title", "-id"),
    "year": (F("year").asc(nulls_last=True), "id"),
    "-year": (F("year").desc(nulls_last=True), "id"),
    "average": (F("average").asc(nulls_last=True), "id"),
    "-average": (F("average").desc(nulls_last=True), "id"),
    "count": ("rating_count", "id"),
    "-count": ("-rating_count", "id"),
}


def item_list(
    *, search: str = "", genre: str = "", ordering: str = "-count", active_only: bool = True
) -> QuerySet[Item]:
    """Items matching a title search and a genre slug, with ``average`` annotated.

    ``ordering`` is one of ``ITEM_ORDERINGS``; an unknown value raises ValueError.
    """
    if ordering not in ITEM_ORDERINGS:
        raise ValueError(f"unknown ordering {ordering!r}; use one of {sorted(ITEM_ORDERINGS)}")
    items = Item.objects.all()
    if active_only:
        items = items.filter(is_active=True)
    if search:
        items = items.filter(title__icontains=search.strip())
    if genre:
        items = items.filter(genres__slug=genre)
    items = items.annotate(average=_average_expression())
    return items.order_by(*ITEM_ORDERINGS[ordering]).prefetch_related("genres")


def _average_expression():
    # NULL for unrated items (the division by a NULLIF'd zero), so they sort last.
    return Cast(F("rating_sum"), FloatField()) / NullIf(F("rating_count"), 0)


def genre_list() -> QuerySet[Genre]:
    return Genre.objects.all()


def user_rating_for_item(*, user, item: Item) -> Rating | None:
    if not user.is_authenticated:
        return None
    return Rating.objects.filter(user=user, item=item).first()


def user_scores_for_items(*, user, item_ids) -> dict[int, float]:
    """The user's score per item id, for marking lists with "you rated"."""
    if not user.is_authenticated:
        return {}
    return dict(
        Rating.objects.filter(user=user, item_id__in=list(item_ids)).values_list("item_id", "score")
    )


def user_rating_list(*, user, ordering: str = "-updated") -> QuerySet[Rating]:
    allowed = {"-updated", "updated", "-score", "score", "item__title", "-item__title"}
    if ordering not in allowed:
        raise ValueError(f"unknown ordering {ordering!r}; use one of {sorted(allowed)}")
    return Rating.objects.filter(user=user).select_related("item").order_by(ordering, "id")


def global_mean_score() -> float | None:
    """The mean of all ratings, from the per-item sums (one small aggregate)."""
    from django.db.models import Sum

    totals = Item.objects.aggregate(n=Sum("rating_count"), s=Sum("rating_sum"))
    return totals["s"] / totals["n"] if totals["n"] else None


def item_top_rated(*, genre: str = "", limit: int = 10, prior_weight: int = 10) -> list[Item]:
    """Items by damped mean: (sum + m * C) / (count + m), C the global mean, m prior_weight.

    A damped (Bayesian) mean keeps an item rated 5 by one person below one rated 4.6 by
    three hundred.
    """
    from django.db.models import Value

    prior = global_mean_score()
    if prior is None:
        return []
    items = Item.objects.filter(is_active=True, rating_count__gt=0)
    if genre:
        items = items.filter(genres__slug=genre)
    damped = (F("rating_sum") + Value(prior * prior_weight)) / (
        Cast(F("rating_count"), FloatField()) + Value(float(prior_weight))
    )
    return list(
        items.annotate(damped_mean=damped, average=_average_expression())
        .order_by("-damped_mean", "id")
        .prefetch_related("genres")[:limit]
    )


def item_most_popular(*, genre: str = "", limit: int = 10) -> list[Item]:
    return list(item_list(genre=genre, ordering="-count")[:limit])


def user_hidden_item_ids(*, user) -> set[int]:
    if not user.is_authenticated:
        return set()
    return set(HiddenItem.objects.filter(user=user).values_list("item_id", flat=True))
