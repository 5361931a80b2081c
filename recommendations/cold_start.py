"""Cold start: suggestions that need no rating, for new items and new users.

Collaborative lists only know items and people that were rated or rated something. This
module fills the gaps from the catalogue itself, with no recompute in between:

- **Items.** ``similar_panel`` completes an item's "also liked" list with the items most
  like it in genre, year and title words (TF-IDF, ``engine.content.ItemContent``): all of
  it for an item nobody has rated yet, the empty places for one with few ratings, and up
  to ``NEW_SLOTS`` labelled places for items nobody has rated yet, so a new item shows up
  beside the items it resembles from the moment it is added.
- **People.** ``starter_list`` gives someone with too few ratings for collaborative
  suggestions a first list of their own: well-rated items of the genres they picked
  (``accounts.GenrePick``) blended with items like the ones they rated 4 or 5.

The TF-IDF model covers the active catalogue and lives once per process. It is rebuilt
when the *catalogue stamp* in Redis changes: a random token replaced whenever an item or
a genre is saved or deleted, an item's genres change, or an import writes items
(``catalogue_changed``). Rebuilding costs what the whole catalogue costs (measured by
``bench/cold_start.py``), once per process per change, never per request; a request
costs one sparse product of one row against the catalogue.

Nothing here reads another person's rating: the reasons name the user's own items, the
item's genres and year, or an item's public rating count.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, Max

from accounts.models import GenrePick
from catalog import selectors as catalog_selectors
from catalog.models import Item
from recommendations import reasons, store
from recommendations.engine import RatingMatrix
from recommendations.engine.content import ItemContent, item_tokens
from recommendations.engine.data import ItemInfo
from recommendations.item_info import catalogue_item_info

logger = logging.getLogger(__name__)

# Places of an "also liked" panel kept for items nobody has rated yet.
NEW_SLOTS = 2
# The least cosine similarity for such an item to take one of those places: sharing a
# genre and the decade, about; so the slot never shows something merely new.
NEW_MIN_SIMILARITY = 0.3
# In a starter list: the weight of "popular in a genre you picked" (0 to 1, by rating
# count) against "like an item you rated highly" (cosine similarity, 0 to 1).
GENRE_WEIGHT = 0.5
# How many of the user's highly rated items (the highest) the content part looks at.
MAX_LIKED = 20


# -- the catalogue stamp --------------------------------------------------------------------
# After Redis failed, the stamp comes from the database for this long: a request then
# waits for Redis's timeout once for its own reads, not once more for the stamp, and a
# bulk write does not wait once per item.
REDIS_RETRY_SECONDS = 10.0
# [when Redis last failed here, whether a change could not be marked since]
_redis_state = [-REDIS_RETRY_SECONDS, False]


def _stamp_key() -> str:
    return store.key("catalogue")


def _redis_resting() -> bool:
    return time.monotonic() - _redis_state[0] < REDIS_RETRY_SECONDS


def _redis_failed(error) -> None:
    if not _redis_resting():
        logger.warning("catalogue stamp: Redis unavailable (%s); using the database", error)
    _redis_state[0] = time.monotonic()


def _bump() -> None:
    if _redis_resting():
        _redis_state[1] = True  # marked once Redis answers again
        return
    try:
        store.client().set(_stamp_key(), uuid.uuid4().hex)
    except store.RedisUnavailable as error:
        _redis_state[1] = True
        _redis_failed(error)


def catalogue_changed(sender=None, **kwargs) -> None:
    """Receiver: items or genres changed, so every process rebuilds its content model.

    Marked at once (a reader in this transaction sees it) and again after commit (so a
    process that rebuilt from the uncommitted state in between rebuilds once more).
    """
    _bump()
    transaction.on_commit(_bump)


def _current_stamp() -> str:
    """The catalogue stamp; a fingerprint of the items table while Redis is away."""
    if not _redis_resting():
        try:
            r = store.client()
            if _redis_state[1]:  # a change made while Redis was away
                r.set(_stamp_key(), uuid.uuid4().hex)
                _redis_state[1] = False
            stamp = r.get(_stamp_key())
            if stamp is None:  # a fresh (or emptied) Redis: start a stamp
                r.set(_stamp_key(), uuid.uuid4().hex, nx=True)
                stamp = r.get(_stamp_key())
            return stamp.decode()
        except store.RedisUnavailable as error:
            _redis_failed(error)
    items = Item.objects.aggregate(n=Count("id"), last=Max("updated"), top=Max("id"))
    links = Item.genres.through.objects.aggregate(n=Count("id"), top=Max("id"))
    return f"db:{items['n']}:{items['top']}:{items['last']}:{links['n']}:{links['top']}"


# -- the content model of the catalogue -----------------------------------------------------
@dataclass(frozen=True, eq=False)
class ContentIndex:
    """TF-IDF rows of the active catalogue and what the reasons need.

    ``content.features_`` has one row per ``info.item_ids`` entry (sorted ids);
    ``unrated`` bool (n,) marks items without ratings when the index was built,
    ``popularity`` float64 (n,) their rating counts then (to break ties), and
    ``genre_rows`` maps a genre name to the int64 rows of its items.
    """

    stamp: str
    content: ItemContent
    info: ItemInfo
    unrated: np.ndarray
    popularity: np.ndarray
    genre_rows: dict

    @cached_property
    def vocabulary(self) -> frozenset:
        return frozenset(self.content.vocabulary_)

    def row(self, item_id: int) -> int | None:
        k = int(np.searchsorted(self.info.item_ids, item_id))
        if k < self.info.item_ids.size and self.info.item_ids[k] == item_id:
            return k
        return None

    def similarities(self, rows) -> np.ndarray:
        """float64 (len(rows), n): cosine similarity of each given row to every item."""
        f = self.content.features_
        return np.asarray((f[np.asarray(rows)] @ f.T).todense())

    def ranked(self, scores: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` best of ``candidates`` (row numbers) by score, then popularity."""
        candidates = candidates[scores[candidates] > 0]
        if n <= 0:
            return candidates[:0]
        if candidates.size > 4 * n:  # sort only what can place (ties at the edge too)
            edge = np.partition(scores[candidates], -n)[-n]
            candidates = candidates[scores[candidates] >= edge]
        order = np.lexsort((-self.popularity[candidates], -scores[candidates]))
        return candidates[order[:n]]

    @cached_property
    def _idf(self) -> np.ndarray:
        """Each token's idf as the fit weighed it: from how many rows have the token."""
        df = np.bincount(self.content.features_.indices, minlength=len(self.content.vocabulary_))
        n = self.info.item_ids.size
        return np.log((1 + n) / (1 + df)) + 1.0

    @cached_property
    def _columns(self) -> dict:
        return {token: j for j, token in enumerate(self.content.vocabulary_)}

    def query(self, info: ItemInfo) -> np.ndarray:
        """float64 (n,): cosine similarity of every item to the one item in ``info``,
        weighted as the fit weighs a row (so an item added since the index was built can
        be matched at once; its own tokens do not count in the idf)."""
        c = self.content
        weight = {"genre": c.genre_weight, "year": c.year_weight, "title": c.title_weight}
        weight["tag"] = c.tag_weight
        vector = np.zeros(len(c.vocabulary_))
        for part, tokens in item_tokens(info, 0).items():
            for token in tokens:
                j = self._columns.get(token)
                if j is not None:
                    vector[j] = weight[part] * self._idf[j]
        norm = np.linalg.norm(vector)
        if not norm:
            return np.zeros(self.info.item_ids.size)
        return np.asarray(c.features_ @ (vector / norm)).ravel()


def build_index(stamp: str = "") -> ContentIndex:
    """A content index of the active catalogue as it is now (the cost is the catalogue's)."""
    info = catalogue_item_info()
    counts = dict(
        Item.objects.filter(is_active=True, rating_count__gt=0).values_list("pk", "rating_count")
    )
    popularity = np.array([counts.get(int(i), 0) for i in info.item_ids], dtype=np.float64)
    empty = np.empty(0, dtype=np.int64)
    matrix = RatingMatrix.from_arrays(empty, empty, empty, users=[], items=info.item_ids)
    content = ItemContent().fit(matrix, info=info)
    genre_rows: dict[str, list[int]] = {}
    for k, names in enumerate(info.genres):
        for name in names:
            genre_rows.setdefault(name, []).append(k)
    genre_rows = {name: np.array(rows, dtype=np.int64) for name, rows in genre_rows.items()}
    return ContentIndex(stamp, content, info, popularity == 0, popularity, genre_rows)


# Above this many items a stale index is rebuilt in a background thread while requests
# go on with the previous one (an item added since is still matched, by ``query``).
# Measured by bench/cold_start.py: 0.44 s at 2,000 items, about 30 s at 62,423.
SYNC_REBUILD_MAX_ITEMS = 10_000

_cached: dict[str, ContentIndex] = {}
_lock = threading.Lock()
_building = threading.Event()


def content_index() -> ContentIndex:
    """This process's content index, rebuilt when the catalogue stamp has moved."""
    stamp = _current_stamp()
    index = _cached.get("index")
    if index is not None and index.stamp == stamp:
        return index
    if index is not None and index.info.item_ids.size > SYNC_REBUILD_MAX_ITEMS:
        if not _building.is_set():
            _building.set()
            threading.Thread(target=_rebuild_in_background, args=(stamp,), daemon=True).start()
        return index
    with _lock:
        index = _cached.get("index")
        if index is None or index.stamp != stamp:
            index = _rebuild(stamp)
        return index


def _rebuild(stamp: str) -> ContentIndex:
    started = time.perf_counter()
    index = _cached["index"] = build_index(stamp)
    logger.info(
        "content index of %d items built in %.2f s",
        index.info.item_ids.size,
        time.perf_counter() - started,
    )
    return index


def _rebuild_in_background(stamp: str) -> None:
    try:
        with _lock:
            _rebuild(stamp)
    except Exception:  # the previous index keeps serving; the next request tries again
        logger.exception("content index rebuild failed")
    finally:
        _building.clear()
        connection.close()  # this thread's own database connection


def clear() -> None:
    """Forget this process's index and any Redis failure (tests; a new database)."""
    with _lock:
        _cached.clear()
        _redis_state[:] = [-REDIS_RETRY_SECONDS, False]


# -- "also liked" -------------------------------------------------------------------------
@dataclass(frozen=True)
class Pick:
    """One content suggestion: an item card, its score, the line under it, the user's own
    items behind it (starter lists) and whether nobody has rated it yet."""

    item: object  # catalog.cards.ItemCard
    score: float
    reason: str
    because_items: list = field(default_factory=list)
    new: bool = False


def _shared(index: ContentIndex, mine: ItemInfo, a: int, b: int):
    """(genre names row ``a`` of ``mine`` and row ``b`` of the index both have, their
    decade if both are of the same one, whether their titles share a word the model
    counts)."""
    other = index.info
    genres = [g for g in other.genres[b] if g in set(mine.genres[a])]
    ya, yb = mine.years[a], other.years[b]
    same = not (math.isnan(ya) or math.isnan(yb)) and int(ya) // 10 == int(yb) // 10
    words = set(item_tokens(mine, a)["title"]) & set(item_tokens(other, b)["title"])
    title = any(w in index.vocabulary for w in words)
    return genres, (int(ya) // 10 * 10 if same else None), title


def similar_panel(*, item, collaborative_ids, limit: int, exclude) -> list[Pick]:
    """Content matches to add to ``item``'s "also liked" list of ``collaborative_ids``.

    The matches fill the places the collaborative list leaves empty (all of them for an
    item nobody rated), and up to ``NEW_SLOTS`` places go to items nobody has rated yet
    that are close enough (``NEW_MIN_SIMILARITY``); the caller shows the collaborative
    list first, cut to make room, then these. Items in ``exclude`` never appear.
    """
    index = content_index()
    row = index.row(item.pk)
    if row is None:  # added since the index was built (its rebuild is under way)
        one = catalogue_item_info(item_ids=[item.pk], active_only=False)
        if not one.item_ids.size:
            return []
        scores, mine, at = index.query(one), one, 0
    else:
        scores, mine, at = index.similarities([row])[0], index.info, row
    skip = {int(i) for i in exclude} | {int(i) for i in collaborative_ids} | {item.pk}
    ids = index.info.item_ids
    allowed = np.flatnonzero(~np.isin(ids, np.fromiter(skip, np.int64, len(skip))))
    new_rows = index.ranked(scores, allowed[index.unrated[allowed]], 4 * NEW_SLOTS)
    new_rows = new_rows[scores[new_rows] >= NEW_MIN_SIMILARITY]
    free = max(limit - len(collaborative_ids), 0)
    fill_rows = index.ranked(scores, allowed, free + 4 * NEW_SLOTS) if free else allowed[:0]
    cards = catalog_selectors.item_cards([int(ids[k]) for k in (*new_rows, *fill_rows)])

    def matches(rows, wanted: int, keep) -> list[Pick]:
        out = []
        for k in rows:
            if len(out) >= wanted:
                break
            card = cards.get(int(ids[k]))
            if card is None or not card.is_active or not keep(card):
                continue
            new = card.rating_count == 0
            text = reasons.new_similar_reason if new else reasons.content_reason
            reason = text(*_shared(index, mine, at, k))
            out.append(Pick(card, float(scores[k]), reason, new=new))
        return out

    new = matches(new_rows, NEW_SLOTS, lambda card: card.rating_count == 0)
    taken = {m.item.pk for m in new}
    room = max(limit - len(new) - len(collaborative_ids), 0)
    return matches(fill_rows, room, lambda card: card.pk not in taken) + new


# -- a first list for someone with few ratings ------------------------------------------------
def starter_list(
    *, user, rated: np.ndarray, scores: np.ndarray, exclude, limit: int, genre: str = ""
) -> list[Pick]:
    """Up to ``limit`` items for ``user`` from the genres they picked and the items they
    rated 4 or more (``rated``/``scores``: their ratings); empty when they have neither.

    Each item scores ``like + GENRE_WEIGHT * popular``: ``like`` the weighted mean cosine
    similarity to the user's liked items (weight: stars above 3), ``popular`` its rating
    count within the picked genres relative to the most rated of them (log scale). The
    larger part gives the reason: "Like X, which you rated 5" or "Popular in Sci-Fi: ...".
    Items rated below 3 on average by enough people are left out, as everywhere.
    """
    picks = dict(GenrePick.objects.filter(user=user).values_list("genre__slug", "genre__name"))
    liked = scores >= reasons.LIKED
    liked_ids, liked_scores = rated[liked], scores[liked]
    order = np.argsort(-liked_scores, kind="stable")[:MAX_LIKED]
    liked_ids, liked_scores = liked_ids[order], liked_scores[order]
    if not picks and not liked_ids.size:
        return []
    index = content_index()
    ids = index.info.item_ids
    n = ids.size
    like = np.zeros(n)
    best = np.full(n, -1)
    rows = [index.row(int(i)) for i in liked_ids]
    keep = [k for k, r in enumerate(rows) if r is not None]
    if keep:
        weights = liked_scores[keep] - reasons.NEUTRAL
        parts = weights[:, None] * index.similarities([rows[k] for k in keep])
        like = parts.sum(axis=0) / weights.sum()
        best = np.asarray(keep)[parts.argmax(axis=0)]
    # popular: by rating count among the items of the picked genres; named: which of
    # those genres (the first by name) the reason names, -1 for none.
    popular = np.zeros(n)
    names = sorted(picks.values())
    named = np.full(n, -1)
    for j, name in enumerate(names):
        rows_of = index.genre_rows.get(name, np.empty(0, np.int64))
        rows_of = rows_of[(named[rows_of] < 0) & (index.popularity[rows_of] > 0)]
        named[rows_of] = j
    in_genres = np.flatnonzero(named >= 0)
    if in_genres.size:
        top = np.log1p(index.popularity[in_genres].max())
        popular[in_genres] = np.log1p(index.popularity[in_genres]) / top
    total = like + GENRE_WEIGHT * popular
    skip = {int(i) for i in exclude} | {int(i) for i in rated}
    allowed = np.flatnonzero(~np.isin(ids, np.fromiter(skip, np.int64, len(skip))))
    # Room for items a genre filter, a low average or deactivation will drop.
    ranked = index.ranked(total, allowed, 4 * limit + 20)
    cards = catalog_selectors.item_cards(
        [*(int(ids[k]) for k in ranked), *(int(i) for i in liked_ids)]
    )
    mine = dict(zip(rated.tolist(), scores.tolist(), strict=True))
    out = []
    for k in ranked:
        card = cards.get(int(ids[k]))
        if card is None or not card.is_active or not _acceptable(card):
            continue
        if genre and genre not in {g.slug for g in card.card_genres()}:
            continue
        if like[k] >= GENRE_WEIGHT * popular[k] and best[k] >= 0:
            source = cards.get(int(liked_ids[best[k]]))
            title = source.title if source is not None else ""
            reason = reasons.liked_content_reason(title, mine[int(liked_ids[best[k]])])
            because = [source] if source is not None else []
        else:
            reason = reasons.genre_popular_reason(names[named[k]], card.rating_count)
            because = []
        out.append(Pick(card, float(total[k]), reason, because))
        if len(out) == limit:
            break
    return out


def _acceptable(card) -> bool:
    """Not an item that enough people rated below 3 on average."""
    if card.rating_count < reasons.min_people():
        return True
    return card.rating_sum / card.rating_count >= reasons.NEUTRAL
