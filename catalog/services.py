"""Writes to the catalogue that span models or keep derived counts in step."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

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
    one reports created: the existing row is locked, and a concurrent first rating is
    caught by the unique constraint and retried as an update (created False).

    Rating an item clears "Not interested" for it (in the same transaction): someone who
    rates a thing is interested enough to have an opinion.
    """
    score = parse_score(score)
    if not item.is_active:
        raise ValidationError("This item is no longer available for rating.", code="inactive")
    item_unhide(user=user, item=item)
    rating = Rating.objects.select_for_update().filter(user=user, item=item).first()
    if rating is None:
        try:
            with transaction.atomic():
                rating = Rating.objects.create(user=user, item=item, score=score)
        except IntegrityError:
            rating = Rating.objects.select_for_update().get(user=user, item=item)
        else:
            Item.objects.filter(pk=item.pk).update(
                rating_count=F("rating_count") + 1, rating_sum=F("rating_sum") + score
            )
            _send_on_commit(rating_changed, Rating, user_id=user.pk, item_id=item.pk, score=score)
            return rating, True
    delta = score - rating.score
    rating.score = score
    rating.save(update_fields=["score", "updated"])
    if delta:
        Item.objects.filter(pk=item.pk).update(rating_sum=F("rating_sum") + delta)
    _send_on_commit(rating_changed, Rating, user_id=user.pk, item_id=item.pk, score=score)
    return rating, False


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
    deleted, _ = HiddenItem.objects.filter(user=user, item=item).delete()
    if deleted:
        _send_on_commit(hidden_changed, HiddenItem, user_id=user.pk, item_id=item.pk, hidden=False)
    return bool(deleted)
