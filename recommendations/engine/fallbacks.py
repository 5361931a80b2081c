"""Fallback rankings for users with too few ratings: most popular and best damped mean.

Both accept ``candidates`` (int item indices or a bool mask over items) so a caller can
restrict them, e.g. to one genre, and ``exclude`` for items the user rated or hid.
Ties: higher value first, then lower item index.
"""

from __future__ import annotations

import numpy as np

from .matrix import RatingMatrix

__all__ = ["damped_means", "most_popular", "best_rated"]


def damped_means(matrix: RatingMatrix, *, damping: float = 10.0, prior: float | None = None):
    """Bayesian average per item: ``(sum + damping * prior) / (count + damping)``.

    ``prior`` defaults to the global mean, so an item with few ratings is pulled towards
    it. Returns float64 (n_items,).
    """
    prior = matrix.global_mean if prior is None else float(prior)
    sums = np.bincount(matrix.csr.indices, weights=matrix.csr.data, minlength=matrix.n_items)
    return (sums + damping * prior) / (matrix.item_counts + damping)


def _rank(values, n, candidates, exclude, require):
    mask = (
        np.ones(values.size, dtype=bool) if candidates is None else _mask(values.size, candidates)
    )
    mask &= require
    if exclude is not None:
        ex = np.asarray(exclude, dtype=np.int64).ravel()
        mask[ex[(ex >= 0) & (ex < values.size)]] = False
    pos = np.flatnonzero(mask)
    order = np.lexsort((pos, -values[pos]))[:n]
    return pos[order], values[pos[order]]


def _mask(size, candidates):
    c = np.asarray(candidates)
    if c.dtype == bool:
        return c.copy()
    m = np.zeros(size, dtype=bool)
    c = c.astype(np.int64).ravel()
    m[c[(c >= 0) & (c < size)]] = True
    return m


def most_popular(matrix: RatingMatrix, *, n: int = 10, candidates=None, exclude=None):
    """(item indices int64 (m,), rating counts float64 (m,)) of the most rated items.

    Items nobody rated are never returned.
    """
    counts = matrix.item_counts.astype(np.float64)
    return _rank(counts, n, candidates, exclude, counts > 0)


def best_rated(
    matrix: RatingMatrix,
    *,
    n: int = 10,
    damping: float = 10.0,
    prior: float | None = None,
    candidates=None,
    exclude=None,
):
    """(item indices int64 (m,), damped means float64 (m,)) of the best items by Bayesian
    average (see :func:`damped_means`). Items nobody rated are never returned."""
    values = damped_means(matrix, damping=damping, prior=prior)
    return _rank(values, n, candidates, exclude, matrix.item_counts > 0)
