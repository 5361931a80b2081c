"""Reads about the signed-in person: their numbers and their data, never anyone else's."""

from dataclasses import dataclass, field

from django.db.models import Avg, Count

from accounts.models import GenrePick
from catalog.models import Genre, HiddenItem, Rating

# A genre needs this many of the user's ratings before "the genres you rate highest"
# names it: one 5-star rating says little about a genre.
MIN_RATINGS_PER_GENRE = 2
TOP_GENRES = 3


@dataclass(frozen=True)
class GenreTaste:
    name: str
    average: float
    count: int


@dataclass(frozen=True)
class Profile:
    rating_count: int
    average: float | None
    hidden_count: int
    top_genres: list[GenreTaste] = field(default_factory=list)


def user_profile(*, user) -> Profile:
    """``user``'s own numbers: how many ratings, their mean, the genres they rate highest
    (mean score, at least ``MIN_RATINGS_PER_GENRE`` ratings in the genre)."""
    ratings = Rating.objects.filter(user=user)
    totals = ratings.aggregate(n=Count("id"), mean=Avg("score"))
    per_genre = (
        ratings.filter(item__genres__isnull=False)
        .values("item__genres__name")
        .annotate(mean=Avg("score"), n=Count("id"))
        .filter(n__gte=MIN_RATINGS_PER_GENRE)
        .order_by("-mean", "-n", "item__genres__name")[:TOP_GENRES]
    )
    return Profile(
        rating_count=totals["n"],
        average=totals["mean"],
        hidden_count=HiddenItem.objects.filter(user=user).count(),
        top_genres=[
            GenreTaste(row["item__genres__name"], row["mean"], row["n"]) for row in per_genre
        ],
    )


def user_genre_picks(*, user) -> list[Genre]:
    """The genres ``user`` said they like, by name; none for a signed-out visitor."""
    if not user.is_authenticated:
        return []
    return list(Genre.objects.filter(pk__in=GenrePick.objects.filter(user=user).values("genre")))


def user_data_rows(*, user) -> dict[str, list[dict]]:
    """Everything the site keeps about ``user``'s taste, for "download my data": their
    ratings (newest first), the items they marked "Not interested" and the genres they
    picked."""
    ratings = [
        {
            "item_id": r.item_id,
            "title": r.item.title,
            "year": r.item.year,
            "score": r.score,
            "rated": r.created.isoformat(),
            "updated": r.updated.isoformat(),
        }
        for r in Rating.objects.filter(user=user).select_related("item").order_by("-updated", "id")
    ]
    hidden = [
        {
            "item_id": h.item_id,
            "title": h.item.title,
            "year": h.item.year,
            "hidden": h.created.isoformat(),
        }
        for h in HiddenItem.objects.filter(user=user).select_related("item").order_by("-id")
    ]
    genres = [{"slug": g.slug, "name": g.name} for g in user_genre_picks(user=user)]
    return {"ratings": ratings, "not_interested": hidden, "genres": genres}
