"""Celery tasks: thin adapters that take ids and call the pipeline (see pipeline.py).

Time limits come from the RECOMMENDATIONS settings at the moment a task is queued; the
decorator values are only the fallback for a task queued by hand.
"""

import logging
import signal
import threading
import time

from billiard import pool as billiard_pool
from celery import chord, shared_task
from celery.exceptions import TimeLimitExceeded
from celery.signals import worker_process_init, worker_ready

from recommendations import cold_start, pipeline, store
from recommendations.conf import get as option

logger = logging.getLogger(__name__)


def limits() -> dict:
    """Soft and hard time limits of every recompute task (the prepare step, each shard,
    each stage's fan-out, publish), from the settings when it is queued."""
    return {
        "soft_time_limit": option("TASK_SOFT_TIME_LIMIT"),
        "time_limit": option("TASK_TIME_LIMIT"),
    }


@shared_task(soft_time_limit=1800, time_limit=1900)
def recompute(run_id: int) -> str | None:
    """Prepare a run, then fan out its stages one after the other, each a chord whose
    callback starts the next (neighbour shards, the merge of the user-user shards' partial
    lists, the stored lists, which read the neighbour rows); the last callback publishes."""
    prepared = pipeline.recompute_prepare(run_id=run_id)
    if prepared is None:
        return None
    version, (first, *later) = prepared
    _fan_out(run_id, version, first, _then(run_id, version, later))
    return version


def _then(run_id: int, version: str, later: list):
    """What follows a stage: the next stage, or publishing after the last."""
    if not later:
        return recompute_publish.si(run_id).set(**limits())
    return recompute_stage.si(run_id, version, later[0], later[1:]).set(**limits())


@shared_task(soft_time_limit=600, time_limit=660)
def recompute_stage(run_id: int, version: str, plan: list, later: list = ()) -> None:
    """A later stage: its shards, then the stages after it (``later``), then publish."""
    try:
        pipeline.recompute_stage_begin(version=version, plan=plan)
        _fan_out(run_id, version, plan, _then(run_id, version, list(later)))
    except Exception as error:  # e.g. the broker is gone: fail the run, free the lock
        pipeline.recompute_fail(run_id=run_id, error=error)
        raise


def _fan_out(run_id: int, version: str, plan: list, callback) -> None:
    # The errback also fires when a hard time limit kills the shard's process, where the
    # shard's own error handling never runs.
    header = [
        recompute_shard.si(run_id, version, kind, start, stop)
        .set(**limits())
        .on_error(recompute_shard_failed.s(run_id))
        for kind, start, stop in plan
    ]
    chord(header)(callback)


@shared_task(bind=True, soft_time_limit=1800, time_limit=1900)
def recompute_shard(self, run_id: int, version: str, kind: str, start: int, stop: int) -> int:
    _hard, soft = self.request.timelimit or (None, None)
    with _SoftTimeLimitWatch(soft or self.soft_time_limit) as watch:
        return pipeline.recompute_shard(
            run_id=run_id, version=version, kind=kind, start=start, stop=stop,
            time_limit=watch.exceeded,
        )  # fmt: skip


class _SoftTimeLimitWatch:
    """Whether the task's soft time limit fired while the block ran.

    The pool delivers the soft limit as a signal to the process running the task, whose
    handler raises ``SoftTimeLimitExceeded`` wherever the task happens to be. The code it
    interrupts may catch that and raise something else (numba's compiler did: "no compiled
    object yet for <Library ...>"), so the exception that surfaces cannot say; this wraps
    the pool's handler for the block's duration and notes that it ran. Outside a prefork
    pool process (eager tasks, the solo pool: no soft limits there) it notes nothing.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = False
        self._previous = None

    def __enter__(self) -> "_SoftTimeLimitWatch":
        signum = getattr(billiard_pool, "SIG_SOFT_TIMEOUT", None)
        if signum is None or threading.current_thread() is not threading.main_thread():
            return self
        handler = signal.getsignal(signum)
        if handler is getattr(billiard_pool, "soft_timeout_sighandler", None):
            self._previous = handler
            signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum, frame) -> None:
        self.fired = True
        self._previous(signum, frame)

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(billiard_pool.SIG_SOFT_TIMEOUT, self._previous)
            self._previous = None

    def exceeded(self) -> float | None:
        """The soft limit in seconds once it has fired, else None."""
        return self.seconds if self.fired else None


@shared_task
def recompute_shard_failed(request, exc, traceback, run_id: int) -> None:
    """Errback of a shard (Celery passes the failed request, exception and traceback).

    A shard that raised has recorded its own failure by now; what only this sees is the
    hard time limit, which kills the shard's process before its own handling runs.
    """
    seconds = exc.args[0] if isinstance(exc, TimeLimitExceeded) and exc.args else None
    pipeline.recompute_fail(run_id=run_id, error=exc, time_limit=seconds)


@shared_task(soft_time_limit=600, time_limit=660)
def recompute_publish(run_id: int) -> str:
    return pipeline.recompute_publish(run_id=run_id)


@shared_task
def scheduled_recompute() -> int:
    """What beat runs: record a run and start it."""
    run = pipeline.recompute_start(trigger="schedule")
    return run.pk


# Broker priorities (the Redis transport's, 0 first; a task queued without one has 0). The
# rows a rating changes are what the user's panels read at once, so under a burst of
# ratings the updates go first: a stored list waiting behind them is ranked live by reads
# meanwhile (its stamp no longer matches), and the deferred rows of popular items only
# stay as they were a little longer. In one first-in-first-out queue each update waited
# behind the list refreshes the updates before it queued (bench/scale.py's stream: one per
# rating, as most of its 2,000 users rate once).
ITEM_ROWS_PRIORITY = 6
LIST_PRIORITY = 9


# A warm update takes milliseconds; the limits are for a process's first one, which maps
# the version (and, first on its machine, copies it from Redis and derives its arrays:
# tens of seconds at 25M ratings).
@shared_task(soft_time_limit=300, time_limit=330)
def model_update(user_id: int) -> str | None:
    """Refresh one user's row and their changed items' rows in the live version, then queue
    the refresh of their stored list, unless one is queued already.

    The list is its own task so that the rows, which the user's panels read at once, wait
    for no ranking; and several ratings of a user made while it waits share one refresh.
    Meanwhile reads rank the user's list live (its stamp no longer matches). The rows of
    popular items this process keeps no sums for are deferred too (``item_rows_refresh``).
    """
    item_ids = store.pending_take(user_id)
    version = pipeline.model_rows_update(user_id=user_id, item_ids=item_ids, defer=True)
    if version is not None and store.list_refresh_claim(user_id):
        ready_list_refresh.apply_async((user_id,), retry=False, priority=LIST_PRIORITY)
    return version


@shared_task(soft_time_limit=300, time_limit=330)
def item_rows_refresh() -> str | None:
    """Write the rows of every popular item deferred since the last run (coalesced: one
    queued at a time; the limits as ``model_update``'s, for a process's first)."""
    user_ids, item_ids = store.item_rows_take()
    if not item_ids:
        return None
    return pipeline.item_rows_refresh(user_ids=user_ids, item_ids=item_ids)


@shared_task(soft_time_limit=60, time_limit=90)
def ready_list_refresh(user_id: int) -> str | None:
    """Store one user's list as ranked now (coalesced: see ``model_update``)."""
    store.list_refresh_take(user_id)
    return pipeline.ready_list_refresh(user_id=user_id)


# One item's row is a sparse product and a few Redis round trips (bench/cold_start.py);
# a process's first also maps the version's content model.
@shared_task(soft_time_limit=120, time_limit=150)
def content_item_update(item_ids: list[int]) -> str | None:
    """Give items added or changed since the recompute their content rows at once."""
    return cold_start.content_item_update(item_ids=item_ids)


@shared_task
def model_watch() -> int | None:
    """What beat runs every minute: start a recompute when no model is published and none
    is on its way. Redis keeps no files, so a Redis that crashed and was restarted (the
    launcher restarts it) comes back empty; without this the site served the popular
    fallback until the next scheduled recompute, up to an hour later."""
    run = start_if_no_model(trigger="no model")
    return run.pk if run is not None else None


def start_if_no_model(*, trigger: str):
    """A new run when nothing is published, no run holds the lock and the latest run is
    not still queued or running; else None. Never raises (Redis may be down)."""
    from recommendations.models import RecomputeRun

    try:
        if store.live_model() is not None or store.lock_holder() is not None:
            return None
        latest = pipeline.recompute_latest()
        if latest is not None and latest.status in (
            RecomputeRun.Status.QUEUED,
            RecomputeRun.Status.RUNNING,
        ):
            return None
        return pipeline.recompute_start(trigger=trigger)
    except Exception as error:
        logger.warning("could not check for a published model: %s", error)
        return None


@worker_ready.connect
def _first_model(sender=None, **kwargs) -> None:
    """On a fresh install nothing is published yet: start the first recompute at once."""
    if option("RECOMPUTE_ON_WORKER_START"):
        start_if_no_model(trigger="first start")


@worker_process_init.connect
def _warm_update_path(sender=None, **kwargs) -> None:
    """A new worker process loads the live version for its updates (the snapshot, the
    patchable model, the compiled kernels) in a thread as it starts, so the first rating
    it handles waits for no load, or only for what is left of it (seconds at 1M ratings,
    tens of seconds at 25M). Not in the handler itself: Celery kills a process whose
    start takes more than a few seconds."""
    if option("UPDATE_WARM_ON_START"):
        threading.Thread(target=_warm, name="update-warm", daemon=True).start()


def _warm() -> None:
    started = time.monotonic()
    try:
        version = pipeline.model_update_warm()
    except Exception as error:  # Redis down, snapshot gone: the first update loads it
        logger.warning("could not warm the update path: %s", error)
        return
    if version is not None:
        logger.info("update path of %s warmed in %.1f s", version, time.monotonic() - started)
