"""Recommendations for pages and the API: the reads (the recompute that keeps them fresh
is ``pipeline``, the ranking they share with it is ``ranking``).

Reads never compute similarities: they take neighbour lists from the published model in
Redis (``store``) and combine them with the user's live ratings from the database, so a
new rating changes the item-based evidence at once. The scoring is ``ranking.rank``
run on a small local slice of the model. When Redis is down or no model is
published yet, every read falls back to popular items from the database, labelled
``source="popular"``, and never raises.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from django.utils import translation

from catalog import selectors as catalog_selectors
from catalog.cards import ItemCard
from catalog.models import HiddenItem, Item, Rating
from recommendations import cold_start, model_scoring, ranking, rating_model, reasons, store
from recommendations.conf import get as option
from recommendations.engine import Baselines, RatingMatrix, predict

logger = logging.getLogger(__name__)

# Where a list comes from: other people's ratings (personal), the catalogue's best and
# most rated (popular), or content and the user's own choices (content: genre picks,
# items like theirs, items like the one shown; no ratings needed).
PERSONAL, POPULAR, CONTENT = "personal", "popular", "content"
SOURCES = (PERSONAL, POPULAR, CONTENT)


@dataclass(frozen=True)
class Suggestion:
    item: Item | ItemCard
    score: float
    reason: str
    # The user's own items behind it (with ``explain``). Never the people behind it: see
    # recommendations/reasons.py.
    because_items: list[Item | ItemCard] = field(default_factory=list)


@dataclass(frozen=True)
class RecommendationList:
    suggestions: list[Suggestion]
    source: str  # PERSONAL, POPULAR or CONTENT
    model_version: str | None
    # Why a popular list was served instead of a personal one (shown to people, in words).
    note: str = ""
    # The answer will change by itself soon (no model yet, Redis away, or this user's
    # update is on its way): pages check again instead of asking the user to act.
    pending: bool = False


@dataclass(frozen=True)
class SimilarItem:
    item: Item | ItemCard
    score: float | None  # None when the list is a popular fallback
    support: int = 0  # people who rated both
    source: str = PERSONAL
    reason: str = ""  # set for CONTENT items (what they share with the item shown)


@dataclass(frozen=True)
class SimilarUser:
    user_id: int
    similarity: float


@dataclass(frozen=True)
class PredictedRating:
    score: float | None
    # "factorization" (the rating model), "genres" (the rating model, for an item it was
    # fitted without: its genres and year), "neighbours", "baseline" or "unavailable"
    source: str
    # (item the user rated, similarity or None, their score, contribution or None): the
    # neighbours behind a "neighbours" prediction (their similarity), or the rated items
    # whose interaction with the item adds most to a rating model's (stars it adds)
    neighbours: list[tuple[Item, float | None, float, float | None]] = field(default_factory=list)


# -- the live model, or a reason why not --------------------------------------------------
def _live() -> tuple[store.LiveModel | None, str]:
    try:
        model = store.live_model()
    except store.RedisUnavailable as error:
        logger.warning("Redis unavailable, serving popular items: %s", error)
        return None, reasons.note_unavailable()
    if model is None:
        return None, reasons.note_preparing()
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
        reason = reasons.popular_reason(item.rating_count, item.rating_average)
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
    *,
    user,
    limit: int = 10,
    genre: str = "",
    exclude_rated: bool = True,
    explain: bool = False,
    fallback: bool = True,
    taste_stamp: str | None = None,
) -> RecommendationList:
    """The blended top-N (user-user and item-item evidence), the product's main list.

    With ``exclude_rated=False`` items the user rated may appear too, scored like the rest.
    With ``explain`` each suggestion names the user's items and the neighbours behind it.
    With ``fallback=False`` a popular answer carries only its note (no popular items).

    The plain request (no genre, rated items excluded) is served from the user's stored
    list when its taste stamp still matches: one Redis read and a few small queries
    instead of the live computation, with the same answer. When there is none (the
    recompute stores lists only for recently active users) or it is stale, the live
    computation's list is kept as the stored one, so the next read is a stored read.
    ``taste_stamp``: the user's stamp when the caller read it already, at the start of
    the request (the API's token lookup does); else it is read here.
    """
    live, keep, neighbours = None, None, None
    if user.is_authenticated and not genre and exclude_rated:
        live = _live()
        try:
            stored, keep, neighbours = _ready_or_stamp(
                live[0], user.pk, limit, explain, stamp=taste_stamp
            )
        except store.RedisUnavailable as error:  # don't wait for Redis a second time
            logger.warning("Redis failed mid-request: %s", error)
            live, stored = (None, reasons.note_unavailable()), None
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
        fallback=fallback,
        keep=keep,
        neighbours=neighbours,
    )


def _from_ready_list(
    model, user_id: int, limit: int, explain: bool = False
) -> RecommendationList | None:
    """The user's stored list, if it is still exactly what a live computation would give.

    Raises one of ``store.RedisUnavailable`` when Redis cannot be read.
    """
    return _ready_or_stamp(model, user_id, limit, explain)[0]


def _ready_or_stamp(model, user_id: int, limit: int, explain: bool, stamp: str | None = None):
    """(the stored list as ``_from_ready_list`` gives it, or None; the user's taste stamp
    when the list was missing or stale, read before the live computation reads the
    ratings, so a list kept from that computation is never newer than its stamp; when
    none was stored, the user's neighbour list and their neighbours' ratings, read in the
    same round trip for the live computation, else None). ``stamp``: the stamp if read
    already, before the list (never newer than it)."""
    if model is None:
        return None, None, None
    stored, neighbours, catalogue = model.ready_neighbours_catalogue(user_id)
    if stamp is None:
        stamp = catalog_selectors.user_taste_stamp(user_id=user_id)
    if stored is None or stored[0] != stamp:
        # none stored (an inactive user) or a rating or "Not interested" since
        return None, stamp, neighbours
    suggestions, complete = _present(stored[1], limit, explain=explain, catalogue=catalogue)
    if not suggestions or not complete:
        return None, None, None
    return RecommendationList(suggestions, PERSONAL, model.version), None, None


def people_like_you(
    *, user, limit: int = 10, genre: str = "", fallback: bool = True
) -> RecommendationList:
    """Items that people with similar ratings liked: user-user evidence only.

    With ``fallback=False`` a popular answer carries only its note (no popular items),
    for panels that show the note and nothing else; a first list from the user's genres
    and ratings (source ``content``) is theirs, so it is kept.

    With the ranking model on, this is the user's main list (``recommendations_for_user``,
    served from the stored list): the model learned from people's ratings what to rank.
    """
    if model_scoring.enabled():
        return recommendations_for_user(user=user, limit=limit, genre=genre, fallback=fallback)
    return _personal(
        user=user, limit=limit, genre=genre, user_weight=1.0, item_part=False, fallback=fallback
    )


def _personal(
    *, user, limit, genre, user_weight, item_part=True, fallback=True, exclude_rated=True,
    explain=False, live=None, keep=None, neighbours=None,
) -> RecommendationList:  # fmt: skip
    """The live computation; with ``keep`` (the taste stamp read before the ratings) the
    list is also kept as the user's stored list, as the recompute's stage would store it.
    ``neighbours``: the user's neighbour list and ratings already read (``_ready_or_stamp``)."""

    def popular(exclude=(), note="", pending=False):
        if not fallback:
            return RecommendationList([], POPULAR, None, note, pending)
        fallback_list = popular_items(genre=genre, limit=limit, exclude=exclude, note=note)
        return RecommendationList(fallback_list.suggestions, POPULAR, None, note, pending)

    if not user.is_authenticated:
        return popular()
    rated, scores = _live_ratings(user.pk)
    needed = model_scoring.min_ratings(model_scoring.enabled())
    if rated.size < needed:
        starter = _starter(user, rated, scores, limit, genre, explain, reasons.note_starter(needed))
        return starter or popular(rated.tolist(), reasons.note_few_ratings(needed))
    model, note = live if live is not None else _live()
    if model is None:
        return popular(rated.tolist(), note, pending=True)
    # A few spare places: an item deleted since the model was built is skipped. A list
    # kept is what the stage stores (READY_LIST_LENGTH, the plain request's arguments).
    length = option("READY_LIST_LENGTH")
    plain = not genre and exclude_rated and item_part and user_weight == option("USER_WEIGHT")
    keep = keep if (plain and limit + _SPARE <= length) else None
    try:
        rows = ranking.rank_from_store(
            model, user.pk, rated, scores, hidden=None, n=length if keep else limit + _SPARE,
            user_weight=user_weight, genre=genre, item_part=item_part, exclude_rated=exclude_rated,
            neighbours=neighbours,
        )  # fmt: skip
        if keep is not None:
            raw = store.encode_ready(keep, rows)
            store.ready_put(model.version, user.pk, raw, read_at=time.time())
    except store.RedisUnavailable as error:
        logger.warning("Redis failed mid-request: %s", error)
        return popular(rated.tolist(), reasons.note_unavailable(), pending=True)
    result, _ = _present(rows, limit, explain=explain)
    if not result:
        if _catch_up(model, user.pk, rated):
            return popular(rated.tolist(), reasons.note_preparing(), pending=True)
        starter = _starter(user, rated, scores, limit, genre, explain, reasons.note_no_overlap())
        return starter or popular(rated.tolist(), reasons.note_no_overlap())
    return RecommendationList(result, PERSONAL, model.version)


def _starter(user, rated, scores, limit, genre, explain, note):
    """The cold-start list (genre picks, items like the user's 4-5 ratings), or None."""
    picks = cold_start.starter_list(
        user=user, rated=rated, scores=scores, exclude=_hidden(user.pk), limit=limit, genre=genre
    )
    if not picks:
        return None
    suggestions = [
        Suggestion(p.item, p.score, p.reason, p.because_items if explain else []) for p in picks
    ]
    return RecommendationList(suggestions, CONTENT, None, note)


def _catch_up(model, user_id: int, rated: np.ndarray) -> bool:
    """Whether this user's ratings are on their way into the live model: True when the
    model has no row for the user (they rated while it was being built, when no update
    could run), after queueing the update that adds it."""
    from recommendations import receivers

    try:
        if model.user_neighbours([user_id]).get(user_id) is not None:
            return False
    except store.RedisUnavailable:
        return False
    receivers.queue_catch_up(user_id, int(rated[-1]))  # any rated item: the row is redone
    return True


# Rows ranked beyond the limit, for items deleted or deactivated since the model was built.
_SPARE = 5


def _present(rows: np.ndarray, limit: int, *, explain: bool = False, catalogue=None):
    """Up to ``limit`` suggestions (items, reasons) from ranked rows, skipping items gone
    or inactive since the rows were ranked; and whether the answer is complete (False
    when rows ran out and a truncated list might have held more).

    With ``explain`` each carries the user's items and the neighbours behind it; without,
    only the item a reason line names is read. ``catalogue``: the catalogue generation
    read with a stored list; the cards' titles, years and genres then come from the
    process's cache under it (``catalog.selectors.item_cards``).
    """
    suggestions: list[Suggestion] = []
    start = 0
    while len(suggestions) < limit and start < len(rows):
        chunk = rows[start : start + limit - len(suggestions)]
        start += len(chunk)
        suggestions += _suggestions(chunk, explain, catalogue)
    complete = len(suggestions) == limit or len(rows) < option("READY_LIST_LENGTH")
    return suggestions, complete


def _suggestions(rows: np.ndarray, explain: bool, catalogue=None) -> list[Suggestion]:
    columns = [rows[name].tolist() for name in ("item", "score", "people", "people_sum")]
    new = (rows["reason"] == store.REASON_NEW).tolist()
    loved = (rows["reason"] == store.REASON_LOVED).tolist()
    # Read once for the whole list, not once a line (each costs microseconds).
    language, least = translation.get_language(), reasons.min_people()
    named = [
        is_new or is_loved or reasons.needs_items(p, s, least=least)
        for p, s, is_new, is_loved in zip(columns[2], columns[3], new, loved, strict=True)
    ]
    because_lists = rows["because_items"].tolist()
    if explain:
        because = [i for ids in because_lists for i in ids]
    else:
        # Without explain a line names only the first of its items that still exists:
        # read the first of each named line's, the others only for a line whose first
        # is gone (deleted since the list was ranked), in a second statement.
        because = rows["because_items"][named, 0].tolist()
    cards = catalog_selectors.item_cards([*columns[0], *because], generation=catalogue)
    if not explain:
        later = [
            i
            for ids, is_named in zip(because_lists, named, strict=True)
            if is_named and ids[0] not in cards
            for i in ids[1:]
            if i >= 0
        ]
        if later:
            cards.update(catalog_selectors.item_cards(later, generation=catalogue))
    out = []
    for (item_id, score, people, people_sum), because_ids, is_new, is_loved in zip(
        zip(*columns, strict=True), because_lists, new, loved, strict=True
    ):
        item = cards.get(item_id)
        if item is None or not item.is_active:
            continue
        because_items = [cards[i] for i in because_ids if i in cards]
        title = because_items[0].title if because_items else None
        if is_new and title:
            reason = reasons.new_item_reason(title, language=language)
        elif is_loved and title:
            reason = reasons.loved_reason(title, language=language)
        else:
            reason = reasons.personal_reason(
                people, people_sum, title, language=language, least=least
            )
        out.append(
            Suggestion(
                item=item,
                score=score,
                reason=reason,
                because_items=because_items if explain else [],
            )
        )
    return out


def because_you_rated(
    *, user, rows: int = 3, limit: int = 6
) -> list[tuple[ItemCard, list[SimilarItem]]]:
    """For a few of the user's recent high ratings, the items most like each.

    An item appears in one row only: the row of the most recent rating it is close to.
    Three statements whatever the user's history: the recent ratings, which of the
    neighbour lists' items the user rated or hid, and the cards to show.
    """
    if not user.is_authenticated:
        return []
    recent = catalog_selectors.user_recent_high_ratings(user_id=user.pk, limit=rows)
    if not recent:
        return []
    model, _ = _live()
    if model is None:
        return []
    try:
        lists = model.item_neighbours(recent)
    except store.RedisUnavailable:
        return []
    lists = {i: [] if nb is None else nb.tolist() for i, nb in lists.items()}
    candidates = {i for nb in lists.values() for i, _, _ in nb}
    exclude = catalog_selectors.user_rated_or_hidden_among(user_id=user.pk, item_ids=candidates)
    cards = catalog_selectors.item_cards([*recent, *(candidates - exclude)])
    out = []
    shown: set[int] = set()
    for item_id in recent:
        similar = []
        for i, s, n in lists[item_id]:
            card = cards.get(i)
            if card is None or not card.is_active or i in exclude or i in shown:
                continue
            similar.append(SimilarItem(card, s, n))
            if len(similar) == limit:
                break
        shown.update(s.item.pk for s in similar)
        if similar and item_id in cards:
            out.append((cards[item_id], similar))
    return out


def similar_items(*, item: Item, limit: int = 10, user=None) -> list[SimilarItem]:
    """Items people who liked ``item`` also liked, completed by content.

    The collaborative list comes first; items most like ``item`` in genre, year and title
    fill the places it leaves empty (all of them for an item nobody has rated yet), and
    up to ``cold_start.NEW_SLOTS`` places go to close items nobody has rated yet (source
    CONTENT, each with its reason). Popular items of its genre when content finds nothing.
    """
    exclude = {item.pk}
    if user is not None and user.is_authenticated:
        # Every item they rated or hid, not only the neighbours': content may fill places.
        exclude |= catalog_selectors.user_rated_or_hidden_ids(user_id=user.pk)
    model, _ = _live()
    nb = None
    if model is not None:
        try:
            nb = model.item_neighbours([item.pk]).get(item.pk)
        except store.RedisUnavailable:
            nb = None
    collaborative: list[SimilarItem] = []
    if nb is not None:
        cards = catalog_selectors.item_cards(i for i in nb["id"].tolist() if i not in exclude)
        for i, s, n in nb.tolist():
            card = cards.get(i)
            if card is not None and card.is_active:
                collaborative.append(SimilarItem(card, s, n))
                if len(collaborative) == limit:
                    break
    taken = [s.item.pk for s in collaborative]
    matches = (
        cold_start.similar_panel(
            item=item, collaborative_ids=taken, limit=limit, exclude=exclude, model=model
        )
        if model is not None
        else []
    )
    content = [SimilarItem(m.item, m.score, 0, CONTENT, m.reason) for m in matches]
    if collaborative or content:
        return collaborative[: limit - sum(m.new for m in matches)] + content
    genre = item.genres.first()
    fallback = popular_items(genre=genre.slug if genre else "", limit=limit, exclude=exclude)
    return [SimilarItem(s.item, None, 0, POPULAR) for s in fallback.suggestions]


def similar_users(*, user, limit: int = 20) -> list[SimilarUser]:
    """The user's nearest neighbours: ids and similarity only, never their ratings.

    Only neighbours who share at least ``REASON_MIN_PEOPLE`` rated items with the user:
    a similarity over one or two items would tell what that person rated (rate one item,
    see who appears, and how close).
    """
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
    nb = nb[nb["support"] >= reasons.min_people()][:limit]
    return [SimilarUser(int(i), float(s)) for i, s in zip(nb["id"], nb["score"], strict=True)]


def predicted_rating(*, user, item: Item) -> PredictedRating:
    """From the version's rating model (``rating_model``) and the user's live ratings;
    without one, k-NN with baselines, item-based: ``b_ui + sum s_ij (r_uj - b_uj) / sum
    s_ij`` over the model's pearson_baseline lists and baselines."""
    model, _ = _live()
    if model is None or not user.is_authenticated:
        return PredictedRating(None, "unavailable")
    rated, scores = _live_ratings(user.pk)
    try:
        parts = rating_model.parts_for(model.version)
        if parts is not None:
            return _factorization_prediction(parts, item, rated, scores)
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
    lists = ranking.dense_neighbours(
        {item.pk: nb}, matrix.n_items, matrix.item_indices, "item", measure="pearson_baseline"
    )
    p = predict(
        matrix, lists, 0, target, method="baseline", k=40, baselines=baselines, clip=(0.5, 5.0)
    )
    used = [int(matrix.item_ids[j]) for j in p.neighbours]
    objects = Item.objects.in_bulk(used)
    mine = dict(zip(rated.tolist(), scores.tolist(), strict=True))
    contributions = [
        (objects[i], float(s), mine[i], None) for i, s in zip(used, p.similarities, strict=True)
    ]
    return PredictedRating(round(p.value, 3), "neighbours" if used else "baseline", contributions)


def _factorization_prediction(parts, item: Item, rated, scores) -> PredictedRating:
    genres = [genre.name for genre in item.genres.all()]
    p = parts.predict(rated, scores, item.pk, genres=genres, year=item.year)
    objects = Item.objects.in_bulk([i for i, _ in p.links])
    mine = dict(zip(rated.tolist(), scores.tolist(), strict=True))
    links = [(objects[i], None, mine[i], round(c, 3)) for i, c in p.links if i in objects]
    return PredictedRating(round(p.value, 3), p.source, links)
