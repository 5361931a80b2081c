"""Rating predictions: k-NN with means and k-NN with baselines, user- or item-based.

Item-based (``neighbours.kind == "item"``), for user u and item i::

    means:     r_ui = mu_i  + sum_j s_ij (r_uj - mu_j)  / sum_j s_ij
    baseline:  r_ui = b_ui  + sum_j s_ij (r_uj - b_uj)  / sum_j s_ij

over the first ``k`` items j of i's neighbour list that u rated and whose similarity is
positive (user-based swaps the roles: neighbours v of u that rated i). With fewer than
``min_k`` such neighbours the prediction is the reference value (mu_i / mu_u / b_ui).
This is Surprise's ``KNNWithMeans`` / ``KNNBaseline`` rule when the neighbour lists hold
every neighbour (``k`` of compute_neighbours >= n - 1); with shorter precomputed lists
(what the web app stores) the neighbourhood is the intersection of the list with the
user's ratings, which is cheaper and slightly different.

Unknown users or items (index -1) are a normal case: the reference value uses whatever is
known (``mu + b_u`` or ``mu + b_i``, the known side's mean, or the global mean).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kernels
from .matrix import Baselines, RatingMatrix
from .similarity import Neighbours

__all__ = ["Prediction", "predict", "predict_batch"]

METHODS = ("means", "baseline")


@dataclass(frozen=True)
class Prediction:
    """One prediction with its explanation.

    Attributes:
        value: predicted score (clipped when asked).
        reference: the value before the neighbourhood correction (mean or baseline).
        neighbours: int (m,) contributing neighbour indices (items for item-based, users for
            user-based), best first.
        similarities: float64 (m,) their similarities.
        residuals: float64 (m,) their rating minus their reference (mean or baseline).
    """

    value: float
    reference: float
    neighbours: np.ndarray
    similarities: np.ndarray
    residuals: np.ndarray

    @property
    def actual_k(self) -> int:
        return int(self.neighbours.size)


def _reference(matrix, kind, method, baselines, users, items):
    """Reference value per pair (float64), handling unknown (-1) indices."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    if method == "baseline":
        return baselines.predict(users, items)
    g = matrix.global_mean
    um = np.where(users >= 0, matrix.user_means[np.maximum(users, 0)], np.nan)
    im = np.where(items >= 0, matrix.item_means[np.maximum(items, 0)], np.nan)
    first, second = (im, um) if kind == "item" else (um, im)
    out = np.where(np.isnan(first), second, first)
    return np.where(np.isnan(out), g, out)


def _lookup_layout(matrix, kind, method, baselines):
    """(indptr, indices, residuals) of the structure searched for rated neighbours.

    Item-based looks in the user's row (items); user-based in the item's column (users).
    """
    if kind == "item":
        csr = matrix.csr
        rows = np.repeat(np.arange(matrix.n_users), matrix.user_counts)
        cols = csr.indices
        indptr, indices, data = csr.indptr, csr.indices, csr.data
    else:
        csc = matrix.csc
        rows = csc.indices
        cols = np.repeat(np.arange(matrix.n_items), matrix.item_counts)
        indptr, indices, data = csc.indptr, csc.indices, csc.data
    if method == "baseline":
        ref = baselines.predict(rows, cols)
    else:
        ref = matrix.item_means[cols] if kind == "item" else matrix.user_means[rows]
    return indptr, indices, data - ref


def _check(method, baselines, neighbours):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if method == "baseline" and baselines is None:
        raise ValueError("method='baseline' needs fitted baselines")
    if neighbours.kind not in ("item", "user"):
        raise ValueError(f"unknown neighbours kind {neighbours.kind!r}")


def predict_batch(
    matrix: RatingMatrix,
    neighbours: Neighbours,
    users,
    items,
    *,
    method: str = "baseline",
    k: int = 40,
    min_k: int = 1,
    baselines: Baselines | None = None,
    clip: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised predictions.

    Args:
        users, items: int arrays (n,) of user / item indices; -1 for unknown.
    Returns:
        (estimates float64 (n,), actual_k int32 (n,)).
    """
    _check(method, baselines, neighbours)
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    kind = neighbours.kind
    base = _reference(matrix, kind, method, baselines, users, items)
    indptr, indices, resid = _lookup_layout(matrix, kind, method, baselines)
    targets, lookups = (items, users) if kind == "item" else (users, items)
    sc = np.asarray(neighbours.scores, dtype=np.float64)
    est, used = _kernels.knn_predict(
        targets,
        lookups,
        base,
        neighbours.indices,
        sc,
        neighbours.offset,
        indptr.astype(np.int64),
        indices,
        resid,
        int(k),
        int(min_k),
    )
    if clip is not None:
        np.clip(est, clip[0], clip[1], out=est)
    return est, used


def predict(
    matrix: RatingMatrix,
    neighbours: Neighbours,
    user: int | None,
    item: int | None,
    *,
    method: str = "baseline",
    k: int = 40,
    min_k: int = 1,
    baselines: Baselines | None = None,
    clip: tuple[float, float] | None = None,
) -> Prediction:
    """One prediction for (user index, item index) with the neighbours that contributed.

    ``None`` or -1 marks an unknown user / item.
    """
    _check(method, baselines, neighbours)
    u = -1 if user is None else int(user)
    i = -1 if item is None else int(item)
    kind = neighbours.kind
    ref = float(_reference(matrix, kind, method, baselines, [u], [i])[0])
    target, look = (i, u) if kind == "item" else (u, i)
    empty = Prediction(ref, ref, np.empty(0, np.int64), np.empty(0), np.empty(0))
    if target < 0 or look < 0:
        return _clip(empty, clip)
    nb_idx, nb_sc = neighbours.row(target)
    if kind == "item":
        rated, scores = matrix.user_row(look)
        other = np.full(rated.size, look)
        cols, rows = rated, other
    else:
        csc = matrix.csc
        a, b = csc.indptr[look], csc.indptr[look + 1]
        rated, scores = csc.indices[a:b], csc.data[a:b]
        rows, cols = rated, np.full(rated.size, look)
    if rated.size == 0:
        return _clip(empty, clip)
    pos_c = np.minimum(np.searchsorted(rated, nb_idx), rated.size - 1)
    hit = (rated[pos_c] == nb_idx) & (nb_sc > 0)
    sel = np.flatnonzero(hit)[:k]
    if sel.size < max(min_k, 1):
        return _clip(empty, clip)
    p = pos_c[sel]
    if method == "baseline":
        nref = baselines.predict(rows[p], cols[p])
    else:
        nref = matrix.item_means[cols[p]] if kind == "item" else matrix.user_means[rows[p]]
    resid = scores[p] - nref
    sims = nb_sc[sel].astype(np.float64)
    value = ref + float(np.sum(sims * resid) / np.sum(sims))
    return _clip(Prediction(value, ref, nb_idx[sel].astype(np.int64), sims, resid), clip)


def _clip(p: Prediction, clip) -> Prediction:
    if clip is None:
        return p
    return Prediction(
        float(min(max(p.value, clip[0]), clip[1])),
        p.reference,
        p.neighbours,
        p.similarities,
        p.residuals,
    )
