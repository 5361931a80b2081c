"""Recommendations for pages and the API, and the recompute that keeps them fresh.

Reads never compute similarities: they take neighbour lists from the published model in
Redis (``store``) and combine them with the user's live ratings from the database, so a
new rating changes the item-based evidence at once. The scoring is the engine's
``recommend`` run on a small local slice of the model. When Redis is down or no model is
published yet, every read falls back to popular items from the database, labelled
``source="popular"``, and never raises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.cards import ItemCard
from catalog.models import HiddenItem, Item, Rating
from recommendations import build, store
from recommendations.conf import get as option
from recommendations.engine import Baselines, RatingMatrix, predict, recommend
from recommendations.models import RecomputeRun

logger = logging.getLogger(__name__)

PERSONAL, POPULAR = "personal", "popular"
_UNAVAILABLE = "Personal recommendations are briefly unavailable; showing popular items."


@dataclass(frozen=True)
class Suggestion:
    item: Item | ItemCard
    score: float
    reason: str
    because_items: list[Item | ItemCard] = field(default_factory=list)
    because_users: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class RecommendationList:
    suggestions: list[Suggestion]
    source: str  # PERSONAL or POPULAR
    model_version: str | None
    # Why a popular list was served instead of a personal one (shown to people, in words).
    note: str = ""


@dataclass(frozen=True)
class SimilarItem:
    item: Item
    score: float | None  # None when the list is a popular fallback
    support: int = 0  # people who rated both
    source: str = PERSONAL


@dataclass(frozen=True)
class SimilarUser:
    user_id: int
    similarity: float


@dataclass(frozen=True)
class PredictedRating:
    score: float | None
    source: str  # "neighbours", "baseline" or "unavailable"
    neighbours: list[tuple[Item, float, float]] = field(default_factory=list)


# -- the live model, or a reason why not --------------------------------------------------
def _live() -> tuple[store.LiveModel | None, str]:
    try:
        model = store.live_model()
    except store.RedisUnavailable as error:
        logger.warning("Redis unavailable, serving popular items: %s", error)
        return None, _UNAVAILABLE
    if model is None:
        return None, "Recommendations are being prepared; showing popular items."
    return model, ""


def model_status() -> dict:
    """For health checks: is Redis up, and which version is live."""
    try:
        model = store.live_model()
    except store.RedisUnavailable as error:
        return {"redis": "down", "error": str(error), "model_version": None}
    if model is None:
        return {"redis": "up", "model_version": None}
    return {"redis": "up", "model_version": model.version, "model": model.meta}


def popular_items(
    *, genre: str = "", limit: int = 10, exclude=(), note: str = ""
) -> RecommendationList:
    """Best by damped mean, then most rated, from the database: the fallback of every panel."""
    exclude = set(exclude)
    seen: set[int] = set()
    suggestions = []
    ranked = catalog_selectors.item_top_rated(genre=genre, limit=limit + len(exclude))
    ranked += catalog_selectors.item_most_popular(genre=genre, limit=limit + len(exclude))
    for item in ranked:
        if item.pk in exclude or item.pk in seen:
            continue
        seen.add(item.pk)
        reason = (
            f"Rated {item.rating_average:.1f} on average by {item.rating_count} people"
            if item.rating_count
            else "New in the catalogue"
        )
        suggestions.append(Suggestion(item=item, score=item.rating_average or 0.0, reason=reason))
        if len(suggestions) == limit:
            break
    return RecommendationList(suggestions, POPULAR, None, note)


def _live_ratings(user_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The user's (item ids, scores), by item id: the order the stored lists use too, so
    both sum the same evidence in the same order."""
    ratings = Rating.objects.filter(user_id=user_id).order_by("item_id")
    rows = list(ratings.values_list("item_id", "score"))
    items = np.array([r[0] for r in rows], dtype=np.int64)
    return items, np.array([r[1] for r in rows], dtype=np.float64)


def _hidden(user_id: int) -> np.ndarray:
    ids = HiddenItem.objects.filter(user_id=user_id).values_list("item_id", flat=True)
    return np.fromiter(ids, dtype=np.int64)


# -- personal recommendations ---------------------------------------------------------------
def recommendations_for_user(
    *, user, limit: int = 10, genre: str = "", exclude_rated: bool = True, explain: bool = False
) -> RecommendationList:
    """The blended top-N (user-user and item-item evidence), the product's main list.

    With ``exclude_rated=False`` items the user rated may appear too, scored like the rest.
    With ``explain`` each suggestion names the user's items and the neighbours behind it.

    The plain request (no genre, rated items excluded) is served from the user's stored
    list when its taste stamp still matches: one Redis read and a few small queries
    instead of the live computation, with the same answer.
    """
    live = None
    if user.is_authenticated and not genre and exclude_rated:
        live = _live()
        try:
            stored = _from_ready_list(live[0], user.pk, limit, explain)
        except store.RedisUnavailable as error:  # don't wait for Redis a second time
            logger.warning("Redis failed mid-request: %s", error)
            live, stored = (None, _UNAVAILABLE), None
        if stored is not None:
            return stored
    return _personal(
        user=user,
        limit=limit,
        genre=genre,
        user_weight=option("USER_WEIGHT"),
        exclude_rated=exclude_rated,
        explain=explain,
        live=live,
    )


def _from_ready_list(
    model, user_id: int, limit: int, explain: bool = False
) -> RecommendationList | None:
    """The user's stored list, if it is still exactly what a live computation would give.

    Raises one of ``store.RedisUnavailable`` when Redis cannot be read.
    """
    if model is None:
        return None
    stored = model.ready_list(user_id)
    if stored is None:
        return None
    stamp, rows = stored
    if stamp != catalog_selectors.user_taste_stamp(user_id=user_id):
        return None  # a rating or "Not interested" since: its update is on the way
    suggestions, complete = _present(rows, limit, explain=explain)
    if not suggestions or not complete:
        return None
    return RecommendationList(suggestions, PERSONAL, model.version)


def people_like_you(
    *, user, limit: int = 10, genre: str = "", fallback: bool = True
) -> RecommendationList:
    """Items that people with similar ratings liked: user-user evidence only.

    With ``fallback=False`` a non-personal answer carries only its note (no popular
    items), for panels that show the note and nothing else.
    """
    return _personal(
        user=user, limit=limit, genre=genre, user_weight=1.0, item_part=False, fallback=fallback
    )


def _personal(
    *, user, limit, genre, user_weight, item_part=True, fallback=True, exclude_rated=True,
    explain=False, live=None,
) -> RecommendationList:  # fmt: skip
    def popular(exclude=(), note=""):
        if not fallback:
            return RecommendationList([], POPULAR, None, note)
        return popular_items(genre=genre, limit=limit, exclude=exclude, note=note)

    if not user.is_authenticated:
        return popular()
    rated, scores = _live_ratings(user.pk)
    needed = option("MIN_RATINGS_FOR_PERSONAL")
    if rated.size < needed:
        return popular(rated.tolist(), f"Rate at least {needed} items to get personal suggestions.")
    model, note = live if live is not None else _live()
    if model is None:
        return popular(rated.tolist(), note)
    hidden = _hidden(user.pk)
    try:
        # A few spare places: an item deleted since the model was built is skipped.
        rows = _rank(
            model, user.pk, rated, scores, hidden, genre, limit + _SPARE, user_weight,
            item_part, exclude_rated,
        )  # fmt: skip
    except store.RedisUnavailable as error:
        logger.warning("Redis failed mid-request: %s", error)
        return popular(rated.tolist(), _UNAVAILABLE)
    result, _ = _present(rows, limit, explain=explain)
    if not result:
        return popular(
            rated.tolist(), "Not enough overlap with other people yet; rate a few more items."
        )
    return RecommendationList(result, PERSONAL, model.version)


def _rank(
    model, user_id, rated, scores, hidden, genre, n, user_weight, item_part, exclude_rated
) -> np.ndarray:
    """Run the engine's ``recommend`` on the slice of the model this user touches.

    Returns the top ``n`` as ``store.READY_DTYPE`` rows (database ids), best first.
    """
    item_lists, user_list = model.lists_for_user(user_id, rated.tolist() if item_part else [])
    neighbours = user_list["id"] if user_list is not None else np.empty(0, np.int64)
    their_ratings = model.user_ratings(neighbours.tolist())

    # Local index spaces: items and users this request can see.
    pieces = [rated] + [nb["id"] for nb in item_lists.values() if nb is not None]
    pieces += [r["item"] for r in their_ratings.values() if r is not None]
    item_ids = np.unique(np.concatenate(pieces))
    users = [user_id, *neighbours.tolist()]
    # The local ratings matrix: the neighbours' stored ratings plus this user's live ones.
    parts_u, parts_i, parts_s = [np.full(rated.size, user_id)], [rated], [scores]
    for v in users[1:]:
        theirs = their_ratings.get(v)
        if theirs is not None:
            parts_u.append(np.full(len(theirs), v))
            parts_i.append(theirs["item"])
            parts_s.append(theirs["score"])
    mu, mi, ms = (np.concatenate(p) for p in (parts_u, parts_i, parts_s))
    matrix = RatingMatrix.from_arrays(mu, mi, ms, users=users, items=item_ids)
    n_items = matrix.n_items

    item_nb = None
    if item_lists:
        item_nb = build.dense_neighbours(item_lists, n_items, matrix.item_indices, "item")
    user_nb = None
    u0 = matrix.user_index(user_id)
    if neighbours.size:
        lists = {user_id: user_list}
        user_nb = build.dense_neighbours(lists, matrix.n_users, matrix.user_indices, "user")

    # Rather than fetch every candidate's row, exclude the few items that may not be shown.
    unshown = np.concatenate([hidden, _inactive_item_ids()])
    allowed = None
    if genre:
        in_genre = Item.objects.filter(pk__in=item_ids.tolist(), genres__slug=genre)
        allowed = matrix.item_indices(list(in_genre.values_list("pk", flat=True)))
        allowed = allowed[allowed >= 0]
    result = recommend(
        matrix.item_indices(rated),
        scores,
        item_neighbours=item_nb,
        user_neighbours=user_nb,
        matrix=matrix if user_nb is not None else None,
        user=u0,
        n_items=n_items,
        hidden=matrix.item_indices(unshown),
        candidates=allowed,
        n=n,
        user_weight=user_weight if item_nb is not None else 1.0,
        exclude_rated=exclude_rated,
    )
    return build.ready_rows(result, matrix)


# Rows ranked beyond the limit, for items deleted or deactivated since the model was built.
_SPARE = 5


def _present(rows: np.ndarray, limit: int, *, explain: bool = False):
    """Up to ``limit`` suggestions (items, reasons) from ranked rows, skipping items gone
    or inactive since the rows were ranked; and whether the answer is complete (False
    when rows ran out and a truncated list might have held more).

    With ``explain`` each carries the user's items and the neighbours behind it; without,
    only the item a reason line names is read.
    """
    suggestions: list[Suggestion] = []
    start = 0
    while len(suggestions) < limit and start < len(rows):
        chunk = rows[start : start + limit - len(suggestions)]
        start += len(chunk)
        suggestions += _suggestions(chunk, explain)
    complete = len(suggestions) == limit or len(rows) < option("READY_LIST_LENGTH")
    return suggestions, complete


def _suggestions(rows: np.ndarray, explain: bool) -> list[Suggestion]:
    because = rows["because_items"] if explain else rows["because_items"][rows["people"] == 0]
    cards = catalog_selectors.item_cards([*rows["item"].tolist(), *because.ravel().tolist()])
    out = []
    columns = (rows[name].tolist() for name in store.READY_DTYPE.names)
    for item_id, score, people, people_sum, because_ids, because_users in zip(
        *columns, strict=True
    ):
        item = cards.get(item_id)
        if item is None or not item.is_active:
            continue
        because_items = []
        if explain or not people:
            because_items = [cards[i] for i in because_ids if i in cards]
        out.append(
            Suggestion(
                item=item,
                score=score,
                reason=_reason(people, people_sum, because_items),
                because_items=because_items if explain else [],
                because_users=[u for u in because_users if u >= 0] if explain else [],
            )
        )
    return out


def _inactive_item_ids() -> np.ndarray:
    """Items hidden from the catalogue by staff: few, so cheaper to exclude than to list."""
    ids = Item.objects.filter(is_active=False).values_list("pk", flat=True)
    return np.fromiter(ids, dtype=np.int64)


def _reason(people: int, people_sum: float, because_items: list[ItemCard]) -> str:
    if people:
        mean = people_sum / people
        who = "1 person" if people == 1 else f"{people} people"
        return f"{who} with your taste rated it {mean:.1f} on average"
    if because_items:
        return f"Because you rated {because_items[0].title}"
    return "Close to what you rate highly"


def because_you_rated(
    *, user, rows: int = 3, limit: int = 6
) -> list[tuple[Item, list[SimilarItem]]]:
    """For a few of the user's recent high ratings, the items most like each."""
    if not user.is_authenticated:
        return []
    recent = list(
        Rating.objects.filter(user=user, score__gte=4.0, item__is_active=True)
        .select_related("item")
        .order_by("-updated", "-id")[:rows]
    )
    if not recent:
        return []
    model, _ = _live()
    if model is None:
        return []
    rated, _ = _live_ratings(user.pk)
    exclude = set(rated.tolist()) | set(_hidden(user.pk).tolist())
    try:
        lists = model.item_neighbours([r.item_id for r in recent])
    except store.RedisUnavailable:
        return []
    wanted = {
        int(i) for nb in lists.values() if nb is not None for i in nb["id"] if int(i) not in exclude
    }
    objects = Item.objects.filter(is_active=True).prefetch_related("genres").in_bulk(list(wanted))
    out = []
    for rating in recent:
        nb = lists.get(rating.item_id)
        similar = [
            SimilarItem(objects[int(i)], float(s), int(n))
            for i, s, n in (nb if nb is not None else [])
            if int(i) in objects
        ][:limit]
        if similar:
            out.append((rating.item, similar))
    return out


def similar_items(*, item: Item, limit: int = 10, user=None) -> list[SimilarItem]:
    """Items people who liked ``item`` also liked; popular items of its genre as a fallback."""
    exclude = {item.pk}
    if user is not None and user.is_authenticated:
        exclude |= set(_live_ratings(user.pk)[0].tolist()) | set(_hidden(user.pk).tolist())
    model, _ = _live()
    nb = None
    if model is not None:
        try:
            nb = model.item_neighbours([item.pk]).get(item.pk)
        except store.RedisUnavailable:
            nb = None
    if nb is None:
        genre = item.genres.first()
        fallback = popular_items(genre=genre.slug if genre else "", limit=limit, exclude=exclude)
        return [SimilarItem(s.item, None, 0, POPULAR) for s in fallback.suggestions]
    ids = [int(i) for i in nb["id"] if int(i) not in exclude]
    objects = Item.objects.filter(is_active=True).prefetch_related("genres").in_bulk(ids)
    return [
        SimilarItem(objects[int(i)], float(s), int(n))
        for i, s, n in nb
        if int(i) in objects and int(i) not in exclude
    ][:limit]


def similar_users(*, user, limit: int = 20) -> list[SimilarUser]:
    """The user's nearest neighbours: ids and similarity only, never their ratings."""
    if not user.is_authenticated:
        return []
    model, _ = _live()
    if model is None:
        return []
    try:
        nb = model.user_neighbours([user.pk]).get(user.pk)
    except store.RedisUnavailable:
        return []
    if nb is None:
        return []
    return [
        SimilarUser(int(i), float(s))
        for i, s in zip(nb["id"][:limit], nb["score"][:limit], strict=True)
    ]


def predicted_rating(*, user, item: Item) -> PredictedRating:
    """k-NN with baselines, item-based: ``b_ui + sum s_ij (r_uj - b_uj) / sum s_ij``.

    Uses the model's pearson_baseline lists and baselines with the user's live ratings.
    """
    model, _ = _live()
    if model is None or not user.is_authenticated:
        return PredictedRating(None, "unavailable")
    rated, scores = _live_ratings(user.pk)
    try:
        nb = model.prediction_neighbours([item.pk]).get(item.pk)
        neighbour_ids = [] if nb is None else nb["id"].tolist()
        mu, bu, bi = model.biases(user_id=user.pk, item_ids=[item.pk, *rated.tolist()])
    except store.RedisUnavailable:
        return PredictedRating(None, "unavailable")
    item_ids = np.unique(np.concatenate([[item.pk], rated, np.asarray(neighbour_ids, np.int64)]))
    matrix = RatingMatrix.from_arrays(
        np.full(rated.size, user.pk), rated, scores, users=[user.pk], items=item_ids
    )
    baselines = Baselines()
    baselines.global_mean_ = mu
    baselines.user_bias_ = np.array([bu])
    baselines.item_bias_ = np.array([bi.get(int(i), 0.0) for i in matrix.item_ids])
    target = matrix.item_index(item.pk)
    lists = build.dense_neighbours(
        {item.pk: nb}, matrix.n_items, matrix.item_indices, "item", measure="pearson_baseline"
    )
    p = predict(
        matrix, lists, 0, target, method="baseline", k=40, baselines=baselines, clip=(0.5, 5.0)
    )
    used = [int(matrix.item_ids[j]) for j in p.neighbours]
    objects = Item.objects.in_bulk(used)
    mine = dict(zip(rated.tolist(), scores.tolist(), strict=True))
    contributions = [
        (objects[i], float(s), mine[i]) for i, s in zip(used, p.similarities, strict=True)
    ]
    return PredictedRating(round(p.value, 3), "neighbours" if used else "baseline", contributions)


# -- the recompute ----------------------------------------------------------------------------
def recompute_start(*, requested_by=None, trigger: str = "manual") -> RecomputeRun:
    """Record a run and queue it on Celery once the transaction commits."""
    from recommendations import tasks

    run = RecomputeRun.objects.create(requested_by=requested_by, trigger=trigger)
    transaction.on_commit(lambda: tasks.recompute.delay(run.pk))
    return run


def recompute_latest() -> RecomputeRun | None:
    return RecomputeRun.objects.order_by("-created", "-id").first()


def _holder(run_id: int) -> str:
    return f"run:{run_id}"


def recompute_prepare(*, run_id: int, progress=None) -> tuple[str, list[list]] | None:
    """Claim the lock, snapshot the ratings, plan the shards. None when another run is active.

    Returns the version and its two stages of (kind, start, stop) shards: the neighbour
    rows, then the stored lists (which read the first stage's rows).
    """
    if not RecomputeRun.objects.filter(pk=run_id).exists():  # before taking the lock
        raise RecomputeRun.DoesNotExist(f"no recompute run {run_id}")
    if not store.lock_acquire(_holder(run_id), option("LOCK_TTL_SECONDS")):
        holder = store.lock_holder() or "another run"
        RecomputeRun.objects.filter(pk=run_id).update(
            status=RecomputeRun.Status.SKIPPED,
            finished=timezone.now(),
            error=f"Another recompute ({holder}) was running.",
        )
        return None
    # Holding the lock, no other run can be alive: any still marked running lost its worker.
    RecomputeRun.objects.filter(status=RecomputeRun.Status.RUNNING).exclude(pk=run_id).update(
        status=RecomputeRun.Status.FAILED,
        finished=timezone.now(),
        error="Its worker stopped before it finished (the lock lapsed).",
    )
    try:
        started = timezone.now()
        version = f"{started.strftime('%Y%m%dT%H%M%S')}-{run_id}"
        RecomputeRun.objects.filter(pk=run_id).update(
            status=RecomputeRun.Status.RUNNING, started=started, version=version
        )
        context = build.snapshot_list_context()  # before the ratings: see its docstring
        arrays = {**build.snapshot_ratings(progress=progress), **context}
        inputs = build.ModelInputs.from_snapshot(arrays)
        _cache_inputs(version, arrays, inputs)
        ttl = option("BUILD_TTL_SECONDS")
        store.snapshot_put(version, arrays, ttl=ttl)
        store.write_biases(version, build.bias_fields(inputs), ttl=ttl)
        stages = [
            build.shard_plan(inputs, option("SHARDS")),
            build.ready_plan(inputs, option("SHARDS")),
        ]
        RecomputeRun.objects.filter(pk=run_id).update(
            shards_total=sum(map(len, stages)),
            n_ratings=inputs.matrix.nnz,
            n_users=inputs.matrix.n_users,
            n_items=inputs.matrix.n_items,
        )
    except Exception as error:
        recompute_fail(run_id=run_id, error=error)
        raise
    return version, stages


def recompute_shard(*, run_id: int, version: str, kind: str, start: int, stop: int) -> int:
    """Compute and store one row range of the new version; returns the rows written."""
    if not store.lock_extend(_holder(run_id), option("LOCK_TTL_SECONDS")):
        raise RuntimeError(f"run {run_id} no longer holds the recompute lock; shard abandoned")
    try:
        inputs = _inputs_for(version)
        if kind == "ready":
            rows = build.compute_ready(inputs, _list_inputs_for(version), start, stop)
        else:
            rows = build.compute_rows(inputs, kind, start, stop)
        store.write_rows(version, kind, rows, ttl=option("BUILD_TTL_SECONDS"))
        RecomputeRun.objects.filter(pk=run_id).update(shards_done=F("shards_done") + 1)
        store.lock_extend(_holder(run_id), option("LOCK_TTL_SECONDS"))
        return len(rows)
    except Exception as error:
        recompute_fail(run_id=run_id, error=error)
        raise


def recompute_publish(*, run_id: int) -> str:
    """Check the new version is complete, flip the live pointer, release the lock."""
    run = RecomputeRun.objects.get(pk=run_id)
    try:
        inputs = _inputs_for(run.version)
        expected = {kind: inputs.n_rows(kind) for kind in build.ROW_KINDS}
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
        }
        store.publish(run.version, meta, expected_rows=expected)
    except Exception as error:
        recompute_fail(run_id=run_id, error=error)
        raise
    store.lock_release(_holder(run_id))
    RecomputeRun.objects.filter(pk=run_id).update(
        status=RecomputeRun.Status.SUCCEEDED, finished=timezone.now()
    )
    return run.version


def recompute_fail(*, run_id: int, error) -> None:
    """Drop the run's half-built version, free the lock, then mark it failed. Never raises.

    The status comes last, so whoever sees "failed" also sees the lock free.
    """
    message = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    try:
        run = RecomputeRun.objects.get(pk=run_id)
        try:
            if run.version:
                store.discard(run.version)
            store.lock_release(_holder(run_id))
        except Exception:
            logger.exception("could not clean up after recompute run %s", run_id)
        RecomputeRun.objects.filter(
            pk=run_id, status__in=[RecomputeRun.Status.RUNNING, RecomputeRun.Status.QUEUED]
        ).update(status=RecomputeRun.Status.FAILED, finished=timezone.now(), error=message[:2000])
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
            for kind, start, stop in stage:
                recompute_shard(run_id=run.pk, version=version, kind=kind, start=start, stop=stop)
                if progress is not None:
                    progress(1, total)
        recompute_publish(run_id=run.pk)
    run.refresh_from_db()
    return run


# Per-process cache of the inputs of the version being built or updated: shards of one
# run that land on the same worker process derive them once.
_INPUTS: dict[str, tuple[dict, build.ModelInputs]] = {}
_LIST_INPUTS: dict[str, build.ListInputs] = {}


def _cache_inputs(version: str, arrays: dict, inputs: build.ModelInputs) -> None:
    _INPUTS.clear()
    _LIST_INPUTS.clear()
    _INPUTS[version] = (arrays, inputs)


def _list_inputs_for(version: str) -> build.ListInputs:
    """The finished neighbour rows of ``version`` and the list context, once per process."""
    inputs = _inputs_for(version)
    if version not in _LIST_INPUTS:
        _LIST_INPUTS[version] = build.ListInputs.load(version, inputs, _INPUTS[version][0])
    return _LIST_INPUTS[version]


def _inputs_for(version: str) -> build.ModelInputs:
    if version not in _INPUTS:
        arrays = store.snapshot_get(version)
        _cache_inputs(version, arrays, build.ModelInputs.from_snapshot(arrays))
    return _INPUTS[version][1]


# -- the incremental update after a rating ------------------------------------------------------
def model_update_for_rating(*, user_id: int, item_ids: list[int]) -> str | None:
    """Recompute ``user_id``'s neighbour row and the rows of ``item_ids`` in the live version,
    then the user's stored list.

    The worker patches the live version's snapshot with the user's current ratings, so the
    user's "people like you" list and the rated items' "also liked" lists reflect the new
    rating before the next full recompute. With no ``item_ids`` (an item hidden or
    unhidden) only the stored list is redone. Returns the version updated, or None.
    """
    try:
        model = store.live_model()
    except store.RedisUnavailable:
        logger.warning("Redis unavailable; incremental update of user %s skipped", user_id)
        return None
    if model is None:
        return None
    version = model.version
    # The stamp before the ratings it vouches for: a change landing in between leaves the
    # stored list visibly stale, never silently.
    stamp = catalog_selectors.user_taste_stamp(user_id=user_id)
    rated, scores = _live_ratings(user_id)
    if item_ids and not _update_rows(version, user_id, rated, scores, item_ids):
        return None
    _ready_list_refresh(model, user_id, stamp, rated, scores)
    return version


def _update_rows(version: str, user_id: int, rated, scores, item_ids: list[int]) -> bool:
    if version not in _INPUTS:
        try:
            _inputs_for(version)
        except LookupError:
            logger.warning("no snapshot for live version %s; incremental update skipped", version)
            return False
    arrays, _ = _INPUTS[version]
    arrays = build.with_user_ratings(arrays, user_id, rated, scores)
    inputs = build.ModelInputs.from_snapshot(arrays)
    _INPUTS[version] = (arrays, inputs)
    _LIST_INPUTS.pop(version, None)
    u = inputs.matrix.user_index(user_id)
    if u is not None:
        for kind in ("uu", "ur"):
            rows = build.compute_rows(inputs, kind, u, u + 1)
            store.write_rows(version, kind, rows, ttl=None, count=False)
    else:
        # No ratings left (all removed, or the account deleted): the user's own rows go
        # too, so nobody's "people like you" reads their old ratings any more.
        for kind in ("uu", "ur"):
            store.client().hdel(store.version_key(version, kind), user_id)
    for item_id in item_ids:
        i = inputs.matrix.item_index(item_id)
        if i is not None:
            for kind in ("ii", "ip"):
                rows = build.compute_rows(inputs, kind, i, i + 1)
                store.write_rows(version, kind, rows, ttl=None, count=False)
    return True


def _ready_list_refresh(model: store.LiveModel, user_id: int, stamp: str, rated, scores) -> None:
    """Store ``user_id``'s list computed live from ``rated``/``scores``, read after ``stamp``."""
    if rated.size < option("MIN_RATINGS_FOR_PERSONAL"):
        store.client().hdel(store.version_key(model.version, "ready"), user_id)
        return
    rows = _rank(
        model, user_id, rated, scores, _hidden(user_id), "", option("READY_LIST_LENGTH"),
        option("USER_WEIGHT"), True, True,
    )  # fmt: skip
    entry = {user_id: store.encode_ready(stamp, rows)}
    store.write_rows(model.version, "ready", entry, ttl=None, count=False)
