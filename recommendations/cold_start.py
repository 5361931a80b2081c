"""Cold start: suggestions that need no rating, for new items and new users.

Collaborative lists only know items and people that were rated or rated something. This
module fills the gaps from the catalogue itself:

- **Items.** ``similar_panel`` completes an item's "also liked" list with the items most
  like it in genre, year and title words: all of it for an item nobody has rated yet, the
  empty places for one with few ratings, and up to ``NEW_SLOTS`` labelled places for
  items nobody has rated yet, so a new item shows up beside the items it resembles.
- **People.** ``starter_list`` gives someone with too few ratings for collaborative
  suggestions a first list of their own: well-rated items of the genres they picked
  (``accounts.GenrePick``) blended with items like the ones they rated 4 or 5.

Both read *content rows* from the published model in Redis (kind ``ic``: each item's
most similar items, ``content_rows``), one read per request; no process builds a content
model to answer a page. The rows come from the pipeline:

- the full recompute fits the TF-IDF model of the active catalogue once
  (:func:`content_fit`, in the prepare step; stored with the version like the snapshot,
  mapped read-only by each machine) and computes the rows in shards (:func:`content_shard`);
- an item saved or given other genres between recomputes queues a task
  (:func:`catalogue_changed` -> ``tasks.content_item_update``) that computes that item's
  row with one sparse product against the version's features and offers the item to the
  rows of the items it is close to (:func:`content_item_update`). Cost: the items sharing
  a token with it, never the catalogue's rebuild. A renamed genre, a deleted item's
  places and an import's items wait for the next full recompute (a deleted or hidden item
  is skipped by readers at once).

Nothing here reads another person's rating: the reasons name the user's own items, the
item's genres and year, or an item's public rating count.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.db.models import Exists, OuterRef

from accounts.models import GenrePick
from catalog import selectors as catalog_selectors
from catalog.models import Item
from recommendations import reasons, store
from recommendations.content_rows import VECTOR_DTYPE, ContentModel, Row, content_rows, vector_dot
from recommendations.content_rows import offer as row_offer
from recommendations.content_rows import select as row_select
from recommendations.engine.content import item_tokens
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
# A content row keeps the ROW_K most similar items and the NEW_K most similar items
# nobody had rated (at least NEW_MIN_SIMILARITY). An "also liked" panel (at most 100
# places, the API's limit) shows content only where the collaborative list leaves room,
# so a row's length bounds the content places of one panel: 12 bytes an entry, ~45 MiB
# of Redis at 62k items.
ROW_K = 60
NEW_K = 4 * NEW_SLOTS


def _row_options() -> dict:
    return {"k": ROW_K, "new_k": NEW_K, "new_min": NEW_MIN_SIMILARITY}


# -- the recompute's content stage -----------------------------------------------------------
def content_fit(version: str, arrays: dict[str, np.ndarray], *, ttl: int | None) -> int:
    """Fit the TF-IDF model of the active catalogue for ``version`` (popularity: rating
    counts in its snapshot ``arrays``) and store it with the version; returns its items."""
    info = catalogue_item_info()
    counts = np.bincount(np.asarray(arrays["indices"]), minlength=arrays["item_ids"].size)
    popularity = np.zeros(info.item_ids.size, dtype=np.int64)
    if arrays["item_ids"].size:
        rated = np.asarray(arrays["item_ids"])
        at = np.minimum(np.searchsorted(rated, info.item_ids), rated.size - 1)
        known = rated[at] == info.item_ids
        popularity[known] = counts[at[known]]
    model = ContentModel.fit(info, popularity)
    store.snapshot_put(version, model.to_arrays(), ttl=ttl, part="content")
    _loaded[version] = model
    return model.n_items


def content_plan(version: str, n_items: int, shards: int) -> list[tuple[str, int, int]]:
    """("ic", start, stop) row ranges of the content rows, about ``shards`` of them."""
    bounds = np.linspace(0, n_items, min(shards, max(n_items, 1)) + 1).round().astype(int)
    return [("ic", int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def content_shard(version: str, start: int, stop: int, *, ttl: int | None) -> int:
    """Compute and store content rows ``start..stop-1`` of ``version`` and their floors;
    returns the rows written."""
    model = content_model(version)
    rows, floors = content_rows(model, start, stop, **_row_options())
    store.write_rows(version, "ic", {i: _encode(row) for i, row in rows.items()}, ttl=ttl)
    floor_bytes = np.ascontiguousarray(floors, dtype="<f4").tobytes()
    store.write_rows(version, "icf", {start: floor_bytes}, ttl=ttl, count=False)
    return len(rows)


def content_expected_rows(version: str) -> int:
    """How many content rows a complete ``version`` holds (its fitted items)."""
    return content_model(version).n_items


def _encode(row: Row) -> bytes:
    return store.encode_neighbours(row.ids, row.scores.astype(np.float32), row.support)


def _decode(raw: bytes) -> Row:
    nb = store.decode_neighbours(raw)
    return Row(
        nb["id"].astype(np.int64), nb["score"].astype(np.float64), nb["support"].astype(np.int64)
    )


# This process's fitted model of the version it last used (mapped read-only, one copy per
# machine: ``store.snapshot_get``). Only the pipeline's processes load it, never a page.
_loaded: dict[str, ContentModel] = {}


def content_model(version: str) -> ContentModel:
    """``version``'s fitted content model; ``LookupError`` when it has none."""
    model = _loaded.get(version)
    if model is None:
        arrays = store.snapshot_get(version, part="content")
        _loaded.clear()
        model = _loaded[version] = ContentModel.from_arrays(arrays)
    return model


def clear() -> None:
    """Forget this process's content model (tests; a worker never needs to)."""
    _loaded.clear()


# -- an item added or changed between recomputes -------------------------------------------
def catalogue_changed(sender=None, instance=None, **kwargs) -> None:
    """Receiver: an item saved, or an item's genres changed. After commit, queue the task
    that gives it its content row in the live version (debounced per item).

    Genre renames and bulk writes (an import) wait for the next full recompute.
    """
    action = kwargs.get("action")
    if action is not None:  # m2m_changed of Item.genres
        if action not in ("post_add", "post_remove", "post_clear"):
            return
        # From the genre's side: the items added or removed.
        ids = [instance.pk] if isinstance(instance, Item) else sorted(kwargs.get("pk_set") or ())
    elif isinstance(instance, Item):
        ids = [instance.pk]
    else:
        return
    if ids:
        transaction.on_commit(lambda: _queue(ids))


def _queued_key(item_id: int) -> str:
    return store.key("content-queued", item_id)


def _queue(item_ids: list[int]) -> None:
    """Queue one update for the items not already waiting for one. Never raises: saving
    an item must not fail because Redis or the broker is away (the next recompute
    catches up)."""
    from recommendations import tasks

    try:
        pipe = store.client().pipeline(transaction=False)
        for item_id in item_ids:
            pipe.set(_queued_key(item_id), 1, nx=True, ex=60)
        fresh = [i for i, new in zip(item_ids, pipe.execute(), strict=True) if new]
        if fresh:
            tasks.content_item_update.apply_async((fresh,), retry=False)
    except Exception as error:
        logger.warning("could not queue the content update of items %s: %s", item_ids, error)


def content_item_update(*, item_ids: list[int]) -> str | None:
    """Give each of ``item_ids`` its content row in the live version, as its catalogue
    entry is now, and offer it to the rows of the items close to it; returns the version
    updated, or None (no model, Redis away, or the version has no content model).

    Per item: one sparse product of its TF-IDF vector (the version's vocabulary and idf)
    against the version's features, a product with each item added since the recompute,
    then a read and a write of the rows it enters (the stored floors say which).
    """
    try:
        live = store.live_model()
        if live is None:
            return None
        store.client().delete(*(_queued_key(i) for i in item_ids))
        model = content_model(live.version)
    except store.RedisUnavailable as error:
        logger.warning("Redis unavailable; content update of %s skipped: %s", item_ids, error)
        return None
    except LookupError:
        logger.warning("no content model for live version %s; update skipped", live.version)
        return None
    version = live.version
    info = catalogue_item_info(item_ids=item_ids, active_only=True)
    added = {
        int(i): np.frombuffer(raw, dtype=VECTOR_DTYPE)
        for i, raw in store.client().hgetall(store.version_key(version, "icx")).items()
    }
    for k, item_id in enumerate(info.item_ids.tolist()):
        vector = model.vector(info, k)
        added[item_id] = vector
        _update_item(version, model, item_id, vector, added)
    return version


def _update_item(version: str, model: ContentModel, item_id: int, vector, added: dict) -> None:
    r = store.client()
    base = model.scores(vector)
    # Items changed since the fit are scored by their current vectors (``added``).
    base[model.rows_of(added)] = 0.0
    extra_ids = [i for i in added if i != item_id]
    extra = np.array([vector_dot(vector, added[i]) for i in extra_ids], dtype=np.float64)
    counts = dict(
        Item.objects.filter(pk__in=[item_id, *extra_ids]).values_list("pk", "rating_count")
    )
    extra_support = np.array([counts.get(i, 0) for i in extra_ids], dtype=np.int64)
    own_support = counts.get(item_id, 0)
    ids = np.r_[model.item_ids, np.asarray(extra_ids, dtype=np.int64)]
    scores = np.r_[base, extra]
    support = np.r_[model.popularity, extra_support]
    own = row_select(ids, scores, support, **_row_options())

    # The rows it may enter: by the floors stored with the version (a floor only rises
    # as items are offered, so an old one is a safe filter), every row of an item added
    # since, and the rows of its previous neighbours (its old entry there is replaced).
    floors = _floors(version, model)
    could = scores[: model.n_items] >= floors[:, 0]
    if own_support == 0:
        could |= scores[: model.n_items] >= floors[:, 1]
    could &= scores[: model.n_items] > 0
    targets = set(model.item_ids[could].tolist())
    targets |= {i for i, s in zip(extra_ids, extra.tolist(), strict=True) if s > 0}
    previous = r.hget(store.version_key(version, "ic"), item_id)
    if previous is not None:
        targets |= set(_decode(previous).ids.tolist())
    targets.discard(item_id)
    score_of = dict(zip(ids.tolist(), scores.tolist(), strict=True))
    changed: dict[int, bytes] = {item_id: _encode(own)}
    targets = sorted(targets)
    for lo in range(0, len(targets), 2000):
        chunk = targets[lo : lo + 2000]
        for target, raw in zip(
            chunk, r.hmget(store.version_key(version, "ic"), chunk), strict=True
        ):
            if raw is None:
                continue
            row = row_offer(
                _decode(raw), item_id, score_of.get(target, 0.0), own_support, **_row_options()
            )
            if row is not None:
                changed[target] = _encode(row)
    store.write_patch(
        version, {"ic": changed, "icx": {item_id: np.asarray(vector, VECTOR_DTYPE).tobytes()}}
    )


def _floors(version: str, model: ContentModel) -> np.ndarray:
    """float64 (n, 2): each row's stored floors (top-k part, unrated part), by model row."""
    cached = model.__dict__.get("_floors")
    if cached is None:
        raw = store.client().hgetall(store.version_key(version, "icf"))
        parts = sorted((int(start), value) for start, value in raw.items())
        cached = np.frombuffer(b"".join(v for _, v in parts), dtype="<f4").reshape(-1, 2)
        cached = cached.astype(np.float64)
        if cached.shape[0] != model.n_items:  # floors incomplete: every row could change
            cached = np.zeros((model.n_items, 2))
        object.__setattr__(model, "_floors", cached)
    return cached


# -- reading content rows ----------------------------------------------------------------
def _live(model):
    if model is not None:
        return model
    try:
        return store.live_model()
    except store.RedisUnavailable:
        return None


def _rows(model, item_ids) -> dict[int, Row]:
    """The stored content rows of ``item_ids`` (those that have one), in one read."""
    model = _live(model)
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    if model is None or not ids:
        return {}
    try:
        raw = store.client().hmget(store.version_key(model.version, "ic"), ids)
    except store.RedisUnavailable:
        return {}
    return {i: _decode(value) for i, value in zip(ids, raw, strict=True) if value is not None}


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


def _card_info(cards) -> ItemInfo:
    """The side information of item cards, as the content model reads it."""
    return ItemInfo(
        item_ids=np.array([c.pk for c in cards], dtype=np.int64),
        titles=[c.title for c in cards],
        years=np.array([np.nan if c.year is None else float(c.year) for c in cards]),
        genres=[[g.name for g in c.card_genres()] for c in cards],
        tags=[[] for _ in cards],
    )


def _shared(mine, other):
    """(genre names both cards have, their decade if both are of the same one, whether
    their titles share a word the model counts)."""
    info = _card_info([mine, other])
    genres = [g for g in info.genres[1] if g in set(info.genres[0])]
    ya, yb = info.years[0], info.years[1]
    same = not (math.isnan(ya) or math.isnan(yb)) and int(ya) // 10 == int(yb) // 10
    words = set(item_tokens(info, 0)["title"]) & set(item_tokens(info, 1)["title"])
    return genres, (int(ya) // 10 * 10 if same else None), bool(words)


def similar_panel(*, item, collaborative_ids, limit: int, exclude, model=None) -> list[Pick]:
    """Content matches to add to ``item``'s "also liked" list of ``collaborative_ids``.

    The matches fill the places the collaborative list leaves empty (all of them for an
    item nobody rated), and up to ``NEW_SLOTS`` places go to items nobody has rated yet
    that are close enough (``NEW_MIN_SIMILARITY``); the caller shows the collaborative
    list first, cut to make room, then these. Items in ``exclude`` never appear. Empty
    when the live ``model`` (read when not given) has no content row for ``item`` yet.
    """
    row = _rows(model, [item.pk]).get(item.pk)
    if row is None:
        return []
    skip = {int(i) for i in exclude} | {int(i) for i in collaborative_ids} | {item.pk}
    allowed = ~np.isin(row.ids, np.fromiter(skip, np.int64, len(skip)))
    unrated = allowed & (row.support == 0) & (row.scores >= NEW_MIN_SIMILARITY)
    new_at = np.flatnonzero(unrated)[: 4 * NEW_SLOTS]
    free = max(limit - len(collaborative_ids), 0)
    fill_at = np.flatnonzero(allowed)[: free + 4 * NEW_SLOTS] if free else new_at[:0]
    if not new_at.size and not fill_at.size:
        return []
    cards = catalog_selectors.item_cards([item.pk, *(int(row.ids[k]) for k in (*new_at, *fill_at))])
    mine = cards.get(item.pk)
    if mine is None:
        return []

    def matches(at, wanted: int, keep) -> list[Pick]:
        out = []
        for k in at:
            if len(out) >= wanted:
                break
            card = cards.get(int(row.ids[k]))
            if card is None or not card.is_active or not keep(card):
                continue
            new = card.rating_count == 0
            text = reasons.new_similar_reason if new else reasons.content_reason
            out.append(Pick(card, float(row.scores[k]), text(*_shared(mine, card)), new=new))
        return out

    new = matches(new_at, NEW_SLOTS, lambda card: card.rating_count == 0)
    taken = {m.item.pk for m in new}
    room = max(limit - len(new) - len(collaborative_ids), 0)
    return matches(fill_at, room, lambda card: card.pk not in taken) + new


# -- a first list for someone with few ratings ------------------------------------------------
def starter_list(
    *, user, rated: np.ndarray, scores: np.ndarray, exclude, limit: int, genre: str = ""
) -> list[Pick]:
    """Up to ``limit`` items for ``user`` from the genres they picked and the items they
    rated 4 or more (``rated``/``scores``: their ratings); empty when they have neither.

    Each item scores ``like + GENRE_WEIGHT * popular``: ``like`` the weighted mean cosine
    similarity to the user's liked items (weight: stars above 3; from the liked items'
    stored content rows, so an item beyond a row counts 0 there), ``popular`` its rating
    count within the picked genres relative to the most rated of them (log scale; the
    candidates are the most rated of those genres, from the database). The larger part
    gives the reason: "Like X, which you rated 5" or "Popular in Sci-Fi: ...". Items
    rated below 3 on average by enough people are left out, as everywhere.
    """
    picks = dict(GenrePick.objects.filter(user=user).values_list("genre__slug", "genre__name"))
    liked = scores >= reasons.LIKED
    liked_ids, liked_scores = rated[liked], scores[liked]
    order = np.argsort(-liked_scores, kind="stable")[:MAX_LIKED]
    liked_ids, liked_scores = liked_ids[order], liked_scores[order]
    if not picks and not liked_ids.size:
        return []
    skip = {int(i) for i in exclude} | {int(i) for i in rated}
    wanted = 4 * limit + 20  # room for items a genre filter, a low average or deactivation drop
    like: dict[int, float] = {}
    best: dict[int, int] = {}  # item -> position in liked_ids of the largest part
    popularity: dict[int, int] = {}
    rows = _rows(None, liked_ids.tolist()) if liked_ids.size else {}
    keep = [k for k, i in enumerate(liked_ids.tolist()) if i in rows]
    if keep:
        weights = liked_scores[keep] - reasons.NEUTRAL
        total_weight = float(weights.sum())
        top_part: dict[int, float] = {}
        for k, w in zip(keep, weights.tolist(), strict=True):
            row = rows[int(liked_ids[k])]
            for j, s, n in zip(
                row.ids.tolist(), row.scores.tolist(), row.support.tolist(), strict=True
            ):
                like[j] = like.get(j, 0.0) + w * s / total_weight
                popularity[j] = n
                if w * s > top_part.get(j, -1.0):
                    top_part[j], best[j] = w * s, k
    # popular: by rating count among the most rated items of the picked genres (walking
    # the rating-count band's index, each item checked for a picked genre: it stops after the
    # rows it needs, whatever the catalogue's size; a join sorted all of a genre's items).
    names = sorted(picks.values())
    popular: dict[int, float] = {}
    if picks:
        through = Item.genres.through.objects
        items = Item.objects.filter(is_active=True, rating_count__gt=0).filter(
            Exists(through.filter(item_id=OuterRef("pk"), genre__slug__in=list(picks)))
        )
        if genre:
            items = items.filter(Exists(through.filter(item_id=OuterRef("pk"), genre__slug=genre)))
        ranked = items.order_by("-popularity_band", "-rating_count", "pk")
        found = ranked.values_list("pk", "rating_count")
        top = None
        for item_id, count in found[: wanted + len(skip)]:
            top = top or math.log1p(count)
            popular[item_id] = math.log1p(count) / top
            popularity[item_id] = count
    candidates = [i for i in {*like, *popular} if i not in skip]
    total = {i: like.get(i, 0.0) + GENRE_WEIGHT * popular.get(i, 0.0) for i in candidates}
    ranked = sorted(candidates, key=lambda i: (-total[i], -popularity.get(i, 0), i))[:wanted]
    cards = catalog_selectors.item_cards([*ranked, *(int(i) for i in liked_ids)])
    mine = dict(zip(rated.tolist(), scores.tolist(), strict=True))
    out = []
    for i in ranked:
        card = cards.get(i)
        if card is None or not card.is_active or not _acceptable(card):
            continue
        if genre and genre not in {g.slug for g in card.card_genres()}:
            continue
        if like.get(i, 0.0) >= GENRE_WEIGHT * popular.get(i, 0.0) and i in best:
            source = cards.get(int(liked_ids[best[i]]))
            title = source.title if source is not None else ""
            reason = reasons.liked_content_reason(title, mine[int(liked_ids[best[i]])])
            because = [source] if source is not None else []
        else:  # the first picked genre (by name) it is in
            name = next((n for n in names if n in {g.name for g in card.card_genres()}), None)
            if name is None:
                continue
            reason = reasons.genre_popular_reason(name, card.rating_count)
            because = []
        out.append(Pick(card, total[i], reason, because))
        if len(out) == limit:
            break
    return out


def _acceptable(card) -> bool:
    """Not an item that enough people rated below 3 on average."""
    if card.rating_count < reasons.min_people():
        return True
    return card.rating_sum / card.rating_count >= reasons.NEUTRAL
