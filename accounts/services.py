"""Writes about a person's account that span models."""

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from accounts.models import GenrePick
from catalog.models import Rating
from catalog.services import items_stats_move
from catalog.signals import rating_changed


@transaction.atomic
def account_delete(*, user) -> int:
    """Delete ``user`` with their ratings and hidden items (by cascade); returns how many
    ratings went.

    The ratings are deleted first, each row's score taken out of its item's count and
    sum in the same transaction (grouped by item: ``items_stats_move``), so the cost is
    the user's rows, not a recount of their items' ratings. The user's row is locked
    before: on PostgreSQL a rating of theirs committing meanwhile needs that row (its
    foreign key's check), so none slips in between the rows read and the cascade. Once the
    deletion commits, one ``rating_changed`` per removed rating (score None) tells the
    recommendations pipeline, whose incremental update drops the user from the live model
    the same way it handles a rating removed by hand; the next full recompute never sees
    them.
    """
    user_id = user.pk
    list(get_user_model().objects.select_for_update().filter(pk=user_id).values_list("pk"))
    rating = connection.ops.quote_name(Rating._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {rating} WHERE user_id = %s RETURNING item_id, score", [user_id]
        )
        removed = cursor.fetchall()
    items_stats_move((item_id, -1, -score) for item_id, score in removed)
    user.delete()
    item_ids = [item_id for item_id, _ in removed]

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
