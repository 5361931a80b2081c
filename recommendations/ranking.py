"""Ranking: one user's slice of the model turned into their ranked list.

:func:`rank` is the only place a personal list is ranked. A request (``reads``), the
incremental update and the stored lists of a full recompute (``build.compute_ready``) all
call it, so a stored list is what the live path would compute by construction, not by
a test keeping two copies equal. The slice differs only in where it comes from:
:func:`slice_from_store` reads it from the published model in Redis (a small local index
space), the recompute hands over the whole model's index space.

With the ranking model on (``model_scoring``), a slice also carries the user's blended
scores over the model's columns, computed from their live ratings; those order the list,
and the neighbour evidence only says who rated what (the reasons) and what not to
suggest (negative evidence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommendations import model_scoring, reasons, store
from recommendations.engine import Neighbours, RatingMatrix, _kernels, recommend


@dataclass(frozen=True, eq=False)
class UserSlice:
    """What ranking one user reads, in one index space (``matrix``'s).

    ``matrix`` holds at least the user's neighbours' ratings (the user part reads them);
    ``user`` is the user's row in it; ``rated``/``scores`` are the user's ratings as item
    indices (int64) and scores (float64), by item id. ``item_neighbours`` are the rated
    items' lists (None: no item part), ``user_neighbours`` the user's (None: no user part).
    ``model``: the user's scores from the ranking model (None: neighbour counting ranks);
    with it, the slice's ranking space is the model's columns, else ``matrix``'s items.
    ``evidence``: with ``model``, the neighbour evidence already summed per model column
    (:func:`neighbour_evidence`); then ``matrix`` and the neighbour lists are not read
    (None: a slice read from the store for the model holds only this).
    """

    matrix: RatingMatrix | None
    user: int | None
    rated: np.ndarray
    scores: np.ndarray
    item_neighbours: Neighbours | None
    user_neighbours: Neighbours | None
    model: model_scoring.UserScores | None = None
    evidence: tuple[np.ndarray, np.ndarray] | None = None

    def item_indices(self, item_ids) -> np.ndarray:
        """Item ids as indices of the ranking space (-1: not rankable)."""
        if self.model is not None:
            return self.model.item_indices(item_ids)
        return self.matrix.item_indices(item_ids)


def rank(
    sl: UserSlice,
    *,
    hidden: np.ndarray,
    n: int,
    user_weight: float,
    candidates: np.ndarray | None = None,
    exclude_rated: bool = True,
) -> np.ndarray:
    """The top ``n`` as ``store.READY_DTYPE`` rows (database ids), best first: by the
    slice's model scores when it has them, else the engine's ``recommend``. ``hidden`` and
    ``candidates`` are item indices in the slice's ranking space (``UserSlice.item_indices``)."""
    if sl.model is not None:
        return _rank_by_model(
            sl, hidden=hidden, n=n, candidates=candidates, exclude_rated=exclude_rated
        )
    result = recommend(
        sl.rated,
        sl.scores,
        item_neighbours=sl.item_neighbours,
        user_neighbours=sl.user_neighbours,
        matrix=sl.matrix if sl.user_neighbours is not None else None,
        user=sl.user,
        n_items=sl.matrix.n_items,
        hidden=hidden,
        candidates=candidates,
        n=n,
        user_weight=user_weight if sl.item_neighbours is not None else 1.0,
        exclude_rated=exclude_rated,
        # No suggestion on negative evidence: see recommendations/reasons.py.
        min_neighbour_mean=reasons.evidence_floor(sl.scores),
    )
    return ready_rows(result, sl.matrix)


def _rank_by_model(sl: UserSlice, *, hidden, n, candidates, exclude_rated) -> np.ndarray:
    """The model's top ``n`` of the allowed columns; items the user's neighbours rated
    below the evidence floor are left out, as in the neighbour ranking."""
    m = sl.model
    allowed = np.ones(m.item_ids.size, dtype=bool)
    if candidates is not None:
        allowed[:] = False
        allowed[_valid(candidates)] = True
    allowed[_valid(hidden)] = False
    if exclude_rated:
        allowed[m.row.indices] = False
    counts, sums = _neighbour_evidence(sl)
    # No suggestion on negative evidence: see recommendations/reasons.py.
    allowed &= ~((counts > 0) & (sums < reasons.evidence_floor(sl.scores) * counts))
    top = model_scoring.top_items(m.scores, allowed, n)
    because, codes = model_scoring.explain_top(m, top, store.REASONS)
    rows = np.zeros(top.size, dtype=store.READY_DTYPE)
    rows["item"] = store.ids32(m.item_ids[top])
    rows["score"] = m.scores[top]
    rows["people"] = counts[top]
    rows["people_sum"] = sums[top]
    rows["because_items"] = np.where(because >= 0, store.ids32(m.item_ids[because]), -1)
    rows["because_users"] = -1
    rows["reason"] = codes
    return rows


def _valid(indices) -> np.ndarray:
    indices = np.asarray(indices, dtype=np.int64).ravel()
    return indices[indices >= 0]


def _neighbour_evidence(sl: UserSlice) -> tuple[np.ndarray, np.ndarray]:
    """(count, sum of ratings) of the user's neighbours per model column, float64
    (n_items,) each; zeros without a user part. Summed neighbour by neighbour in list
    order, as the stored lists' slices hold them (a slice read from the store for the
    model brings them summed the same way: ``sl.evidence``)."""
    if sl.evidence is not None:
        return sl.evidence
    n_items = sl.model.item_ids.size
    if sl.user_neighbours is None or sl.user is None or sl.user < 0:
        return np.zeros(n_items), np.zeros(n_items)
    vs, sims = sl.user_neighbours.row(sl.user)
    vs = vs[np.asarray(sims, dtype=np.float64) > 0].astype(np.int64)
    csr = sl.matrix.csr
    _, pos = model_scoring._entries(csr, vs)  # their ratings' positions, neighbour by neighbour
    cols = model_scoring.columns_of(sl.model.parts, sl.matrix.item_ids)[csr.indices[pos]]
    return neighbour_evidence(cols, csr.data[pos], n_items)


def neighbour_evidence(cols: np.ndarray, ratings: np.ndarray, n_items: int):
    """(count, sum) float64 (n_items,) each of ``ratings`` by model column ``cols`` (-1:
    no column), the neighbours' ratings concatenated neighbour by neighbour in list
    order: each column's sum adds its ratings in that order, whichever way the ratings
    were gathered, so the stored and live lists carry the same numbers."""
    cols = np.asarray(cols, dtype=np.int64)
    known = cols >= 0
    ratings = np.asarray(ratings, dtype=np.float64)[known]
    counts = np.bincount(cols[known], minlength=n_items).astype(np.float64)
    return counts, np.bincount(cols[known], weights=ratings, minlength=n_items)


def rank_from_store(
    model: store.LiveModel,
    user_id: int,
    rated: np.ndarray,
    scores: np.ndarray,
    *,
    hidden: np.ndarray | None,
    n: int,
    user_weight: float,
    genre: str = "",
    item_part: bool = True,
    exclude_rated: bool = True,
    neighbours: tuple | None = None,
) -> np.ndarray:
    """:func:`rank` on the slice of the published model ``user_id`` touches, with their live
    ratings (item ids ``rated``, ``scores``); ``hidden`` item ids and inactive items are
    never ranked (``hidden`` None: the user's hidden items are read with the inactive ones,
    in one query), ``genre`` (a slug) restricts the candidates. ``neighbours``: the user's
    list and their neighbours' ratings when the caller read them already
    (``LiveModel.ready_or_neighbours``).

    Raises one of ``store.RedisUnavailable`` when Redis cannot be read.
    """
    from catalog.models import Item

    parts = model_scoring.parts_for(model.version) if rated.size else None
    if parts is not None:
        # The model's reasons come from its own parts (the rated items' lists are not
        # read) and it ranks its own columns: of the neighbours only the evidence counts.
        sl = model_slice_from_store(model, parts, user_id, rated, scores, neighbours)
    else:
        sl = slice_from_store(model, user_id, rated, scores, item_part=item_part)
    # Rather than fetch every candidate's row, exclude the few items that may not be shown.
    if hidden is None:
        unshown = _unshown_item_ids(user_id)
    else:
        unshown = np.concatenate([hidden, _inactive_item_ids()])
    allowed = None
    if genre:
        in_genre = Item.objects.filter(genres__slug=genre)
        if parts is None:  # only the items the slice holds can be ranked
            in_genre = in_genre.filter(pk__in=sl.matrix.item_ids.tolist())
        allowed = sl.item_indices(list(in_genre.values_list("pk", flat=True)))
        allowed = allowed[allowed >= 0]
    return rank(
        sl,
        hidden=sl.item_indices(unshown),
        candidates=allowed,
        n=n,
        user_weight=user_weight,
        exclude_rated=exclude_rated,
    )


def _inactive_item_ids() -> np.ndarray:
    """Items hidden from the catalogue by staff: few, so cheaper to exclude than to list."""
    from catalog.models import Item

    ids = Item.objects.filter(is_active=False).values_list("pk", flat=True)
    return np.fromiter(ids, dtype=np.int64)


def _unshown_item_ids(user_id: int) -> np.ndarray:
    """The user's hidden items ("Not interested") and the inactive items, in one query:
    a first read's round trips to the database cost more than either query's work."""
    from catalog.models import HiddenItem, Item

    hidden = HiddenItem.objects.filter(user_id=user_id).order_by().values_list("item_id", flat=True)
    inactive = Item.objects.filter(is_active=False).order_by().values_list("pk", flat=True)
    return np.fromiter(hidden.union(inactive, all=True), dtype=np.int64)


def model_slice_from_store(
    model: store.LiveModel,
    parts: model_scoring.ModelParts,
    user_id: int,
    rated: np.ndarray,
    scores: np.ndarray,
    neighbours: tuple | None = None,
) -> UserSlice:
    """The slice the ranking model ranks ``user_id`` from: their scores from their live
    ratings (item ids ``rated``, ``scores``) and their neighbours' evidence summed per
    model column straight from the stored user-user list and ratings, with no local
    ratings matrix (:func:`slice_from_store` built one only for this sum: most of a
    first read's time). ``neighbours``: (the list, their ratings) as
    ``LiveModel.user_list_and_ratings`` gives them, when already read.

    Raises one of ``store.RedisUnavailable`` when Redis cannot be read.
    """
    if neighbours is None:
        neighbours = model.user_list_and_ratings(user_id)  # one round trip
    user_list, their = neighbours
    vs = np.empty(0, np.int64)
    if user_list is not None:  # as the neighbour lists are read: positive scores only
        vs = user_list["id"][np.asarray(user_list["score"], dtype=np.float64) > 0]
    scored = parts.score(rated, scores)
    rows = [their[v] for v in vs.tolist() if their[v] is not None]  # in list order
    # joined as bytes (a copy; numpy's concatenate of the records took 4x as long)
    rows = np.frombuffer(b"".join(rows), dtype=store.RATING_DTYPE)
    return UserSlice(
        matrix=None,
        user=None,
        rated=scored.item_indices(rated),
        scores=scores,
        item_neighbours=None,
        user_neighbours=None,
        model=scored,
        evidence=stored_evidence(parts, rows["item"], rows["score"]),
    )


def stored_evidence(parts: model_scoring.ModelParts, items: np.ndarray, ratings: np.ndarray):
    """:func:`neighbour_evidence` of ratings given by item id (``items``), mapped to the
    model's columns and summed in one compiled pass when the parts have a column table:
    the same numbers (each column's ratings added in the same order), without the column,
    mask and float64 arrays of a user whose neighbours rated ~200k items."""
    table = parts.column_table
    if table is None:
        return neighbour_evidence(parts.columns(items), ratings, parts.n_items)
    return _kernels.evidence_sums(table, items, ratings, parts.n_items)


def slice_from_store(
    model: store.LiveModel, user_id: int, rated: np.ndarray, scores: np.ndarray, *, item_part=True
) -> UserSlice:
    """The slice of the published ``model`` that ranking ``user_id`` touches, with the
    user's live ratings (item ids ``rated``, ``scores``): their items' lists, their own
    list and their neighbours' stored ratings, in a local index space.

    Raises one of ``store.RedisUnavailable`` when Redis cannot be read.
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

    item_nb = None
    if item_lists:
        item_nb = dense_neighbours(item_lists, matrix.n_items, matrix.item_indices, "item")
    user_nb = None
    if neighbours.size:
        lists = {user_id: user_list}
        user_nb = dense_neighbours(lists, matrix.n_users, matrix.user_indices, "user")
    return UserSlice(
        matrix=matrix,
        user=matrix.user_index(user_id),
        rated=matrix.item_indices(rated),
        scores=scores,
        item_neighbours=item_nb,
        user_neighbours=user_nb,
    )


def dense_neighbours(
    lists: dict, n_rows: int, to_index, kind: str, measure: str = "cosine"
) -> Neighbours:
    """Stored lists ({row id: decoded list, or None when missing}) as the engine's dense
    ``Neighbours``; ``to_index`` maps ids (rows and neighbours) to the index space."""
    k = max((len(nb) for nb in lists.values() if nb is not None), default=0) or 1
    indices = np.full((n_rows, k), -1, dtype=np.int32)
    scores = np.full((n_rows, k), np.nan, dtype=np.float32)
    kept = [
        (r, nb)
        for r, nb in zip(to_index(list(lists)).tolist(), lists.values(), strict=True)
        if r >= 0 and nb is not None and len(nb)
    ]
    if kept:
        # All lists' ids mapped in one call: per list, the call's overhead was most of the
        # cost of a user's slice (a user with 166 ratings has 166 item lists).
        lengths = np.array([len(nb) for _, nb in kept])
        rows = np.repeat([r for r, _ in kept], lengths)
        cols = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        indices[rows, cols] = to_index(np.concatenate([nb["id"] for _, nb in kept]))
        scores[rows, cols] = np.concatenate([nb["score"] for _, nb in kept])
    return Neighbours(indices, scores, np.zeros_like(indices), kind=kind, measure=measure)


def ready_rows(result, matrix: RatingMatrix) -> np.ndarray:
    """``recommend``'s result as READY_DTYPE rows with database ids (the neighbour counts
    and sums make the "N people with your taste rated it X" line)."""
    rows = np.zeros(result.items.size, dtype=store.READY_DTYPE)
    if not result.items.size:
        return rows
    rows["item"] = store.ids32(matrix.item_ids[result.items])
    rows["score"] = result.scores
    rows["people"] = result.neighbour_counts
    rows["people_sum"] = result.neighbour_sums
    rows["because_items"] = _padded_ids(result.because_items, matrix.item_ids)
    # because_users stays -1: who rated an item is never shown (recommendations/reasons.py),
    # so it is not kept either.
    rows["because_users"] = -1
    rows["reason"] = store.REASON_EVIDENCE
    return rows


def _padded_ids(groups: list[np.ndarray], ids: np.ndarray) -> np.ndarray:
    """(len(groups), REASONS) database ids of the first indices of each group, -1 padded."""
    out = np.full((len(groups), store.REASONS), -1, dtype=np.int32)
    for row, group in zip(out, groups, strict=True):
        group = group[: store.REASONS]
        row[: group.size] = store.ids32(ids[group])
    return out
