"""Signal receivers: a committed rating or "Not interested" change queues the update."""

import logging
import time

import redis

from recommendations import store
from recommendations.conf import get as option

logger = logging.getLogger(__name__)


def queue_incremental_update(sender, *, user_id: int, item_id: int, **kwargs) -> None:
    """Queue (debounced per user) the update of this user's and item's neighbour rows.

    Runs after commit. Rating must never fail because Redis or the broker is down: the
    next full recompute catches up, so errors are logged, not raised.
    """
    _queue(user_id, item_id)


def queue_list_refresh(sender, *, user_id: int, item_id: int, **kwargs) -> None:
    """An item hidden or unhidden: only the user's stored recommendation list is redone."""
    _queue(user_id, None)


def queue_catch_up(user_id: int, item_id: int) -> None:
    """A reader found no row for this user in the live model (they rated while it was
    being built, when no update could run): queue the update that adds it, debounced
    like a rating's, so repeated reads queue it once."""
    _queue(user_id, item_id)


def _queue(user_id: int, item_id: int | None) -> None:
    from recommendations import tasks

    try:
        if store.pending_add(user_id, item_id):
            # No countdown unless one is set: a countdown makes the task wait in the
            # worker's timer, and delays every rating's update by that much.
            countdown = option("DEBOUNCE_SECONDS") or None
            tasks.model_update.apply_async((user_id,), countdown=countdown, retry=False)
    except Exception as error:
        logger.warning("could not queue the model update for user %s: %s", user_id, error)


def catalogue_edited(sender=None, **kwargs) -> None:
    """An item or a genre saved or deleted, an item's genres changed, or a bulk write of
    them (``catalog.signals.catalogue_changed``): a new catalogue generation, so no
    process serves a cached title, year or genre list from before
    (``catalog.selectors.item_cards``).

    Bumped at once and again after commit: a reader between the two may cache what the
    database showed before the commit, under the first new generation; the second drops
    it. Never raises: an edit must not fail because Redis is away (cards cached then
    expire by age, ``catalog.cards.STATIC_MAX_AGE``).
    """
    from django.db import transaction

    if kwargs.get("action", "post_").startswith("pre_"):
        return  # m2m_changed: only after the change
    _bump()
    transaction.on_commit(_bump)


_bump_failed_at = [float("-inf")]


def _bump() -> None:
    try:
        store.catalogue_generation_bump()
    except Exception as error:
        # Once a minute at most. Redis not running at all (``seed_demo`` under ``make run``
        # edits before Redis is up) is only noted: with no Redis no process reads the
        # generation, and cards cached before it went away expire by age.
        if time.monotonic() - _bump_failed_at[0] > 60:
            refused = isinstance(error, redis.exceptions.ConnectionError)
            log = logger.info if refused else logger.warning
            log("could not end the catalogue generation: %s", error)
            _bump_failed_at[0] = time.monotonic()
