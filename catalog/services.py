"""Writes to the catalogue that span models or keep derived counts in step."""

from django.core.exceptions import ValidationError
from django.db import connection, transaction
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
        item_stats_move(item_id=item.pk, count=1, total=score)
        _send_on_commit(rating_changed, Rating, user_id=user.pk, item_id=item.pk, score=score)
        return rating, True
    rating = Rating.objects.select_for_update().get(user=user, item=item)
    rating.item = item  # the caller's, so reading its title costs no statement
    delta = score - rating.score
    rating.score = score
    rating.save(update_fields=["score", "updated"])
    if delta:
        item_stats_move(item_id=item.pk, count=0, total=delta)
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
    item_stats_move(item_id=item.pk, count=-1, total=-rating.score)
    _send_on_commit(rating_changed, Rating, user_id=user.pk, item_id=item.pk, score=None)
    return True


def item_stats_move(*, item_id: int, count: int, total: float) -> None:
    """Add ``count`` and ``total`` to the item's ``rating_count`` and ``rating_sum``."""
    items_stats_move([(item_id, count, total)])


def items_stats_move(changes) -> int:
    """Add each (item id, count, total) of ``changes`` to the item's ``rating_count`` and
    ``rating_sum``, summed per item first (a rating's removal: (item, -1, -score)); returns
    how many items moved. The one way ratings' writes move the stats, one rating or many.

    Increments, not values read and written back: they add up with every other writer's
    in any order (on PostgreSQL a HOT update: no index covers the counts). One statement
    run once per item (prepared once: the ORM's ``update()`` compiled ~1 ms an item, which
    a deletion of a user's thousands of ratings paid per item), in item id order, so two
    such writers lock the items in the same order. What it costs is the changed rows,
    never a recount of the items' ratings (there is no index of the ratings by item: a
    recount of an item scans the table)."""
    moved: dict[int, list] = {}
    for item_id, count, total in changes:
        sums = moved.setdefault(int(item_id), [0, 0.0])
        sums[0] += count
        sums[1] += total
    rows = [(count, total, pk) for pk, (count, total) in sorted(moved.items()) if count or total]
    items_stats_add(rows)
    return len(rows)


def items_stats_add(rows) -> None:
    """``items_stats_move``'s statement for changes already summed per item: (count,
    total, item id) rows, one per item, in item id order (imports sum theirs with numpy)."""
    item = connection.ops.quote_name(Item._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {item} SET rating_count = rating_count + %s, "
            "rating_sum = rating_sum + %s WHERE id = %s",
            rows,
        )


# Ids bound in one recount statement: under SQLite's oldest limit on parameters (999).
_REFRESH_IDS = 500


def item_stats_refresh(*, item_ids=None) -> int:
    """Recount ``rating_count`` and ``rating_sum`` from the ratings table, for every item
    or those in ``item_ids``; returns how many items' stats changed.

    For bulk writes that did not move the stats (``seed_demo``) and for repair, not for a
    rating's write (those move them: ``item_stats_move``). One statement per 500 ids
    (one for all items): the ratings grouped by item in one scan (there is no index of
    the ratings by item, so a recount per item would scan the table once per item), and
    only items whose stats differ written.
    """
    if item_ids is None:
        return _item_stats_recount(None)
    ids = sorted({int(pk) for pk in item_ids})
    return sum(
        _item_stats_recount(ids[at : at + _REFRESH_IDS]) for at in range(0, len(ids), _REFRESH_IDS)
    )


def _item_stats_recount(ids: list[int] | None) -> int:
    """``item_stats_refresh`` of the items ``ids`` (None: all) in one statement."""
    q = connection.ops.quote_name
    item, rating = q(Item._meta.db_table), q(Rating._meta.db_table)
    rated = listed = ""
    if ids is not None:
        marks = ", ".join(["%s"] * len(ids))
        rated, listed = f" WHERE item_id IN ({marks})", f" WHERE i.id IN ({marks})"
    sql = (
        f"UPDATE {item} SET rating_count = d.n, rating_sum = d.s FROM (SELECT i.id, "
        "COALESCE(g.n, 0) AS n, COALESCE(g.s, 0.0) AS s "
        f"FROM {item} i LEFT JOIN (SELECT item_id, COUNT(*) AS n, SUM(score) AS s "
        f"FROM {rating}{rated} GROUP BY item_id) g ON g.item_id = i.id{listed}) d "
        f"WHERE {item}.id = d.id AND ({item}.rating_count <> d.n OR {item}.rating_sum <> d.s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(ids or ()), *(ids or ())])
        return cursor.rowcount


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
