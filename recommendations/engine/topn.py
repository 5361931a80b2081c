"""Top-N recommendations for one user from neighbour lists, with reasons.

Ranking is not rating prediction: ordering unrated items by their predicted rating favours
obscure items with one lucky neighbour (NDCG@10 about 0.05 on ``ml100k-ua``). Instead an
item scores the *evidence* pointing at it (neighbourhood sums):

item part   ``s_I(j) = sum_{i rated by u, j in N(i)}  w(r_ui) * sim(i, j)^alpha``
user part   ``s_U(j) = sum_{v in N(u), v rated j}  sim(u, v)^alpha * w(r_vj)``

Only positive similarities count; ``w`` is the rating itself (``weighting="rating"``) or 1
(``"binary"``). Each part is divided by its maximum over the candidate items, then
``score = user_weight * s_U + (1 - user_weight) * s_I`` (a missing part is left out).
Items without any evidence (score 0) are not returned: callers fill up with fallbacks.

Measured on ``ml100k-ua`` (see evaluate.py and bench/README.md for the table of what was
tried): item-item cosine alone reaches NDCG@10 0.243, item-item cosine on BM25-weighted
ratings 0.260, user-user cosine (K=50) 0.279, and the blend of user-user (BM25 cosine,
K=50, weight 0.7) and item-item (BM25 cosine, K=20) 0.289 -- the product default.

The item part uses the user's *live* ratings (passed in as arrays), so a rating made after
the last model build changes the recommendations at once; the user part uses the model's
neighbour list for the user, and is skipped for a user unknown to the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .matrix import RatingMatrix
from .similarity import Neighbours

__all__ = ["Recommendations", "bm25_weight", "recommend", "recommend_batch"]

WEIGHTINGS = ("rating", "binary")


@dataclass(frozen=True)
class Recommendations:
    """Top-N result for one user.

    Attributes:
        items: int64 (m,) item indices, best first (m <= n).
        scores: float64 (m,) blended scores in [0, 1].
        because_items: per item, int64 array of the user's rated item indices that
            contributed most (item part), strongest first.
        because_users: per item, int64 array of neighbour user indices that contributed
            most (user part), strongest first.
        neighbour_counts: int64 (m,) how many of the user's neighbours rated each item
            (zeros without a user part).
        neighbour_sums: float64 (m,) the sum of those neighbours' ratings of it.
    """

    items: np.ndarray
    scores: np.ndarray
    because_items: list = field(default_factory=list)
    because_users: list = field(default_factory=list)
    neighbour_counts: np.ndarray | None = None
    neighbour_sums: np.ndarray | None = None


def bm25_weight(matrix: RatingMatrix, *, k1: float = 100.0, b: float = 0.8) -> RatingMatrix:
    """The same ratings re-weighted by Okapi BM25 (rows = users as documents, items as terms).

    ``w_ui = r_ui (k1 + 1) / (k1 (1 - b + b |u| / avg|u|) + r_ui) * idf_i`` with
    ``idf_i = log(n_users) - log(1 + n_i)``. Used to compute similarities for ranking:
    it damps very active users and very popular items.
    """
    csr = matrix.csr
    n_users = max(matrix.n_users, 1)
    idf = np.log(n_users) - np.log1p(matrix.item_counts)
    lengths = matrix.user_counts.astype(np.float64)
    ln = lengths / max(lengths.mean(), 1e-12)
    rows = np.repeat(np.arange(matrix.n_users), matrix.user_counts)
    data = csr.data * (k1 + 1) / (k1 * (1 - b + b * ln[rows]) + csr.data) * idf[csr.indices]
    new = sp.csr_matrix((data, csr.indices.copy(), csr.indptr.copy()), shape=csr.shape)
    new.has_sorted_indices = True
    return RatingMatrix(csr=new, user_ids=matrix.user_ids, item_ids=matrix.item_ids)


def _weights(scores, weighting):
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {weighting!r}")
    scores = np.asarray(scores, dtype=np.float64)
    return np.ones_like(scores) if weighting == "binary" else scores


def _item_part(nb, rated, w, n_items, alpha):
    """(scores (n_items,), neighbour idx (m, K), contributions (m, K)) for the item part."""
    r = rated - nb.offset
    ok = (r >= 0) & (r < nb.n_rows)
    rated, r, w = rated[ok], r[ok], w[ok]
    idx = nb.indices[r].astype(np.int64)
    sc = np.nan_to_num(nb.scores[r].astype(np.float64), nan=0.0)
    valid = (idx >= 0) & (sc > 0)
    contrib = np.where(valid, w[:, None] * np.where(valid, sc, 0.0) ** alpha, 0.0)
    scores = np.bincount(idx[valid], weights=contrib[valid], minlength=n_items)
    return scores[:n_items], rated, idx, contrib


def _user_part(nb, matrix, user, weighting, alpha):
    """(scores (n_items,), (neighbour users (K,), the items they rated, whose rating each
    is, the rating)) for the user part."""
    vs, sims = nb.row(user)
    sims = sims.astype(np.float64)
    keep = sims > 0
    vs, sims = vs[keep].astype(np.int64), sims[keep] ** alpha
    csr = matrix.csr
    starts, stops = csr.indptr[vs], csr.indptr[vs + 1]
    lens = stops - starts
    pos = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
    cols, ratings = csr.indices[pos], csr.data[pos]
    w = _weights(ratings, weighting) * np.repeat(sims, lens)
    owner = np.repeat(np.arange(vs.size), lens)
    return np.bincount(cols, weights=w, minlength=matrix.n_items), (vs, cols, owner, ratings)


def _normalise(part, candidate_mask):
    mx = part[candidate_mask].max() if candidate_mask.any() else 0.0
    return part / mx if mx > 0 else np.zeros_like(part)


def recommend(
    rated_items,
    rated_scores,
    *,
    item_neighbours: Neighbours | None = None,
    user_neighbours: Neighbours | None = None,
    matrix: RatingMatrix | None = None,
    user: int | None = None,
    n_items: int | None = None,
    hidden=None,
    candidates=None,
    n: int = 10,
    user_weight: float = 0.7,
    weighting: str = "rating",
    alpha: float = 1.0,
    n_reasons: int = 3,
    exclude_rated: bool = True,
    min_neighbour_mean: float | None = None,
) -> Recommendations:
    """Top-n unrated, unhidden items for one user, with reasons.

    Args:
        rated_items: int (m,) item indices the user rated (live, may be newer than the model).
        rated_scores: float (m,) the scores.
        item_neighbours: item-item lists (kind "item"), for the item part.
        user_neighbours, matrix, user: user-user lists, the model's ratings and the user's
            index, for the user part (skipped when any is None).
        n_items: catalogue size (default: matrix.n_items or the item lists' row count).
        hidden: int item indices never to recommend (besides the rated ones).
        candidates: optional int indices or bool mask (n_items,) restricting the result
            (e.g. a genre).
        n: how many items at most.
        user_weight: weight of the user part in the blend (0..1).
        weighting, alpha: see the module docstring.
        n_reasons: reasons kept per item.
        exclude_rated: when False, the user's rated items compete with the rest (their
            evidence is scored like any other item's).
        min_neighbour_mean: when set, items that the user's neighbours rated below this
            on average are left out (negative evidence: the user part counts any rating
            as evidence for an item, a low one too). Needs the user part.
    """
    rated = np.asarray(rated_items, dtype=np.int64).ravel()
    w = _weights(rated_scores, weighting).ravel()
    if n_items is None:
        if matrix is not None:
            n_items = matrix.n_items
        elif item_neighbours is not None:
            n_items = item_neighbours.offset + item_neighbours.n_rows
        else:
            raise ValueError("n_items is needed without matrix or item_neighbours")
    mask = _candidate_mask(n_items, candidates)
    if exclude_rated:
        mask[rated[(rated >= 0) & (rated < n_items)]] = False
    if hidden is not None:
        h = np.asarray(hidden, dtype=np.int64).ravel()
        mask[h[(h >= 0) & (h < n_items)]] = False

    total = np.zeros(n_items)
    item_info = user_info = None
    if item_neighbours is not None and rated.size:
        s_i, r_items, idx, contrib = _item_part(item_neighbours, rated, w, n_items, alpha)
        item_info = (r_items, idx, contrib)
    use_user = user_neighbours is not None and matrix is not None and user is not None and user >= 0
    if use_user:
        s_u, user_info = _user_part(user_neighbours, matrix, user, weighting, alpha)
        if min_neighbour_mean is not None:
            _, cols, _, ratings = user_info
            counts = np.bincount(cols, minlength=n_items)[:n_items]
            sums = np.bincount(cols, weights=ratings.astype(np.float64), minlength=n_items)
            mask &= ~((counts > 0) & (sums[:n_items] < min_neighbour_mean * counts))
        total += user_weight * _normalise(s_u, mask)
    if item_info is not None:
        total += (1.0 - user_weight if use_user else 1.0) * _normalise(s_i, mask)
    total = np.where(mask, total, 0.0)
    top = _top(total, n)
    because_items = _item_reasons(item_info, top, n_items, n_reasons)
    because_users, counts, sums = _user_reasons(user_info, top, n_items, n_reasons)
    return Recommendations(top, total[top], because_items, because_users, counts, sums)


def _candidate_mask(n_items, candidates):
    if candidates is None:
        return np.ones(n_items, dtype=bool)
    c = np.asarray(candidates)
    if c.dtype == bool:
        if c.shape != (n_items,):
            raise ValueError("a boolean candidates mask must have shape (n_items,)")
        return c.copy()
    mask = np.zeros(n_items, dtype=bool)
    c = c.astype(np.int64).ravel()
    mask[c[(c >= 0) & (c < n_items)]] = True
    return mask


def _top(scores, n):
    """Indices of the n largest positive scores: higher score first, then lower index."""
    pos = np.flatnonzero(scores > 0)
    if pos.size > n:
        # partition on a threshold, then an exact stable sort of the survivors
        thr = np.partition(scores[pos], pos.size - n)[pos.size - n]
        pos = pos[scores[pos] >= thr]
    order = np.argsort(-scores[pos], kind="stable")
    return pos[order][:n]


def _item_reasons(info, top, n_items, n_reasons):
    """Per top item, the user's rated items that contributed most (ties: lower index)."""
    if info is None:
        return [np.empty(0, np.int64) for _ in top]
    rated, idx, contrib = info
    position = np.full(n_items + 1, -1, dtype=np.int64)  # the last slot catches idx == -1
    position[top] = np.arange(top.size)
    at = position[idx]
    rows, cols = np.nonzero((at >= 0) & (contrib > 0))
    at, c, who = at[rows, cols], contrib[rows, cols], rated[rows]
    order = np.lexsort((who, -c, at))
    return _grouped(at[order], who[order], top.size, n_reasons)


def _user_reasons(info, top, n_items, n_reasons):
    """Per top item: the most similar neighbours who rated it (their list order), and how
    many neighbours rated it and the sum of their ratings."""
    if info is None:
        return (
            [np.empty(0, np.int64) for _ in top],
            np.zeros(top.size, np.int64),
            np.zeros(top.size),
        )
    vs, cols, owner, ratings = info
    position = np.full(n_items, -1, dtype=np.int64)
    position[top] = np.arange(top.size)
    at = position[cols]
    hit = at >= 0
    at, owner, ratings = at[hit], owner[hit], ratings[hit]
    order = np.lexsort((owner, at))
    at = at[order]
    counts = np.bincount(at, minlength=top.size)
    sums = np.bincount(at, weights=ratings[order].astype(np.float64), minlength=top.size)
    return _grouped(at, vs[owner[order]].astype(np.int64), top.size, n_reasons), counts, sums


def _grouped(keys, values, n_groups, n_first):
    """The first ``n_first`` values of each key 0..n_groups-1 (``keys`` sorted)."""
    bounds = np.searchsorted(keys, np.arange(n_groups + 1))
    return [values[a : min(b, a + n_first)] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def recommend_batch(
    matrix: RatingMatrix,
    users,
    *,
    item_neighbours: Neighbours | None = None,
    user_neighbours: Neighbours | None = None,
    n: int = 10,
    user_weight: float = 0.7,
    weighting: str = "rating",
    alpha: float = 1.0,
    block: int = 1024,
) -> np.ndarray:
    """Top-n item indices for many users of ``matrix`` at once (evaluation).

    Same scores as :func:`recommend` with each user's matrix row as the live ratings, no
    hidden items and no candidate restriction. Returns int64 (len(users), n), padded -1.
    """
    users = np.asarray(users, dtype=np.int64)
    W = matrix.csr.copy()
    W.data = _weights(W.data, weighting)
    S_i = S_u = None
    if item_neighbours is not None:
        S_i = item_neighbours.to_csr(matrix.n_items)
        S_i.data = S_i.data**alpha
    if user_neighbours is not None:
        S_u = user_neighbours.to_csr(matrix.n_users)
        S_u.data = S_u.data**alpha
    out = np.full((users.size, n), -1, dtype=np.int64)
    for b0 in range(0, users.size, block):
        us = users[b0 : b0 + block]
        rated = matrix.csr[us]
        mask = np.ones((us.size, matrix.n_items), dtype=bool)
        mask[rated.nonzero()] = False
        total = np.zeros((us.size, matrix.n_items))
        if S_u is not None:
            total += user_weight * _normalise_rows((S_u[us] @ W).toarray(), mask)
        if S_i is not None:
            wi = 1.0 - user_weight if S_u is not None else 1.0
            total += wi * _normalise_rows((W[us] @ S_i).toarray(), mask)
        total = np.where(mask, total, 0.0)
        for t in range(us.size):
            top = _top(total[t], n)
            out[b0 + t, : top.size] = top
    return out


def _normalise_rows(part, mask):
    mx = np.where(mask, part, 0.0).max(axis=1, keepdims=True)
    return np.where(mx > 0, part / np.where(mx > 0, mx, 1.0), 0.0)
