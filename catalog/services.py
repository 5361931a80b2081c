"""Writes to the catalogue that span models or keep derived counts in step."""

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.models import ALLOWED_SCORES, HiddenItem, Item, Rating, is_allowed_score
from catalog.signals import hidden_changed, rating_changed


def parse_score(value) -> float:
    """Turn user input into an allowed score, or raise ValidationError naming the reason."""
    if isinstance(value, bool):
        raise ValidationError("A score must be a number.", code="invalid")
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ValidationError("A score must be a number.", code="invalid") from None
    if not is_allowed_score(score):
        raise ValidationError(
            f"A score must be between {ALLOWED_SCORES[0]:g} and {ALLOWED_SCORES[-1]:g} "
            "in steps of 0.5.",
            code="out_of_range",
        )
    return score


def _send_on_commit(signal, sender, **kwargs) -> None:
    """Send ``signal`` once the current transaction commits (never for a rolled-back one)."""
    transaction.on_commit(lambda: signal.send(sender=sender, **kwargs))


def rating_upsert(*, user, item: Item, score) -> Rating:
    """Create or replace ``user``'s rating of ``item`` and keep the item's stats in step."""
    rating, _ = rating_create_or_replace(user=user, item=item, score=score)
    return rating


@transaction.atomic
def rating_create_or_replace(*, user, item: Item, score) -> tuple[Rating, bool]:
    """``rating_upsert``, also saying whether this call created the rating.

    Decided inside the transaction that writes, so of simultaneous first ratings exactly
    one reports created: the insert skips a row that exists (or that a concurrent first
    rating inserted: the database makes it wait for that one's commit), and the rating is
    then locked and replaced (created False).

    Rating an item clears "Not interested" for it (in the same transaction): someone who
    rates a thing is interested enough to have an opinion.

    A new rating is four statements after BEGIN (unhide, insert, the item's counts,
    COMMIT): on PostgreSQL each round trip waits for a server process to be scheduled,
    which on a busy machine is what a PUT's time is made of (bench/scale.py's stream).
    """
    score = parse_score(score)
    if not item.is_active:
        raise ValidationError("This item is no longer available for rating.", code="inactive")
    _unhide(user=user, item=item)
    rating = _rating_insert(user=user, item=item, score=score)
    if rating is not None:
        Item.objects.filter(pk=item.pk).update(
            rating_count=F("rating_count") + 1, rating_sum=F("rating_sum") + score
        )
        _send_on_commit(rating_changed, Rating, user_id=user.pk, item_id=item.pk, score=score)
        return rating, True
    rating = Rating.objects.select_for_update().get(user=user, item=item)
    rating.item = item  # the caller's, so reading its title costs no statement
    delta = score - rating.score
    rating.score = score
    rating.save(update_fields=["score", "updated"])
    if delta:
        Item.objects.filter(pk=item.pk).update(rating_sum=F("rating_sum") + delta)
    _send_on_commit(rating_changed, Rating, user_id=user.pk, item_id=item.pk, score=score)
    return rating, False


def _rating_insert(*, user, item: Item, score: float) -> Rating | None:
    """Insert the rating unless the user rated the item already: the new row, or None.

    One statement, where the ORM needed a savepoint around its INSERT (three round trips)
    to survive the unique constraint's error. ``ON CONFLICT ... DO NOTHING RETURNING``:
    PostgreSQL, and SQLite from 3.35.
    """
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {q(Rating._meta.db_table)} (user_id, item_id, score, created, updated)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, item_id) DO NOTHING RETURNING id",
            [user.pk, item.pk, score, stamp, stamp],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    rating = Rating(id=row[0], user=user, item=item, score=score, created=now, updated=now)
    rating._state.adding = False
    rating._state.db = connection.alias
    return rating


@transaction.atomic
def rating_delete(*, user, item: Item) -> bool:
    """Remove ``user``'s rating of ``item``; returns False when there was none."""
    rating = Rating.objects.select_for_update().filter(user=user, item=item).first()
    if rating is None:
        return False
    rating.delete()
    Item.objects.filter(pk=item.pk).update(
        rating_count=F("rating_count") - 1, rating_sum=F("rating_sum") - rating.score
    )
    _send_on_commit(rating_changed, Rating, user_id=user.pk, item_id=item.pk, score=None)
    return True


def item_stats_refresh(*, item_ids=None) -> int:
    """Recount ``rating_count`` and ``rating_sum`` from the ratings table.

    Used after bulk imports, which write ratings without touching items row by row.
    One UPDATE with correlated subqueries; returns the number of items updated.
    """
    per_item = Rating.objects.filter(item=OuterRef("pk")).values("item")
    items = Item.objects.all() if item_ids is None else Item.objects.filter(pk__in=item_ids)
    return items.update(
        rating_count=Coalesce(Subquery(per_item.annotate(n=Count("pk")).values("n")), Value(0)),
        rating_sum=Coalesce(Subquery(per_item.annotate(s=Sum("score")).values("s")), Value(0.0)),
    )


@transaction.atomic
def item_hide(*, user, item: Item) -> bool:
    """Mark ``item`` "Not interested" for ``user``; returns False when it already was.

    It also removes the user's rating of it, if any (in the same transaction, with the
    item's stats and signal as ``rating_delete``): "Not interested" in something one
    rated 4.5 is a change of mind, and a rating and "Not interested" together would
    contradict each other. The item page says so on the button.
    """
    rating_delete(user=user, item=item)
    _, created = HiddenItem.objects.get_or_create(user=user, item=item)
    if created:
        _send_on_commit(hidden_changed, HiddenItem, user_id=user.pk, item_id=item.pk, hidden=True)
    return created


@transaction.atomic
def item_unhide(*, user, item: Item) -> bool:
    return _unhide(user=user, item=item)


def _unhide(*, user, item: Item) -> bool:
    """``item_unhide`` inside a transaction the caller holds (no savepoint of its own)."""
    deleted, _ = HiddenItem.objects.filter(user=user, item=item).delete()
    if deleted:
        _send_on_commit(hidden_changed, HiddenItem, user_id=user.pk, item_id=item.pk, hidden=False)
    return bool(deleted)
