from django.conf import settings
from django.db import models
from django.db.models import Case, Q, Value, When
from django.urls import reverse

from catalog import blurbs, posters

# Every score a rating may hold: 0.5 to 5 in half steps. Halves are exact in binary
# floating point, so membership is an exact test in Python and in SQL alike.
ALLOWED_SCORES = tuple(step / 2 for step in range(1, 11))


def is_allowed_score(score: float) -> bool:
    return score in ALLOWED_SCORES


def _bit_length(field: str) -> Case:
    """SQL for ``int.bit_length`` of a non-negative 31-bit integer column: 0 for 0, 1 for
    1, k + 1 for 2**k up to 2**(k + 1) - 1. Plain CASE, so any SQLite (the sqlite3 shell
    too) and PostgreSQL compute it."""
    steps = [When(**{f"{field}__gte": 2**k}, then=Value(k + 1)) for k in range(30, -1, -1)]
    return Case(*steps, default=Value(0))


class Genre(models.Model):
    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ItemDisplay:
    """How an item is named, linked and averaged: shared by ``Item`` and the lighter
    ``catalog.cards.ItemCard`` that lists read."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title

    def get_absolute_url(self) -> str:
        return reverse("catalog:item_detail", args=[self.pk])

    @property
    def poster_url(self) -> str:
        """The item's generated poster; the query changes when its title or genres do."""
        names = [genre.name for genre in self.card_genres()]
        version = posters.digest(self.title, self.year, names)
        return f"{reverse('catalog:item_poster', args=[self.pk])}?v={version}"

    @property
    def poster_alt(self) -> str:
        return posters.alt_text(self.title, [genre.name for genre in self.card_genres()])

    @property
    def rating_average(self) -> float | None:
        if not self.rating_count:
            return None
        return self.rating_sum / self.rating_count


class Item(ItemDisplay, models.Model):
    title = models.CharField(max_length=300, db_index=True)
    description = models.TextField(blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    genres = models.ManyToManyField(Genre, related_name="items", blank=True)
    is_active = models.BooleanField(default=True)
    # Where the item came from, e.g. "ml:242" for MovieLens movie 242; lets imports
    # find the items they created before.
    external_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    # Kept in step with the ratings by catalog.services so lists can sort by them
    # without aggregating the ratings table on every page.
    rating_count = models.PositiveIntegerField(default=0)
    rating_sum = models.FloatField(default=0.0)
    # What "most rated" lists walk an index of, before sorting each band by rating_count:
    # the count's bit length, so it changes only when the count crosses a power of two.
    # On PostgreSQL an UPDATE is HOT (no index entry written) only when no indexed column
    # changes; with the index on rating_count itself every rating rewrote all eight of the
    # item's index entries, two of them GIN (the title search). Computed by the database,
    # so every writer of rating_count (the services, the importers) keeps it in step.
    popularity_band = models.GeneratedField(
        expression=_bit_length("rating_count"),
        output_field=models.PositiveSmallIntegerField(),
        db_persist=True,
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        indexes = [
            models.Index(fields=["-popularity_band"], name="item_popularity_band_idx"),
            # The few items staff took out of the catalogue, which every ranking leaves
            # out: one probe, where a scan of the table ran per list refreshed.
            models.Index(fields=["id"], condition=Q(is_active=False), name="item_inactive_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating_count__gte=0) & Q(rating_sum__gte=0),
                name="item_rating_stats_non_negative",
            )
        ]

    def card_genres(self) -> list[Genre]:
        """The genres a list shows (list queries prefetch them); as ``ItemCard``'s."""
        return list(self.genres.all())

    @property
    def blurb(self) -> str:
        """The description, or for an import without one a true sentence made from its
        title, year and genres (written at display time, so every import gets one)."""
        if self.description:
            return self.description
        return blurbs.listing(self.title, self.year, [g.name for g in self.card_genres()])


class Rating(models.Model):
    # No single-column indexes on the foreign keys, and none by item at all: the unique
    # (user, item) constraint serves the lookups by user, and nothing the site does reads
    # ratings by item (pages and the API read by user, items' stats move by deltas; a
    # recount and an item's deletion scan the table once). An index by item, built after
    # SQLite's first import, held the site's writes for its whole build (bench/README,
    # stops 21-22); fewer indexes also mean less to write on every rating.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings",
        db_index=False,
    )  # fmt: skip
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="ratings", db_index=False)
    score = models.FloatField()
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "item"], name="one_rating_per_user_item"),
            models.CheckConstraint(
                condition=Q(score__in=ALLOWED_SCORES), name="rating_score_half_steps"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-updated"], name="rating_user_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user} rated {self.item} {self.score:g}"


class HiddenItem(models.Model):
    """An item a user marked "Not interested": never recommended to them again."""

    # No single-column index on user: the unique (user, item) and the (user, id) indexes
    # lead with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hidden_items",
        db_index=False,
    )  # fmt: skip
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="hidden_by")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "item"], name="one_hide_per_user_item")
        ]
        # The user's newest hidden row (``user_taste_stamp``'s MAX(id)) in one index probe:
        # without it PostgreSQL walked the primary key backwards, filtering by user, through
        # every hidden row of everyone when the user had none.
        indexes = [models.Index(fields=["user", "id"], name="hidden_user_newest_idx")]

    def __str__(self) -> str:
        return f"{self.user} is not interested in {self.item}"
