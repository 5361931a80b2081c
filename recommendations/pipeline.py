"""The pipeline that keeps the published model fresh: the full recompute (prepare, shards,
publish) and the incremental update after a rating, with the per-process model state
they share (:class:`ModelState`).

Reads never come here: pages and the API use ``reads``; both rank through ``ranking``.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog import selectors as catalog_selectors
from recommendations import build, cold_start, model_scoring, ranking, rating_model, reads, store
from recommendations.conf import get as option
from recommendations.incremental import PatchableModel
from recommendations.models import RecomputeRun

logger = logging.getLogger(__name__)


# -- the recompute ----------------------------------------------------------------------------
def recompute_start(*, requested_by=None, trigger: str = "manual") -> RecomputeRun:
    """Record a run and queue it on Celery once the transaction commits."""
    from recommendations import tasks

    run = RecomputeRun.objects.create(requested_by=requested_by, trigger=trigger)
    transaction.on_commit(lambda: tasks.recompute.apply_async((run.pk,), **tasks.limits()))
    return run


def recompute_latest() -> RecomputeRun | None:
    return RecomputeRun.objects.order_by("-created", "-id").first()


def _holder(run_id: int) -> str:
    return f"run:{run_id}"


def recompute_prepare(*, run_id: int, progress=None) -> tuple[str, list[list]] | None:
    """Claim the lock, snapshot the ratings, plan the shards. None when another run is active.

    Returns the version and its stages of (kind, start, stop) shards, each stage starting
    when the one before has finished: the neighbour rows (for user-user, the symmetric
    pass's shards: partial lists) and the ranking model (kind "model", one task, first as
    it takes longest), the merge of the user-user partial lists into rows, then the stored
    lists (which read the neighbour rows and the model).
    """
    if not RecomputeRun.objects.filter(pk=run_id).exists():  # before taking the lock
        raise RecomputeRun.DoesNotExist(f"no recompute run {run_id}")
    Status = RecomputeRun.Status
    if not store.lock_acquire(_holder(run_id), option("LOCK_TTL_SECONDS")):
        holder = store.lock_holder() or "another run"
        RecomputeRun.objects.transition(
            run_id,
            Status.SKIPPED,
            finished=timezone.now(),
            error=f"Another recompute ({holder}) was running.",
        )
        return None
    # Holding the lock, no other run can be alive: any still marked running lost its worker
    # (its lock lapsed, so it can no longer publish: ``store.publish`` checks the holder).
    # A run that published and released the lock a moment ago is marking itself succeeded.
    lost = RecomputeRun.objects.filter(status=Status.RUNNING).exclude(pk=run_id)
    live = store.live_model()
    if live is not None:
        lost = lost.exclude(version=live.version)
    for pk in lost.values_list("pk", flat=True):
        RecomputeRun.objects.transition(
            pk,
            Status.FAILED,
            finished=timezone.now(),
            error="Its worker stopped before it finished (the lock lapsed).",
        )
    started = timezone.now()
    # The random part keeps names unique across databases (tests, a restored backup), as
    # machines cache snapshots by version name.
    version = f"{started.strftime('%Y%m%dT%H%M%S')}-{run_id}-{secrets.token_hex(3)}"
    claimed = RecomputeRun.objects.transition(
        run_id, Status.RUNNING, started=started, version=version
    )
    if not claimed:
        # Not queued any more: a task delivered twice, or a run failed before it started.
        store.lock_release(_holder(run_id))
        return None
    try:
        # Reading and storing the snapshot grows with the ratings (minutes at 25M): the
        # lock's heartbeat runs meanwhile, as during a shard.
        with _LockHeartbeat(_holder(run_id)) as heartbeat:
            # The live version's state (the update path's, warmed as the process started)
            # would sit under the snapshot's arrays: dropped first (see model_state_release).
            model_state_release()
            context = build.snapshot_list_context()  # before the ratings: see its docstring
            arrays = build.snapshot_arrays(build.snapshot_ratings(progress=progress), context)
            ttl = option("BUILD_TTL_SECONDS")
            store.snapshot_put(version, arrays, ttl=ttl)
            # This machine's copy written from the arrays at hand (no Redis read later);
            # the arrays then freed and the state mapped from it, as a shard's is, so the
            # derived arrays are saved beside it once and the stages that follow in this
            # process start from mapped pages rather than a gigabyte of copies at 25M.
            store.snapshot_cache_put(version, arrays)
            del arrays
            model_state_release()
            state = _load_state(version)
            _model_state_set(state)
            # The update state's arrays over all ratings too (residuals, item-major weights,
            # squared norms), so that no update (the first after the publish, or after a
            # heavy step released the state) makes them: each process then loads the state
            # in O(users + items), mapping them (see incremental.base_arrays).
            PatchableModel.derive(state.inputs)
            arrays, inputs = state.arrays, state.inputs
            store.write_biases(version, build.bias_fields(inputs), ttl=ttl)
            n_content = cold_start.content_fit(version, arrays, ttl=ttl)
            stages = [
                _model_plan()
                + build.shard_plan(inputs, option("SHARDS"))
                + cold_start.content_plan(version, n_content, option("SHARDS")),
                build.merge_plan(inputs, option("SHARDS")),
                build.ready_plan(inputs, option("SHARDS"), arrays["ready_user"]),
            ]
            RecomputeRun.objects.filter(pk=run_id).update(
                shards_total=sum(map(len, stages)),
                n_ratings=inputs.matrix.nnz,
                n_users=inputs.matrix.n_users,
                n_items=inputs.matrix.n_items,
            )
        if heartbeat.lost:
            raise store.LockLost(_holder(run_id))
    except Exception as error:
        recompute_fail(run_id=run_id, error=error)
        raise
    return version, stages


def _model_plan() -> list[tuple[str, int, int]]:
    """The models' tasks, one each: the ranking model ("model") and the rating model
    ("fm", rating_model.py), first in their stage as they take longest."""
    plan = [("model", 0, 1)] if model_scoring.enabled() else []
    return plan + ([("fm", 0, 1)] if rating_model.enabled() else [])


# Tasks that store what they compute themselves (a model's array set, content rows):
# kind -> (version, start, stop, ttl) -> what was written. The models fit on the snapshot's
# arrays alone; their fits need the most memory of the recompute (GBs at 25M), so the
# process's state is released first and only the arrays they read are mapped (the state's
# mapped pages, the derived arrays' too, count in the process's resident set: 1 GB at 25M).
_STORES_ITS_OWN = {
    "model": lambda version, start, stop, ttl: model_scoring.fit_and_store(
        version, _snapshot_alone(version), ttl=ttl
    ),
    "fm": lambda version, start, stop, ttl: rating_model.fit_and_store(
        version, _snapshot_alone(version), ttl=ttl
    ),
    # content rows ("also liked" for unrated items, starter lists)
    "ic": lambda version, start, stop, ttl: cold_start.content_shard(version, start, stop, ttl=ttl),
}


def _snapshot_alone(version: str) -> dict:
    """The version's snapshot arrays, mapped, with nothing else held by this process."""
    model_state_release()
    return store.snapshot_get(version)


def recompute_shard(
    *, run_id: int, version: str, kind: str, start: int, stop: int, time_limit=None
) -> int:
    """Compute and store one row range of the new version (for a symmetric pass's shard,
    "uu:pairs", its partial lists; for "model", "fm" and "ic", see ``_STORES_ITS_OWN``);
    returns the rows written.

    ``time_limit``, from the task: called after a failure, the seconds of the task's time
    limit if it fired meanwhile (else None), so the run records the limit and not only
    whatever the interrupted code raised.
    """
    if not store.lock_extend(_holder(run_id), option("LOCK_TTL_SECONDS")):
        raise store.LockLost(_holder(run_id))
    cost = _ShardCost(kind, start, stop)
    try:
        partial = None
        with _LockHeartbeat(_holder(run_id)) as heartbeat:
            rows = None
            ttl = option("BUILD_TTL_SECONDS")
            state = None if kind in _STORES_ITS_OWN else model_state(version)
            if kind in _STORES_ITS_OWN:
                written = _STORES_ITS_OWN[kind](version, start, stop, ttl)
            elif kind == "ready":
                model = model_scoring.parts_for(version)
                rows = build.compute_ready(
                    state.inputs, state.list_inputs(), start, stop, model=model
                )
            elif kind.endswith(build.PAIRS):
                partial = build.compute_pairs(state.inputs, kind, start, stop)
            elif kind.endswith(build.MERGE):
                rows = build.compute_merged(state.inputs, version, kind, start, stop)
                kind = kind.removesuffix(build.MERGE)
            else:
                rows = build.compute_rows(state.inputs, kind, start, stop)
            if heartbeat.lost:
                raise store.LockLost(_holder(run_id))
            # (written under the heartbeat too: at 25M ratings a shard's partial lists
            # are a few hundred MB)
            if partial is not None:
                for group, arrays in partial.items():
                    store.partial_put(version, group, arrays, ttl=ttl)
                written = sum(len(arrays["indices"]) for arrays in partial.values())
            elif rows is not None:
                store.write_rows(version, kind, rows, ttl=ttl)
                written = len(rows)
        partial = rows = None
        memory_give_back()  # what the shard freed, before the next task of this process
        RecomputeRun.objects.filter(pk=run_id, status=RecomputeRun.Status.RUNNING).update(
            shards_done=F("shards_done") + 1
        )
        store.lock_extend(_holder(run_id), option("LOCK_TTL_SECONDS"))
        cost.log(written)
        return written
    except Exception as error:
        recompute_fail(run_id=run_id, error=error, time_limit=time_limit and time_limit())
        raise


class _ShardCost:
    """One INFO line per shard: kind, rows, wall seconds, CPU seconds and memory, so a
    recompute measured on a loaded machine still tells each stage's CPU cost (wall time
    there is mostly waiting for a core).

    CPU is ``time.process_time``: every thread of this process (numba's, BLAS's and
    implicit's threads count, and the shard runs alone in its pool process). Memory is
    the resident set at the start and at the end (after ``memory_give_back``) and the
    process's peak so far (``VmHWM``): the peak is not reset per shard, since
    bench/scale.py reads it as the worker's peak; when it grew during the shard
    (``peak_rss_mib`` > ``peak_before_mib``), this shard set it.
    """

    def __init__(self, kind: str, start: int, stop: int):
        self.kind, self.start, self.stop = kind, start, stop
        self.rss, self.peak = _proc_status_mib("VmRSS"), _proc_status_mib("VmHWM")
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def fields(self, rows: int) -> dict:
        return {
            "kind": self.kind,
            "start": self.start,
            "stop": self.stop,
            "rows": rows,
            "wall_s": round(time.perf_counter() - self.wall, 3),
            "cpu_s": round(time.process_time() - self.cpu, 3),
            "rss_start_mib": self.rss,
            "peak_before_mib": self.peak,
            "peak_rss_mib": _proc_status_mib("VmHWM"),
            "rss_end_mib": _proc_status_mib("VmRSS"),
        }

    def log(self, rows: int) -> None:
        logger.info(
            "recompute shard %s",
            " ".join(f"{k}={v}" for k, v in self.fields(rows).items()),
        )


def _proc_status_mib(field: str) -> int | None:
    """This process's ``field`` of /proc/self/status (VmRSS, VmHWM) in MiB; None where
    there is no /proc (not Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


class _LockHeartbeat:
    """Extends the recompute lock every third of its TTL while a shard computes, so the
    TTL only has to outlast a stalled worker, not the longest shard. (The engine's kernels
    release the GIL, so this thread runs while they do.) ``lost`` turns True when an
    extension finds the lock gone or held by another run."""

    def __init__(self, holder: str):
        self.holder = holder
        self.ttl = option("LOCK_TTL_SECONDS")
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="recompute-lock", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if not store.lock_extend(self.holder, self.ttl):
                    self.lost = True
                    return
            except Exception as error:  # Redis blipped: try again next beat
                logger.warning("could not extend the recompute lock: %s", error)

    def __enter__(self) -> _LockHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def recompute_stage_begin(*, version: str, plan: list) -> None:
    """Before a stage's shards: a stage that merges no partial lists comes after the merge,
    so the partial lists of ``version`` are deleted (they are as big as the lists)."""
    if not any(kind.endswith(build.MERGE) for kind, _, _ in plan):
        store.partial_drop(version)


def recompute_publish(*, run_id: int) -> str:
    """Check the new version is complete and the run still running and holding the lock,
    then flip the live pointer and release the lock in one step, then mark it succeeded.

    A run declared lost (failed by the next run, which holds the lock since) can never
    publish: the flip happens only while this run holds the lock (``store.publish``).
    """
    run = RecomputeRun.objects.get(pk=run_id)
    try:
        if run.status != RecomputeRun.Status.RUNNING:
            raise RunNotRunning(f"run {run_id} is {run.status}, not running; not published")
        inputs = model_state(run.version).inputs
        expected = {kind: inputs.n_rows(kind) for kind in build.ROW_KINDS}
        expected.update({kind: 1 for kind, _, _ in _model_plan()})
        expected["ic"] = cold_start.content_expected_rows(run.version)
        parts = model_scoring.parts_for(run.version)
        meta = {
            "version": run.version,
            "run": run_id,
            "created": datetime.now(UTC).isoformat(),
            "n_ratings": inputs.matrix.nnz,
            "n_users": inputs.matrix.n_users,
            "n_items": inputs.matrix.n_items,
            "n_ready_lists": store.rows_written(run.version).get("ready", 0),
            "settings": {
                name: option(name)
                for name in (
                    "ITEM_K",
                    "USER_K",
                    "PREDICT_K",
                    "PREDICT_SHRINKAGE",
                    "USER_WEIGHT",
                    "READY_LIST_LENGTH",
                )  # fmt: skip
            },
            "model": None if parts is None else model_summary(parts),
        }
        store.publish(run.version, meta, expected_rows=expected, holder=_holder(run_id))
    except Exception as error:
        recompute_fail(run_id=run_id, error=error)
        raise
    if not RecomputeRun.objects.transition(
        run_id, RecomputeRun.Status.SUCCEEDED, finished=timezone.now()
    ):
        logger.error("run %s published %s but was no longer running", run_id, run.version)
    return run.version


def model_summary(parts: model_scoring.ModelParts) -> dict:
    """What a version's meta says of its ranking model (admin, health, benchmarks)."""
    config = parts.config
    return {
        "n_items": parts.n_items,
        "n_items_without_ratings": int((~parts.warm).sum()),
        **{k: config.get(k) for k in ("weights", "validation", "tuned", "fit_seconds")},
    }


class RunNotRunning(RuntimeError):
    """A step of a run that is no longer running (failed, or finished already)."""


def recompute_fail(*, run_id: int, error, time_limit: float | None = None) -> None:
    """Drop the run's half-built version, free the lock, then mark it failed. Never raises.

    The status comes last, so whoever sees "failed" also sees the lock free. A version
    that went live is never dropped, a lock another run holds never freed, and a run that
    finished keeps its status.

    ``time_limit``: the seconds of the task's time limit when it fired during the failed
    step. The error then names it first, before the exception that surfaced (which is not
    always the limit's own: the code it interrupted may raise another).
    """
    message = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    if time_limit is not None:
        message = f"Time limit of {time_limit:g} s exceeded. {message}"
    try:
        run = RecomputeRun.objects.get(pk=run_id)
        try:
            if run.version:
                store.discard(run.version)
            store.lock_release(_holder(run_id))
        except Exception:
            logger.exception("could not clean up after recompute run %s", run_id)
        RecomputeRun.objects.transition(
            run_id, RecomputeRun.Status.FAILED, finished=timezone.now(), error=message[:2000]
        )
    except Exception:
        logger.exception("could not record the failure of recompute run %s", run_id)


def recompute_sync(*, trigger: str = "manual", requested_by=None, progress=None) -> RecomputeRun:
    """Run a whole recompute in this process (management command, tests, first start)."""
    run = RecomputeRun.objects.create(requested_by=requested_by, trigger=trigger)
    prepared = recompute_prepare(run_id=run.pk)
    if prepared is not None:
        version, stages = prepared
        total = sum(map(len, stages))
        for stage in stages:
            recompute_stage_begin(version=version, plan=stage)
            for kind, start, stop in stage:
                recompute_shard(run_id=run.pk, version=version, kind=kind, start=start, stop=stop)
                if progress is not None:
                    progress(1, total)
        recompute_publish(run_id=run.pk)
    run.refresh_from_db()
    return run


# -- the model state a worker process holds ------------------------------------------------
@dataclass(eq=False)
class ModelState:
    """What one worker process holds of one version: the ratings snapshot, the engine
    inputs derived from it and, once the neighbour stage is written, the stored lists'
    inputs.

    Lifetime: one per process at a time. It is made on the first shard or update of a
    version this process sees (:func:`model_state`), or handed over by the run that took
    the snapshot; a different version replaces it; incremental updates patch it; tests
    drop it with :func:`model_state_clear`. Shards of one run that land on the same
    process derive the inputs once.
    """

    version: str
    arrays: dict
    inputs: build.ModelInputs
    _lists: build.ListInputs | None = field(default=None, repr=False)
    _patchable: PatchableModel | None = field(default=None, repr=False)

    def list_inputs(self) -> build.ListInputs:
        """The finished neighbour rows of the version and the list context, read once."""
        if self._lists is None:
            self._lists = build.ListInputs.load(self.version, self.inputs, self.arrays)
        return self._lists

    def patchable(self) -> PatchableModel:
        """The version's ratings as the incremental updates patch them (made once)."""
        with _state_lock:  # the warm-up thread (tasks._warm_update_path) may be making it
            return self._make_patchable()

    def _make_patchable(self) -> PatchableModel:
        if self._patchable is None:
            self._patchable = PatchableModel.from_inputs(
                self.inputs,
                item_cache_bytes=option("UPDATE_KEPT_SUMS_MB") * 2**20,
                item_cache_min_raters=option("UPDATE_KEPT_SUMS_MIN_RATERS"),
            )
        return self._patchable


_state: ModelState | None = None
# Held while the state is loaded or its patchable model made: a worker process's warm-up
# thread and its first task wait for one load, rather than making two.
_state_lock = threading.RLock()


def model_state(version: str) -> ModelState:
    """This process's state of ``version``, loaded from its snapshot when it is not held.

    Raises ``LookupError`` when the version's snapshot is gone.
    """
    global _state
    with _state_lock:
        if _state is None or _state.version != version:
            if _state is not None:
                _state = None  # free the old version's arrays before loading the new ones
                memory_give_back()
            _state = _load_state(version)
        return _state


def _load_state(version: str) -> ModelState:
    """``version``'s state from its snapshot, mapped (copied from Redis first if this
    machine has no copy), with its derived arrays made once per machine."""
    arrays = store.snapshot_get(version)
    derived = functools.partial(store.snapshot_derived, version)
    return ModelState(version, arrays, build.ModelInputs.from_snapshot(arrays, derived))


def _model_state_set(state: ModelState) -> None:
    global _state
    _state = state


def model_state_clear() -> None:
    """Forget what this process holds (tests)."""
    global _state
    _state = None


# Bumped by model_state_release: a warm-up begun before it drops what it loaded.
_generation = 0


def model_state_release() -> None:
    """Drop this process's state and give the freed memory back to the system, before a
    step that needs much memory of its own (the prepare step, the model fits).

    The state is the live version's (loaded for the incremental updates) or another
    version's; the next update or shard loads what it needs again (mapped files: seconds
    at 25M). Does not wait for a warm-up in progress in this process
    (``model_update_warm``): that notices and drops what it loaded.
    """
    global _state, _generation
    _generation += 1
    _state = None
    # A full collection is for what only the cycle collector frees; at a few tenths of a
    # second in a large process it is kept to these few calls before the heavy steps, not
    # run after every shard (it made the test suite several times slower).
    gc.collect()
    memory_give_back()


def memory_give_back() -> None:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim``).

    Freed numpy arrays above glibc's mmap threshold go back at once; the many smaller
    blocks a step leaves (database rows, per-chunk arrays) stay in the heap's arenas and
    count in the process's resident set until trimmed. A no-op elsewhere than glibc.
    No garbage collection here (see model_state_release)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


def model_update_warm() -> str | None:
    """Ready this process for the live version's updates before a rating needs one: its
    state and patchable model loaded, the update's compiled kernels loaded (see
    ``PatchableModel.warm``); nothing is written. Returns the version, or None without a
    live model or its snapshot."""
    started = _generation
    model = store.live_model()
    if model is None:
        return None
    try:
        state = model_state(model.version)
        if _generation == started:
            state.patchable()
    except LookupError:
        return None
    if _generation != started:
        # A heavy step began in this process meanwhile and released the state: what was
        # loaded since is not kept under it.
        with _state_lock:
            _drop_if_held(state)
        return None
    state.patchable().warm()
    return model.version


def _drop_if_held(state: ModelState) -> None:
    global _state
    if _state is state:
        _state = None


# -- the incremental update after a rating ------------------------------------------------------
def model_update_for_rating(*, user_id: int, item_ids: list[int]) -> str | None:
    """Recompute ``user_id``'s neighbour row and the rows of ``item_ids`` in the live version,
    then the user's stored list: :func:`model_rows_update`, then :func:`ready_list_refresh`
    in this process (the worker runs the two as separate tasks, see ``tasks.model_update``).
    """
    version = model_rows_update(user_id=user_id, item_ids=item_ids)
    if version is None:
        return None
    return ready_list_refresh(user_id=user_id)


def model_rows_update(*, user_id: int, item_ids: list[int], defer: bool = False) -> str | None:
    """Recompute ``user_id``'s neighbour row and the rows of ``item_ids`` in the live version.

    The worker patches the live version's snapshot with the user's current ratings, so the
    user's "people like you" list and the rated items' "also liked" lists reflect the new
    rating before the next full recompute. With no ``item_ids`` (an item hidden or
    unhidden) nothing is written. Returns the version updated, or None (no live model, or
    no snapshot of it). Reads the database, never writes it.

    The user's stored list is not redone here (see :func:`ready_list_refresh`): until it is,
    its stamp no longer matches and reads rank the user's list live, from these rows. With
    ``defer``, the rows of popular items whose sums this process has not kept (a pass over
    all their raters' rows: tens of ms at 10M ratings) are left to :func:`item_rows_refresh`,
    queued once for all such items pending.
    """
    model = _live_model(f"incremental update of user {user_id}")
    if model is None:
        return None
    if item_ids:
        rated, scores = reads._live_ratings(user_id)
        deferred = _update_rows(model.version, user_id, rated, scores, item_ids, defer=defer)
        if deferred is None:
            return None
        if deferred and store.item_rows_pending_add(user_id, deferred):
            from recommendations import tasks

            tasks.item_rows_refresh.apply_async(retry=False, priority=tasks.ITEM_ROWS_PRIORITY)
    return model.version


def item_rows_refresh(*, user_ids: list[int], item_ids: list[int]) -> str | None:
    """Write the rows of ``item_ids``, deferred by the updates of ``user_ids``
    (:func:`model_rows_update`); returns the version, or None without a live model or its
    snapshot. Those users' current ratings are patched into this process's model first,
    as the update that deferred an item may have run in another process. The items' sums
    are kept from then on, so later ratings of them patch the sums instead."""
    model = _live_model(f"rows of items {item_ids}")
    if model is None:
        return None
    try:
        patchable = model_state(model.version).patchable()
    except LookupError:
        return None
    for user_id in user_ids:
        patchable.set_user_ratings(user_id, *reads._live_ratings(user_id))
    rows: dict[str, dict[int, bytes]] = {"ii": {}, "ip": {}}
    _item_rows(patchable, item_ids, rows)
    store.write_patch(model.version, rows)
    return model.version


def ready_list_refresh(*, user_id: int) -> str | None:
    """Store ``user_id``'s list as the live path ranks it now, from the live version's rows
    and their current ratings; returns the version, or None without a live model."""
    model = _live_model(f"stored list of user {user_id}")
    if model is None:
        return None
    # The stamp before the ratings it vouches for: a change landing in between leaves the
    # stored list visibly stale, never silently.
    stamp = catalog_selectors.user_taste_stamp(user_id=user_id)
    rated, scores = reads._live_ratings(user_id)
    _ready_list_refresh(model, user_id, stamp, rated, scores)
    return model.version


def _live_model(what: str) -> store.LiveModel | None:
    """The live model, or None: none is published, or Redis is down (logged: ``what``
    skipped; the next full recompute catches up)."""
    try:
        return store.live_model()
    except store.RedisUnavailable:
        logger.warning("Redis unavailable; %s skipped", what)
        return None


def _update_rows(
    version: str, user_id: int, rated, scores, item_ids: list[int], *, defer: bool = False
) -> list[int] | None:
    """Patch the user's ratings into this process's model of ``version``, then write the
    user's rows and the changed items' rows (see ``incremental``: weights and baselines
    held fixed until the next full recompute). Returns the items left out with ``defer``
    (see :func:`model_rows_update`), or None when the version's snapshot is gone."""
    try:
        model = model_state(version).patchable()
    except LookupError:
        logger.warning("no snapshot for live version %s; incremental update skipped", version)
        return None
    u = model.set_user_ratings(user_id, rated, scores)
    rows: dict[str, dict[int, bytes]] = {"ur": {}, "uu": {}, "ii": {}, "ip": {}}
    gone: dict[str, list[int]] = {}
    if rated.size:
        rows["ur"][user_id] = store.encode_ratings(rated, scores)
        rows["uu"][user_id] = build.encode_list(*model.user_neighbours(u, option("USER_K")))
    else:
        # No ratings left (all removed, or the account deleted): the user's own rows go
        # too, so nobody's "people like you" reads their old ratings any more.
        gone = {"uu": [user_id], "ur": [user_id]}
    deferred = _item_rows(model, item_ids, rows, defer=defer)
    store.write_patch(version, rows, delete=gone)  # one round trip
    return deferred


def _item_rows(model: PatchableModel, item_ids: list[int], rows: dict, *, defer=False) -> list:
    """Put the "ii" and "ip" rows of ``item_ids`` into ``rows``; with ``defer``, not those
    of items whose sums are costly now (returned)."""
    deferred = []
    for item_id, i in zip(item_ids, model.item_indices(item_ids).tolist(), strict=True):
        if i < 0:
            continue  # never rated, in this version or since
        if defer and model.item_sums_costly(i):
            deferred.append(item_id)
            continue
        ii, ip = model.item_rows(
            i,
            k_cosine=option("ITEM_K"),
            k_pearson=option("PREDICT_K"),
            shrinkage=option("PREDICT_SHRINKAGE"),
        )
        rows["ii"][item_id] = build.encode_list(*ii)
        rows["ip"][item_id] = build.encode_list(*ip)
    return deferred


def _ready_list_refresh(model: store.LiveModel, user_id: int, stamp: str, rated, scores) -> None:
    """Store ``user_id``'s list computed live from ``rated``/``scores``, read after ``stamp``."""
    with_model = rated.size > 0 and model_scoring.parts_for(model.version) is not None
    if rated.size < model_scoring.min_ratings(with_model):
        store.client().hdel(store.version_key(model.version, "ready"), user_id)
        return
    rows = ranking.rank_from_store(
        model, user_id, rated, scores, hidden=reads._hidden(user_id),
        n=option("READY_LIST_LENGTH"), user_weight=option("USER_WEIGHT"),
    )  # fmt: skip
    store.ready_put(model.version, user_id, store.encode_ready(stamp, rows))
