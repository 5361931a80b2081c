"""Writes about a person's account that span models."""

from django.db import transaction

from accounts.models import GenrePick
from catalog.models import Rating
from catalog.services import item_stats_refresh
from catalog.signals import rating_changed


@transaction.atomic
def account_delete(*, user) -> int:
    """Delete ``user`` with their ratings and hidden items (by cascade); returns how many
    ratings went.

    The rated items' counts and sums are recounted, and once the deletion commits one
    ``rating_changed`` per removed rating (score None) tells the recommendations pipeline,
    whose incremental update drops the user from the live model the same way it handles
    a rating removed by hand; the next full recompute never sees them.
    """
    user_id = user.pk
    item_ids = list(Rating.objects.filter(user=user).values_list("item_id", flat=True))
    user.delete()
    if item_ids:
        item_stats_refresh(item_ids=item_ids)

    def announce():
        for item_id in item_ids:
            rating_changed.send(sender=Rating, user_id=user_id, item_id=item_id, score=None)

    transaction.on_commit(announce)
    return len(item_ids)


@transaction.atomic
def genre_picks_set(*, user, genres) -> None:
    """Make ``genres`` (catalogue ``Genre`` rows) exactly the genres ``user`` picked."""
    wanted = {genre.pk for genre in genres}
    picks = GenrePick.objects.filter(user=user)
    picks.exclude(genre_id__in=wanted).delete()
    have = set(picks.values_list("genre_id", flat=True))
    GenrePick.objects.bulk_create(
        [GenrePick(user=user, genre_id=pk) for pk in sorted(wanted - have)],
        ignore_conflicts=True,  # the same pick saved a moment ago by another request
    )
